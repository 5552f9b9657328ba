//! `make wordpress-image`: WordPress from Debian's packages as an OCI
//! archive, `target/image/closte-wordpress-<tag>.oci.tar`, the image the
//! WordPress example runs on a node with no registry. The test reads the
//! archive (the readers of tests/image.rs, in tests/common/image.rs) and
//! checks the config (user, entrypoint, labels, the name containerd gives
//! it) and the files (WordPress, our wp-config.php, PHP with mysqli), and
//! that a second build comes from the cache with the same bytes.
//!
//! It needs mmdebstrap (`apt-get install -y mmdebstrap`); the first build
//! takes minutes (Debian's archive), later ones seconds.

mod common;

use std::collections::BTreeMap;

use common::image::{Entry, make_wordpress_image, read_image};
use serde_json::json;

const DOCROOT: &str = "var/www/html";

/// `name` with its symbolic links followed inside the layer (absolute links
/// from the layer's root), or None when it leads to no entry.
fn resolve(layer: &BTreeMap<String, Entry>, name: &str) -> Option<String> {
    let mut todo: Vec<String> = name.split('/').rev().map(String::from).collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => done.push(part),
        }
        let here = done.join("/");
        let entry = layer.get(&here)?;
        if entry.kind == b'2' {
            links += 1;
            if links > 40 {
                return None;
            }
            done.pop();
            if entry.link.starts_with('/') {
                done.clear();
            }
            todo.extend(entry.link.split('/').rev().map(String::from));
        }
    }
    Some(done.join("/"))
}

