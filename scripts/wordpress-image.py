#!/usr/bin/env python3
"""closte-wordpress: WordPress from Debian's packages as an OCI archive, written
without a Docker engine, for the WordPress example on a node with no registry.

    scripts/wordpress-image.py [--output FILE] [--suite SUITE] [--refresh]

mmdebstrap builds a root file system of this machine's Debian suite (the
essential set plus php-cli, php-mysql, php-curl, wordpress and its default
theme, without recommends, no documentation, manual pages or translations);
this script turns it into one gzip'd layer of one linux/amd64 image, the
archive target/image/closte-wordpress-<tag>.oci.tar whose index.json names
it docker.io/library/closte-wordpress:<tag> (`ctr -n k8s.io images import
FILE`).
The tag is the wordpress package's version with every character a tag cannot
hold (+ ~ :) written as _.

What the image does, as the official wordpress image does for the example:
WordPress at /var/www/html (real files, a real wp-content/ with an empty
mu-plugins/), a wp-config.php that takes the database and the rest from the
environment (WORDPRESS_DB_HOST, _USER, _PASSWORD, _NAME, ..., each also as
NAME_FILE; WORDPRESS_CONFIG_EXTRA is eval'd), and PHP's built-in server on
0.0.0.0:8080 (PHP_CLI_SERVER_WORKERS=4) as user 33:33 (www-data). Nothing
in the image is written to: the root file system can be read-only.

Apache, a PHP SAPI for it and a MySQL client, which Debian's wordpress
package depends on, are left out: a local package (closte-wordpress-image,
built here with dpkg-deb) provides httpd, php and virtual-mysql-client.

The slow part, the root file system, is cached under
~/.cache/closte-operator/wordpress-image/<suite>-<key> (key: the suite, the
package list, the sources and ROOTFS_VERSION), with the layer made from it
(keyed by this script and scripts/image.py): a second run only writes the
archive. --refresh builds the root file system again (the archive's newer
packages). mmdebstrap must run as root (or in its unshare mode).

Deterministic from one root file system: entries sorted, one time for all
(the newest Date of the suites' Release files, or SOURCE_DATE_EPOCH), no pax
headers, gzip without name or time, JSON with sorted keys. Two cold builds
agree as long as the Debian archive serves the same packages.

Python 3 standard library, dpkg-deb and mmdebstrap.
"""

import argparse
import email.utils
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import image  # noqa: E402  (scripts/image.py)

ROOT = image.ROOT
NAME = "closte-wordpress"
REPOSITORY = "docker.io/library/" + NAME
# Bump when the root file system's recipe changes in a way the key does not see.
ROOTFS_VERSION = "1"
MIRRORS = {
    "debian": "http://deb.debian.org/debian",
    "security": "http://deb.debian.org/debian-security",
}
# What the image needs; apt adds the wordpress package's other dependencies
# (php-gd, php-getid3, libjs-*, ca-certificates). The theme is WordPress
# 6.1's default (WP_DEFAULT_THEME), a Recommends: without a theme the site's
# pages are empty.
PACKAGES = ["php-cli", "php-mysql", "php-curl", "wordpress", "wordpress-theme-twentytwentythree"]
# mmdebstrap's hook that makes /usr merged itself and installs usr-is-merged,
# for the essential init-system-helpers' "usrmerge | usr-is-merged": without
# it apt takes usrmerge, which pulls perl in.
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/merged-usr"
LOCAL_PACKAGE = "closte-wordpress-image"
PROVIDES = ["httpd", "php", "virtual-mysql-client"]
DPKG_OPTIONS = [
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
]

DOCROOT = "var/www/html"
DEBIAN_WORDPRESS = "usr/share/wordpress"
WWW_DATA = 33
PORT = 8080
WORKERS = 4
# WordPress's rewrite rules for PHP's server, beside (not in) the docroot
ROUTER = "var/www/router.php"
ENTRYPOINT = ["/usr/bin/php", "-S", f"0.0.0.0:{PORT}", "-t", "/" + DOCROOT, "/" + ROUTER]
ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    f"PHP_CLI_SERVER_WORKERS={WORKERS}",
]

