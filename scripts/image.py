#!/usr/bin/env python3
"""The closte-operator image as an OCI archive, written without a Docker engine.

    scripts/image.py [--output FILE] BINARY

BINARY is the static (musl) build of closte-operator (`make image` builds it
and calls this). The archive, by default
target/image/closte-operator-<appVersion>.oci.tar, is an OCI image layout
(oci-layout, index.json, blobs/sha256/...) of one image for linux/amd64 with
one gzip'd layer: what the Dockerfile's final stage holds (the binary as
/usr/local/bin/closte-operator and, hard-linked, kubectl-closte; wordpress/ as
/usr/share/closte-operator/mu-plugin/) and what the binary needs of the
distroless non-root base (/etc/passwd and /etc/group with root and nonroot,
/tmp, /home/nonroot). No shell, no package manager, no CA bundle (the
binary carries its roots).

index.json names the image docker.io/library/closte-operator:<appVersion>, the
Helm chart's image, so that `ctr -n k8s.io images import FILE` tags it.

Deterministic: entries sorted, every time the HEAD commit's time, owners
fixed, no pax headers, gzip without a name or time, JSON with sorted keys.
The same binary and tree at one commit give the same digest.

With --pause REFERENCE it writes, instead, the pod sandbox image a node
needs (no registry is reachable here): BINARY alone as /pause, user 65535.

Python 3 standard library only.
"""

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "closte-operator"
REPOSITORY = "docker.io/library/" + NAME  # the chart's image.repository, as containerd spells it
NONROOT = 65532
USER = f"{NONROOT}:{NONROOT}"
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
ENTRYPOINT = ["/usr/local/bin/closte-operator"]
CMD = ["controller"]
WORKDIR = "/"
BINARY_PATH = "usr/local/bin/closte-operator"
KUBECTL_PLUGIN_PATH = "usr/local/bin/kubectl-closte"
MU_PLUGIN_PATH = "usr/share/closte-operator/mu-plugin"
# What gcr.io/distroless/static-debian12:nonroot has in these two files.
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\n" f"nonroot:x:{NONROOT}:\n"

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def fail(message):
    print(f"image.py: {message}", file=sys.stderr)
    sys.exit(1)


def git(*args):
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError) as e:
        fail(f"git {' '.join(args)} failed ({e}); the image is labelled with the HEAD commit")
    return out.stdout.strip()


def cargo_package():
    text = (ROOT / "Cargo.toml").read_text()
    try:
        import tomllib  # Python 3.11+

        return tomllib.loads(text)["package"]
    except ImportError:
        section = text.split("[package]", 1)[1].split("\n[", 1)[0]
        return dict(re.findall(r'^(\w[\w-]*)\s*=\s*"([^"]*)"', section, re.M))


def source(package=None):
    """The project's address: Cargo.toml's repository, when it has one."""
    package = package if package is not None else cargo_package()
    return package.get("repository", "https://github.com/your-org/closte-operator")