/// The Debian tag rule of scripts/wordpress-image.py: what a tag cannot hold becomes `_`.
fn tag_of(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[test]
fn make_wordpress_image_builds_wordpress_from_debian_packages_and_again_from_the_cache() {
    // Step 1: make wordpress-image writes the archive and says what it wrote.
    let (said, path) = make_wordpress_image(None);
    let image = read_image(&path);
    let reference = said
        .lines()
        .find_map(|l| l.strip_prefix("image "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("make wordpress-image should name the image:\n{said}"))
        .to_owned();
    let (repository, tag) = reference.rsplit_once(':').unwrap();
    assert_eq!(repository, "docker.io/library/closte-wordpress");
    assert!(
        path.ends_with(format!("target/image/closte-wordpress-{tag}.oci.tar")),
        "the archive's path: {}",
        path.display()
    );
    assert_eq!(
        image.descriptor["annotations"],
        json!({"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": tag}),
        "index.json should name the image for containerd"
    );

    // Step 2: the layer: the root file system of Debian's packages.
    let layer = &image.layer;
    let entry = |name: &str| -> &Entry {
        layer
            .get(name)
            .unwrap_or_else(|| panic!("the layer has no /{name}"))
    };
    let status = String::from_utf8_lossy(&entry("var/lib/dpkg/status").data).into_owned();
    let installed = |package: &str| -> Option<String> {
        status.split("\n\n").find_map(|stanza| {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            };
            (field("Package") == Some(package) && field("Status") == Some("install ok installed"))
                .then(|| field("Version").unwrap().to_owned())
        })
    };
    let version = installed("wordpress").expect("Debian's wordpress package is installed");
    assert_eq!(
        tag,
        tag_of(&version),
        "the tag is the wordpress package's version"
    );
    for package in [
        "php-cli",
        "php-mysql",
        "php-curl",
        "wordpress-theme-twentytwentythree",
    ] {
        assert!(
            installed(package).is_some(),
            "{package} should be installed"
        );
    }
    for package in ["apache2", "libapache2-mod-php8.2", "mariadb-client", "perl"] {
        assert!(
            installed(package).is_none(),
            "{package} should not be in the image (PHP's own server, no MySQL client)"
        );
    }

    // Step 3: the config: the user of the example's fsGroup, PHP's server, the labels.
    let config = &image.config;
    assert_eq!(config["User"], "33:33", "config: {config:#}");
    assert_eq!(
        config["Entrypoint"],
        json!([
            "/usr/bin/php",
            "-S",
            "0.0.0.0:8080",
            "-t",
            "/var/www/html",
            "/var/www/router.php"
        ]),
        "config: {config:#}"
    );
    assert!(
        config["Env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e
                .as_str()
                .and_then(|e| e.strip_prefix("PHP_CLI_SERVER_WORKERS="))
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > 1))),
        "config should set PHP_CLI_SERVER_WORKERS to a few: {config:#}"
    );
    let labels = &config["Labels"];
    let label = |key: &str| labels[format!("org.opencontainers.image.{key}")].clone();
    assert_eq!(label("title"), "closte-wordpress", "labels: {labels:#}");
    assert_eq!(label("version"), version.as_str(), "labels: {labels:#}");
    for key in ["description", "source"] {
        assert!(
            label(key).as_str().is_some_and(|v| !v.is_empty()),
            "label {key} should be set: {labels:#}"
        );
    }

    // Step 4: WordPress as real files at /var/www/html, our wp-config.php.
    let settings = entry(&format!("{DOCROOT}/wp-settings.php"));
    assert_eq!(settings.kind, b'0', "wp-settings.php should be a file");
    let wp_config = entry(&format!("{DOCROOT}/wp-config.php"));
    assert_eq!(
        (wp_config.kind, wp_config.mode & 0o444),
        (b'0', 0o444),
        "wp-config.php should be a readable file"
    );
    let wp_config = String::from_utf8_lossy(&wp_config.data);
    for name in [
        "WORDPRESS_DB_HOST",
        "WORDPRESS_DB_USER",
        "WORDPRESS_DB_PASSWORD",
        "WORDPRESS_DB_NAME",
        "WORDPRESS_CONFIG_EXTRA",
    ] {
        assert!(
            wp_config.contains(&format!("'{name}'")),
            "wp-config.php should read {name}:\n{wp_config}"
        );
    }
    assert!(
        wp_config.contains("eval(")
            && wp_config.contains("require_once ABSPATH . 'wp-settings.php'"),
        "wp-config.php should eval WORDPRESS_CONFIG_EXTRA and load WordPress:\n{wp_config}"
    );
    for folder in [
        "wp-content",
        "wp-content/mu-plugins",
        "wp-content/themes/twentytwentythree",
    ] {
        assert_eq!(
            entry(&format!("{DOCROOT}/{folder}")).kind,
            b'5',
            "/{DOCROOT}/{folder} should be a folder (the example mounts the mu-plugin there)"
        );
    }
    let relative_links: Vec<&String> = layer
        .iter()
        .filter(|(name, e)| name.starts_with(DOCROOT) && e.kind == b'2' && !e.link.starts_with('/'))
        .map(|(name, _)| name)
        .collect();
    assert!(
        relative_links.is_empty(),
        "WordPress's files should be real files, not relative links: {relative_links:?}"
    );

    // Step 5: PHP with mysqli, for the command line (the built-in server's SAPI).
    let php = resolve(layer, "usr/bin/php").expect("/usr/bin/php should lead to a file");
    let php = entry(&php);
    assert!(
        php.kind == b'0' && php.data.starts_with(b"\x7fELF") && php.mode & 0o111 != 0,
        "/usr/bin/php should be an executable ELF file"
    );
    let mysqli: Vec<&String> = layer
        .keys()
        .filter(|n| n.starts_with("usr/lib/php/") && n.ends_with("/mysqli.so"))
        .collect();
    assert_eq!(
        mysqli.len(),
        1,
        "the layer should have mysqli.so: {mysqli:?}"
    );
    assert!(
        layer.keys().any(|n| n.starts_with("etc/php/")
            && n.contains("/cli/conf.d/")
            && n.ends_with("-mysqli.ini")
            && resolve(layer, n).is_some()),
        "mysqli should be enabled for PHP's command line (etc/php/*/cli/conf.d/*-mysqli.ini)"
    );
    let passwd = String::from_utf8_lossy(&entry("etc/passwd").data).into_owned();
    assert!(
        passwd.lines().any(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            fields.len() == 7 && fields[0] == "www-data" && fields[2..4] == ["33", "33"]
        }),
        "/etc/passwd should have www-data as 33:33:\n{passwd}"
    );
    assert_eq!(
        (entry("tmp").kind, entry("tmp").mode),
        (b'5', 0o1777),
        "/tmp"
    );

    // Step 6: one time for every entry, nothing a runtime makes itself.
    let first = layer.values().next().unwrap().mtime;
    let other_times: Vec<&String> = layer
        .iter()
        .filter(|(_, e)| e.mtime != first)
        .map(|(n, _)| n)
        .take(5)
        .collect();
    assert!(
        other_times.is_empty(),
        "entries with another time: {other_times:?}"
    );
    let special: Vec<&String> = layer
        .iter()
        .filter(|(n, e)| n.starts_with("dev/") || !matches!(e.kind, b'0' | b'1' | b'2' | b'5'))
        .map(|(n, _)| n)
        .collect();
    assert!(
        special.is_empty(),
        "no devices, fifos or /dev entries: {special:?}"
    );

    // Step 7: again, from the cache: seconds, the same bytes.
    let again = common::repo_root().join(format!(
        "target/image/again-wordpress-{}.oci.tar",
        std::process::id()
    ));
    let (said_again, path_again) = make_wordpress_image(Some(&again));
    assert_eq!(path_again, again);
    let second = std::fs::read(&again).unwrap();
    std::fs::remove_file(&again).unwrap();
    assert!(
        said_again
            .lines()
            .any(|l| l.starts_with("rootfs ") && l.contains(", cached: ")),
        "the second build should come from the cache:\n{said_again}"
    );
    assert!(
        second == image.archive,
        "a second build from the cache should give the same archive, byte for byte"
    );
}