# wp-config.php: what the official image's wp-config-docker.php reads from the
# environment, and the salts without a writable file: from the environment,
# else derived from the database credentials (the same in every pod of one
# site, as secret as its database password).
WP_CONFIG = r"""<?php
/**
 * closte-wordpress: WordPress's configuration from the environment, as the
 * official wordpress image reads it (scripts/wordpress-image.py of
 * closte-operator writes this file).
 *
 * Each setting is NAME, or the contents of the file NAME_FILE names.
 * WORDPRESS_CONFIG_EXTRA is PHP code, eval'd before wp-settings.php.
 * The keys and salts: WORDPRESS_AUTH_KEY, ..., WORDPRESS_NONCE_SALT when set;
 * otherwise derived from the database settings, so every pod of one site
 * has the same ones and they are as secret as the database password.
 */

if ( ! function_exists( 'getenv_docker' ) ) {
	function getenv_docker( $name, $default ) {
		$file = getenv( $name . '_FILE' );
		if ( $file ) {
			return rtrim( file_get_contents( $file ), "\r\n" );
		}
		$value = getenv( $name );
		return false !== $value ? $value : $default;
	}
}

define( 'DB_NAME', getenv_docker( 'WORDPRESS_DB_NAME', 'wordpress' ) );
define( 'DB_USER', getenv_docker( 'WORDPRESS_DB_USER', 'example username' ) );
define( 'DB_PASSWORD', getenv_docker( 'WORDPRESS_DB_PASSWORD', 'example password' ) );
define( 'DB_HOST', getenv_docker( 'WORDPRESS_DB_HOST', 'mysql' ) );
define( 'DB_CHARSET', getenv_docker( 'WORDPRESS_DB_CHARSET', 'utf8' ) );
define( 'DB_COLLATE', getenv_docker( 'WORDPRESS_DB_COLLATE', '' ) );

foreach ( array( 'AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT' ) as $closte_wordpress_key ) {
	define(
		$closte_wordpress_key,
		getenv_docker(
			'WORDPRESS_' . $closte_wordpress_key,
			hash_hmac( 'sha256', 'closte-wordpress ' . $closte_wordpress_key, implode( "\0", array( DB_PASSWORD, DB_USER, DB_NAME, DB_HOST ) ) )
		)
	);
}
unset( $closte_wordpress_key );

$table_prefix = getenv_docker( 'WORDPRESS_TABLE_PREFIX', 'wp_' );

define( 'WP_DEBUG', (bool) getenv_docker( 'WORDPRESS_DEBUG', '' ) );

// Behind a proxy that ends TLS (most of them, in a cluster).
if ( isset( $_SERVER['HTTP_X_FORWARDED_PROTO'] ) && false !== strpos( $_SERVER['HTTP_X_FORWARDED_PROTO'], 'https' ) ) {
	$_SERVER['HTTPS'] = 'on';
}

$closte_wordpress_extra = getenv_docker( 'WORDPRESS_CONFIG_EXTRA', '' );
if ( $closte_wordpress_extra ) {
	eval( $closte_wordpress_extra );
}
unset( $closte_wordpress_extra );

if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
"""


# PHP's command line, which the built-in server is: opcache on (Debian has it
# off for the command line), its lock file in /dev/shm, which a runtime
# mounts writable, so a read-only root with nothing mounted serves pages.
PHP_INI = """; closte-wordpress (scripts/wordpress-image.py): PHP's built-in server serves WordPress
opcache.enable_cli = 1
opcache.lockfile_path = /dev/shm
"""
PHP_INI_NAME = "90-closte-wordpress.ini"


def fail(message):
    print(f"wordpress-image.py: {message}", file=sys.stderr)
    sys.exit(1)


def host_suite():
    try:
        text = Path("/etc/os-release").read_text()
    except OSError as e:
        fail(f"cannot read /etc/os-release ({e}); name the Debian suite with --suite")
    fields = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))
    if fields.get("ID") != "debian" or not fields.get("VERSION_CODENAME"):
        fail(f"this machine is not a Debian release ({fields.get('PRETTY_NAME', '?')}); name the suite with --suite")
    return fields["VERSION_CODENAME"]


def sources(suite):
    return [
        f"deb {MIRRORS['debian']} {suite} main",
        f"deb {MIRRORS['debian']} {suite}-updates main",
        f"deb {MIRRORS['security']} {suite}-security main",
    ]


def cache_dir(suite):
    spec = {
        "suite": suite,
        "sources": sources(suite),
        "packages": PACKAGES,
        "provides": PROVIDES,
        "hooks": [MERGED_USR_HOOK],
        "dpkg": DPKG_OPTIONS,
        "variant": "essential",
        "version": ROOTFS_VERSION,
    }
    key = hashlib.sha256(image.canonical_json(spec)).hexdigest()[:16]
    base = Path(os.environ.get("CLOSTE_OPERATOR_CACHE") or Path.home() / ".cache/closte-operator")
    return base / "wordpress-image" / f"{suite}-{key}"