def metadata():
    """The labels, the image's version and its time (the HEAD commit's)."""
    chart = (ROOT / "charts/closte-operator/Chart.yaml").read_text()
    found = re.search(r"""^appVersion:\s*["']?([^"'\s#]+)""", chart, re.M)
    if not found:
        fail("charts/closte-operator/Chart.yaml has no appVersion")
    version = found.group(1)
    revision = git("rev-parse", "HEAD")
    epoch = int(git("show", "-s", "--format=%ct", "HEAD"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    package = cargo_package()
    labels = {
        "org.opencontainers.image.title": NAME,
        "org.opencontainers.image.description": package.get("description", ""),
        "org.opencontainers.image.source": source(package),
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": created,
    }
    if package.get("license"):
        labels["org.opencontainers.image.licenses"] = package["license"]
    return version, epoch, created, labels


def check_binary(data, path):
    """A static x86-64 ELF executable (no interpreter, no shared library) that
    names no folder of this work tree."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        fail(f"{path} is not a 64-bit little-endian ELF file")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_machine != 62 or e_type not in (2, 3):
        fail(f"{path} is not an x86-64 executable (the image is linux/amd64)")
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 3:  # PT_INTERP
            interp = data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode()
            fail(
                f"{path} is dynamically linked (interpreter {interp}); the image has no "
                "libc: build it with --target x86_64-unknown-linux-musl"
            )
        if p_type == 2:  # PT_DYNAMIC (a static-pie has one, without DT_NEEDED)
            for off in range(p_offset, p_offset + p_filesz, 16):
                tag, _ = struct.unpack_from("<qQ", data, off)
                if tag == 0:
                    break
                if tag == 1:  # DT_NEEDED
                    fail(f"{path} needs shared libraries; the image has none")
    # cargo hands rustc the crate's own sources as src/...; an absolute path
    # here would make two clones build two images
    if f"{ROOT}/src/".encode() in data:
        fail(f"{path} names this work tree's sources by their path ({ROOT}/src/)")


def tar_entry(name, kind, mode, mtime, owner=0, size=0, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = owner
    info.uname = info.gname = "nonroot" if owner == NONROOT else "root"
    info.mtime = mtime
    info.size = size
    info.linkname = link
    return info


def layer_entries(binary, mtime):
    """(TarInfo, bytes or None) of the layer, sorted by name, parents first."""
    entries = {}

    def add(name, kind, mode, owner=0, data=None, link=""):
        size = len(data) if data is not None else 0
        entries[name] = (tar_entry(name, kind, mode, mtime, owner, size, link), data)

    def parents(name):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in entries:
                add(parent, tarfile.DIRTYPE, 0o755)

    add("tmp", tarfile.DIRTYPE, 0o1777)
    add("home", tarfile.DIRTYPE, 0o755)
    add("home/nonroot", tarfile.DIRTYPE, 0o700, owner=NONROOT)
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        parents(name)
        add(name, tarfile.REGTYPE, 0o644, data=text.encode())
    parents(BINARY_PATH)
    add(BINARY_PATH, tarfile.REGTYPE, 0o755, data=binary)
    add(KUBECTL_PLUGIN_PATH, tarfile.LNKTYPE, 0o755, link=BINARY_PATH)
    source = ROOT / "wordpress"
    parents(MU_PLUGIN_PATH + "/")
    for path in sorted(source.rglob("*")):
        name = f"{MU_PLUGIN_PATH}/{path.relative_to(source).as_posix()}"
        if path.is_symlink():
            fail(f"{path} is a symbolic link; the mu-plugin is plain files")
        if path.is_dir():
            add(name, tarfile.DIRTYPE, 0o755)
        elif path.is_file():
            # git keeps only whether a file is executable; so does the image
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            add(name, tarfile.REGTYPE, mode, data=path.read_bytes())
        else:
            fail(f"{path} is neither a file nor a folder")
    # sorted by name: a parent before its children, the binary before its link
    return [entries[name] for name in sorted(entries)]


def rootfs_entries(path, mtime):
    """A root file system tarball (mmdebstrap's, say) as a layer holds it:
    {name: (TarInfo, bytes or None)}, names without "./" or a trailing "/",
    every time MTIME, owners and modes kept, no pax headers (so no extended
    attributes), nothing in /dev (the runtime makes it), no fifo."""
    entries = {}
    with tarfile.open(path) as tar:
        for info in tar:
            name = info.name.removeprefix("./").rstrip("/")
            if not name or name == "." or name.startswith("dev/"):
                continue
            if not (info.isdir() or info.isfile() or info.issym() or info.islnk()):
                continue  # fifos, devices
            entry = tar_entry(name, info.type, info.mode, mtime, size=info.size if info.isfile() else 0,
                              link=info.linkname.removeprefix("./") if info.islnk() else info.linkname)
            if info.type == tarfile.AREGTYPE or info.type == tarfile.CONTTYPE:
                entry.type = tarfile.REGTYPE
            entry.uid, entry.gid, entry.uname, entry.gname = info.uid, info.gid, info.uname, info.gname
            entries[name] = (entry, tar.extractfile(info).read() if info.isfile() else None)
    # a layer is sorted by name: of files linked together, the first holds the data
    groups = {}
    for name, (info, _) in entries.items():
        if info.islnk():
            groups.setdefault(info.linkname, []).append(name)
    for target, links in groups.items():
        if target not in entries or not entries[target][0].isfile():
            raise ValueError(f"{path}: {links[0]} is a hard link to {target}, which is no file in it")
        first = min([target, *links])
        if first != target:
            info, data = entries[target]
            entries[first][0].type, entries[first][0].size, entries[first][0].linkname = tarfile.REGTYPE, info.size, ""
            entries[first] = (entries[first][0], data)
        for name in [target, *links]:
            if name != first:
                info = entries[name][0]
                info.type, info.size, info.linkname = tarfile.LNKTYPE, 0, first
                entries[name] = (info, None)
    return entries


def tar_bytes(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def gzip_bytes(data):
    """gzip, best compression, with no file name and time 0 in its header: the
    same bytes from any Python (gzip.compress's header differs between versions)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x02\xff"
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + body + trailer


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type, data, **extra):
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def archive_bytes(reference, ref_name, config, layer_tar, layer, epoch):
    """The OCI image layout of one image, as a tar archive."""
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": descriptor(MEDIA_CONFIG, config),
            "layers": [descriptor(MEDIA_LAYER, layer)],
        }
    )
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                descriptor(
                    MEDIA_MANIFEST,
                    manifest,
                    platform={"architecture": "amd64", "os": "linux"},
                    annotations={
                        "io.containerd.image.name": reference,
                        "org.opencontainers.image.ref.name": ref_name,
                    },
                )
            ],
        }
    )
    files = {"oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}), "index.json": index}
    for blob in (config, layer, manifest):
        files["blobs/sha256/" + hashlib.sha256(blob).hexdigest()] = blob
    entries = [(tar_entry(d, tarfile.DIRTYPE, 0o755, epoch), None) for d in ("blobs", "blobs/sha256")]
    entries += [
        (tar_entry(name, tarfile.REGTYPE, 0o644, epoch, size=len(data)), data)
        for name, data in files.items()
    ]
    entries.sort(key=lambda entry: entry[0].name)
    return tar_bytes(entries), sha256(manifest)


def write_atomically(output, data):
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, output)