def local_package(folder):
    """The package that stands in for Apache, a PHP SAPI for it and a MySQL
    client, so that apt installs Debian's wordpress without them."""
    tree = folder / "package"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {LOCAL_PACKAGE}\n"
        "Version: 1\n"
        "Architecture: all\n"
        "Maintainer: closte-operator <closte-operator@localhost>\n"
        f"Provides: {', '.join(PROVIDES)}\n"
        "Description: the closte-wordpress image's web server: PHP's own (php-cli)\n"
        " WordPress is served by PHP's built-in web server; no Apache, no PHP\n"
        " SAPI for it, no MySQL client.\n"
    )
    deb = folder / f"{LOCAL_PACKAGE}_1_all.deb"
    env = dict(os.environ, SOURCE_DATE_EPOCH="0")
    try:
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
            check=True, capture_output=True, env=env,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        fail(f"dpkg-deb cannot build {deb.name} ({e}); it comes with dpkg")
    return deb


def build_rootfs(suite, folder):
    """mmdebstrap's root file system tarball in FOLDER/rootfs.tar, and
    FOLDER/rootfs.json: the Release files' dates, the time it took."""
    mmdebstrap = shutil.which("mmdebstrap")
    if not mmdebstrap or not Path(MERGED_USR_HOOK).is_dir():
        fail("mmdebstrap is not installed; it builds the image's root file system: apt-get install -y mmdebstrap")
    if os.geteuid() != 0:
        print("note: not root: mmdebstrap runs in its unshare mode (needs /etc/subuid for this user)", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="closte-wordpress-") as scratch:
        scratch = Path(scratch)
        deb = local_package(scratch)
        dates = scratch / "release-dates"
        partial = folder / "rootfs.tar.partial"
        q = shlex.quote
        command = [
            mmdebstrap,
            "--variant=essential",
            f"--hook-dir={MERGED_USR_HOOK}",
            "--format=tar",
            "--aptopt=APT::Install-Recommends \"false\"",
            *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
            f"--include={','.join(PACKAGES)}",
            # apt runs dpkg in the chroot: the package must be there, at the same path
            f"--include={deb}",
            f'--setup-hook=mkdir -p "$1"{q(str(deb.parent))} && cp {q(str(deb))} "$1"{q(str(deb))}',
            # the Release files' dates, before mmdebstrap removes the lists
            f'--customize-hook=sed -n "s/^Date: //p" "$1"/var/lib/apt/lists/*Release > {q(str(dates))}',
            # the same on any machine (mmdebstrap copies the host's)
            '--customize-hook=: > "$1/etc/resolv.conf"; echo localhost > "$1/etc/hostname"',
            suite,
            str(partial),
            *sources(suite),
        ]
        print(f"rootfs   mmdebstrap {suite}: {', '.join(PACKAGES)} (minutes, once)", file=sys.stderr)
        out = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if out.returncode != 0:
            partial.unlink(missing_ok=True)
            fail(f"mmdebstrap failed ({out.returncode}):\n{out.stdout[-6000:]}")
        release_dates = [line.strip() for line in dates.read_text().splitlines() if line.strip()]
    if not release_dates:
        fail("mmdebstrap left no Release file dates")
    meta = {
        "suite": suite,
        "sources": sources(suite),
        "packages": PACKAGES,
        "release_dates": release_dates,
        "seconds": round(time.monotonic() - started, 1),
    }
    image.write_atomically(folder / "rootfs.json", image.canonical_json(meta))
    os.replace(partial, folder / "rootfs.tar")
    return meta


def dpkg_versions(status):
    """{package: version} of the installed packages in a dpkg status file."""
    versions = {}
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", stanza, re.M))
        if "Package" in fields and fields.get("Status", "").endswith(" installed"):
            versions[fields["Package"]] = fields["Version"]
    return versions