def pause_image(program, reference, output):
    """The sandbox image: the program as /pause, nothing else; time 0."""
    layer_tar = tar_bytes([(tar_entry("pause", tarfile.REGTYPE, 0o755, 0, size=len(program)), program)])
    layer = gzip_bytes(layer_tar)
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"User": "65535:65535", "Entrypoint": ["/pause"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
        }
    )
    data, digest = archive_bytes(reference, reference.rsplit(":", 1)[-1], config, layer_tar, layer, 0)
    write_atomically(output, data)
    print(f"pause    {reference} {digest} -> {output}")


def megabytes(n):
    return f"{n / 1_000_000:.1f} MB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", type=Path, help="the static closte-operator binary (or, with --pause, the pause program)")
    parser.add_argument(
        "--output", type=Path, help="the archive (default: target/image/closte-operator-VERSION.oci.tar)"
    )
    parser.add_argument(
        "--pause", metavar="REFERENCE", help="write the pod sandbox image REFERENCE of BINARY instead (needs --output)"
    )
    args = parser.parse_args()
    if args.pause:
        if not args.output:
            fail("--pause needs --output")
        program = args.binary.read_bytes()
        check_binary(program, args.binary)
        pause_image(program, args.pause, args.output)
        return

    version, epoch, created, labels = metadata()
    binary = args.binary.read_bytes()
    check_binary(binary, args.binary)
    if git("status", "--porcelain", "--untracked-files=no", "--", "wordpress", "src", "Cargo.toml",
           "Cargo.lock", "docs", "charts/closte-operator/Chart.yaml"):
        print(f"note: the work tree has changes not in {labels['org.opencontainers.image.revision']}, "
              "which the image's revision label names", file=sys.stderr)

    layer_tar = tar_bytes(layer_entries(binary, epoch))
    layer = gzip_bytes(layer_tar)
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "User": USER,
                "Env": ENV,
                "Entrypoint": ENTRYPOINT,
                "Cmd": CMD,
                "WorkingDir": WORKDIR,
                "Labels": labels,
            },
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
            "history": [{"created": created, "created_by": "scripts/image.py"}],
        }
    )
    reference = f"{REPOSITORY}:{version}"
    data, digest = archive_bytes(reference, version, config, layer_tar, layer, epoch)
    output = args.output or ROOT / "target/image" / f"{NAME}-{version}.oci.tar"
    write_atomically(output, data)

    shown = output.resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    kind = "static (no interpreter, no shared library)"
    if shutil.which("file"):
        kind = subprocess.run(["file", "-b", str(args.binary)], capture_output=True, text=True).stdout
    print(f"image    {reference} ({created}, {labels['org.opencontainers.image.revision'][:12]})")
    print(f"digest   {digest}")
    print(f"layer    {megabytes(len(layer))} gzip'd, {megabytes(len(layer_tar))} unpacked ({sha256(layer)})")
    print(f"binary   {megabytes(len(binary))}: {kind.split(', BuildID')[0].strip()}")
    print(f"archive  {shown} ({megabytes(output.stat().st_size)}); load it with")
    print(f"         ctr -n k8s.io images import {shown}")


if __name__ == "__main__":
    main()