def resolve(entries, name, depth=0):
    """NAME with its symbolic links followed inside the layer (absolute links
    from the layer's root), or None when it leads nowhere."""
    if depth > 40:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    done = []
    for i, part in enumerate(parts):
        if part == "..":
            if done:
                done.pop()
            continue
        done.append(part)
        here = "/".join(done)
        entry = entries.get(here)
        if entry is None:
            return None
        info = entry[0]
        if info.issym():
            target = info.linkname
            base = "" if target.startswith("/") else "/".join(done[:-1])
            rest = "/".join(parts[i + 1:])
            return resolve(entries, "/".join(p for p in (base, target.lstrip("/"), rest) if p), depth + 1)
    return "/".join(done)


def owned_by_root(info):
    """A TarInfo named as mmdebstrap's are: by number only."""
    info.uname = info.gname = ""
    return info


def layer_entries(rootfs, mtime):
    """The image's files: the root file system, with Debian's WordPress moved
    to /var/www/html as real files (PHP resolves __FILE__ through links, and
    ABSPATH would leave the docroot) and our wp-config.php."""
    entries = image.rootfs_entries(rootfs, mtime)
    prefix = DEBIAN_WORDPRESS + "/"
    moved = sorted(name for name in entries if name.startswith(prefix))
    if DEBIAN_WORDPRESS not in entries or not moved:
        fail(f"the root file system has no /{DEBIAN_WORDPRESS}: is the wordpress package in it?")
    for name, (info, _) in entries.items():
        if info.islnk() and (name.startswith(prefix) or info.linkname.startswith(prefix)):
            fail(f"/{name} is a hard link to /{info.linkname}; WordPress's files are not expected to be linked so")
    for name in moved:
        info, data = entries[name]
        new = DOCROOT + "/" + name[len(prefix):]
        if info.issym() and not info.linkname.startswith("/"):
            # Debian links its copies of libraries in (getID3, underscore.js):
            # a relative link would point elsewhere from /var/www/html
            target = resolve(entries, name)
            if target is None or not entries[target][0].isfile():
                fail(f"/{name} -> {info.linkname} leads to no file in the root file system")
            info, data = entries[target]
        copy = image.tar_entry(new, info.type, info.mode, mtime, size=len(data) if data is not None else 0,
                               link=info.linkname if info.issym() else "")
        copy.uid, copy.gid, copy.uname, copy.gname = info.uid, info.gid, info.uname, info.gname
        entries[new] = (copy, data)
    for name in moved:
        del entries[name]
    link = image.tar_entry(DEBIAN_WORDPRESS, tarfile.SYMTYPE, 0o777, mtime, link="/" + DOCROOT)
    entries[DEBIAN_WORDPRESS] = (owned_by_root(link), None)
    for name in ("var/www", DOCROOT, DOCROOT + "/wp-content/mu-plugins"):
        entries[name] = (owned_by_root(image.tar_entry(name, tarfile.DIRTYPE, 0o755, mtime)), None)
    # Debian's own reads /etc/wordpress/config-HOST.php; the .htaccess is Apache's
    for name in (DOCROOT + "/.htaccess", DOCROOT + "/wp-config.php"):
        entries.pop(name, None)
    cli = [name for name in entries if re.fullmatch(r"etc/php/[^/]+/cli/conf\.d", name)]
    if len(cli) != 1:
        fail(f"the root file system should have one PHP command line configuration folder, not {cli}")
    ini = PHP_INI.encode()
    name = f"{cli[0]}/{PHP_INI_NAME}"
    entries[name] = (owned_by_root(image.tar_entry(name, tarfile.REGTYPE, 0o644, mtime, size=len(ini))), ini)
    config = WP_CONFIG.encode()
    entries[DOCROOT + "/wp-config.php"] = (
        owned_by_root(image.tar_entry(DOCROOT + "/wp-config.php", tarfile.REGTYPE, 0o644, mtime, size=len(config))),
        config,
    )
    router = (ROOT / "scripts/wordpress-router.php").read_bytes()
    entries[ROUTER] = (
        owned_by_root(image.tar_entry(ROUTER, tarfile.REGTYPE, 0o644, mtime, size=len(router))),
        router,
    )
    return [entries[name] for name in sorted(entries)]


def build_layer(folder, rootfs_meta, layer_key):
    """The gzip'd layer and what the config needs of it, in the cache."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        epoch = int(os.environ["SOURCE_DATE_EPOCH"])
    else:
        epoch = max(int(email.utils.parsedate_to_datetime(d).timestamp()) for d in rootfs_meta["release_dates"])
    entries = layer_entries(folder / "rootfs.tar", epoch)
    status = next((data for info, data in entries if info.name == "var/lib/dpkg/status"), None)
    if status is None:
        fail("the root file system has no /var/lib/dpkg/status")
    versions = dpkg_versions(status.decode())
    php = next((versions[p] for p in sorted(versions) if re.fullmatch(r"php\d+\.\d+-cli", p)), None)
    if "wordpress" not in versions or php is None:
        fail("the root file system lacks the wordpress or the php-cli package")
    layer_tar = image.tar_bytes(entries)
    layer = image.gzip_bytes(layer_tar)
    meta = {
        "diff_id": image.sha256(layer_tar),
        "unpacked": len(layer_tar),
        "entries": len(entries),
        "epoch": epoch,
        "wordpress": versions["wordpress"],
        "php": php,
        "packages": len(versions),
    }
    for old in folder.glob("layer-*"):
        old.unlink()
    image.write_atomically(folder / f"layer-{layer_key}.tar.gz", layer)
    image.write_atomically(folder / f"layer-{layer_key}.json", image.canonical_json(meta))
    return layer, meta


def tag_of(version):
    """A Debian version as an image tag ([A-Za-z0-9_.-], at most 128)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", version)[:128]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="the archive (default: target/image/closte-wordpress-TAG.oci.tar)")
    parser.add_argument("--suite", help="the Debian suite (default: this machine's, from /etc/os-release)")
    parser.add_argument("--refresh", action="store_true", help="build the root file system again, not from the cache")
    args = parser.parse_args()
    started = time.monotonic()
    suite = args.suite or host_suite()
    folder = cache_dir(suite)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build of one key at a time
        rootfs_meta = None
        if not args.refresh and (folder / "rootfs.tar").is_file() and (folder / "rootfs.json").is_file():
            rootfs_meta = json.loads((folder / "rootfs.json").read_text())
            built = "cached"
        else:
            for old in folder.glob("layer-*"):
                old.unlink()
            rootfs_meta = build_rootfs(suite, folder)
            built = f"built in {rootfs_meta['seconds']:.0f} s"
        scripts = b"".join(p.read_bytes() for p in (Path(__file__).resolve(), ROOT / "scripts/image.py", ROOT / "scripts/wordpress-router.php"))
        layer_key = hashlib.sha256(scripts + os.environ.get("SOURCE_DATE_EPOCH", "").encode()).hexdigest()[:16]
        cached_layer = folder / f"layer-{layer_key}.tar.gz"
        if cached_layer.is_file() and (folder / f"layer-{layer_key}.json").is_file():
            layer = cached_layer.read_bytes()
            meta = json.loads((folder / f"layer-{layer_key}.json").read_text())
        else:
            layer, meta = build_layer(folder, rootfs_meta, layer_key)

    version = meta["wordpress"]
    tag = tag_of(version)
    epoch = meta["epoch"]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    labels = {
        "org.opencontainers.image.title": NAME,
        "org.opencontainers.image.description": (
            f"WordPress {version} from Debian {suite}'s packages, served by PHP {meta['php']}'s "
            f"built-in web server on port {PORT}, for closte-operator's WordPress example"
        ),
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.source": image.source(),
        "org.opencontainers.image.created": created,
    }
    config = image.canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "User": f"{WWW_DATA}:{WWW_DATA}",
                "Env": ENV,
                "Entrypoint": ENTRYPOINT,
                "WorkingDir": "/" + DOCROOT,
                "ExposedPorts": {f"{PORT}/tcp": {}},
                "Labels": labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [meta["diff_id"]]},
            "history": [{"created": created, "created_by": f"mmdebstrap {suite}, scripts/wordpress-image.py"}],
        }
    )
    reference = f"{REPOSITORY}:{tag}"
    data, digest = image.archive_bytes(reference, tag, config, None, layer, epoch)
    output = args.output or ROOT / "target/image" / f"{NAME}-{tag}.oci.tar"
    image.write_atomically(output, data)

    shown = output.resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    mb = image.megabytes
    print(f"image    {reference} ({created}; WordPress {version}, PHP {meta['php']}, {meta['packages']} packages)")
    print(f"digest   {digest}")
    print(f"layer    {mb(len(layer))} gzip'd, {mb(meta['unpacked'])} unpacked ({image.sha256(layer)})")
    print(f"rootfs   {suite}, {built}: {folder}")
    print(f"archive  {shown} ({mb(output.stat().st_size)}, {time.monotonic() - started:.1f} s); load it with")
    print(f"         ctr -n k8s.io images import {shown}")


if __name__ == "__main__":
    main()
