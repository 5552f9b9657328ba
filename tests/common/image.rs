//! `make image` from a test, and the archive it wrote; the reading of an
//! OCI image layout archive (tar and JSON; `gzip` unpacks the layer) that
//! the image tests share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const MUSL_HELP: &str = "`make image` needs the Rust target x86_64-unknown-linux-musl \
     (`rustup target add x86_64-unknown-linux-musl`, which make runs itself when rustup \
     manages the toolchain) and musl-gcc (`apt-get install musl-tools`)";

/// Whether cargo set this variable for this test process, for this package
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_VERSION`, ...). Build scripts that read
/// them (ring's) would run again for a cargo started with them, and rebuild
/// much of the release binary each time.
fn set_by_cargo_for_this_test(name: &str) -> bool {
    name == "OUT_DIR"
        || [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_CFG_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Runs `make image`, with `IMAGE_ARCHIVE` when given; returns what it printed.
pub fn make_image(archive: Option<&Path>) -> String {
    make_image_in(super::repo_root(), archive)
}

/// `make image` in the source tree `dir` (this one or a release's).
fn make_image_in(dir: &Path, archive: Option<&Path>) -> String {
    let mut make = Command::new("make");
    make.arg("image");
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_this_test) {
            make.env_remove(name);
        }
    }
    if let Some(archive) = archive {
        make.arg(format!("IMAGE_ARCHIVE={}", archive.display()));
    }
    let out = make
        .current_dir(dir)
        .output()
        .expect("run make (apt-get install make)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "make image in {} failed ({}):\n{}\n{stderr}\n{MUSL_HELP}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
    );
    String::from_utf8(out.stdout).unwrap()
}

pub const MMDEBSTRAP_HELP: &str = "`make wordpress-image` builds WordPress's root file system from \
     Debian's packages with mmdebstrap, which is not installed: apt-get install -y mmdebstrap \
     (`bash .ci/run` installs it)";

/// Runs `make wordpress-image`, with `WORDPRESS_IMAGE_ARCHIVE` when given;
/// returns what it printed and the archive it wrote. Fails the test, saying
/// how to install it, when mmdebstrap is missing (the first build needs it;
/// later ones come from the cache under ~/.cache/closte-operator).
pub fn make_wordpress_image(archive: Option<&Path>) -> (String, PathBuf) {
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("mmdebstrap").is_file())
    });
    assert!(on_path, "{MMDEBSTRAP_HELP}");
    let mut make = Command::new("make");
    make.arg("wordpress-image");
    if let Some(archive) = archive {
        make.arg(format!("WORDPRESS_IMAGE_ARCHIVE={}", archive.display()));
    }
    let out = make
        .current_dir(super::repo_root())
        .output()
        .expect("run make (apt-get install make)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "make wordpress-image failed ({}):\n{stdout}\n{stderr}",
        out.status,
    );
    let path = stdout
        .lines()
        .find_map(|line| line.strip_prefix("archive "))
        .and_then(|rest| rest.trim().split(" (").next())
        .unwrap_or_else(|| {
            panic!("make wordpress-image should say where the archive is:\n{stdout}")
        });
    let path = super::repo_root().join(path);
    (stdout, path)
}

/// The archive `make image` writes by default, for the chart's appVersion.
pub fn default_archive() -> PathBuf {
    super::repo_root().join(format!(
        "target/image/closte-operator-{}.oci.tar",
        app_version()
    ))
}

/// The chart's appVersion: the image's tag and version label.
pub fn app_version() -> String {
    let path = super::repo_root().join(CHART_YAML);
    chart_versions(&std::fs::read_to_string(path).unwrap()).app_version
}

/// The chart's file, from the repository's root.
const CHART_YAML: &str = "charts/closte-operator/Chart.yaml";

/// A chart's own version and the version of the application it installs.
pub struct ChartVersions {
    pub version: String,
    pub app_version: String,
}

/// The versions a Chart.yaml's text names.
pub fn chart_versions(chart_yaml: &str) -> ChartVersions {
    let chart: serde_json::Value = serde_yaml::from_str(chart_yaml).expect("Chart.yaml is YAML");
    let field = |name: &str| {
        chart[name]
            .as_str()
            .unwrap_or_else(|| panic!("Chart.yaml has no {name}"))
            .to_owned()
    };
    ChartVersions {
        version: field("version"),
        app_version: field("appVersion"),
    }
}

/// A released version's chart and image, built from its commit: the
/// commit's tree cloned and its `make image` run once per machine, kept
/// under `~/.cache/closte-operator/releases/COMMIT` (`CLOSTE_OPERATOR_CACHE`).
pub struct PreviousRelease {
    pub version: String,
    pub chart: PathBuf,
    pub archive: PathBuf,
}

pub fn previous_release(version: &str) -> PreviousRelease {
    let root = super::repo_root();
    let commit = release_commit(version);
    let cache = std::env::var_os("CLOSTE_OPERATOR_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/closte-operator")
        });
    let dir = cache.join("releases").join(&commit);
    let source = dir.join("src");
    let archive = dir.join("image.oci.tar");
    if !archive.is_file() {
        let _ = std::fs::remove_dir_all(&source);
        std::fs::create_dir_all(&dir).unwrap();
        let root = root.to_str().unwrap();
        super::git(&dir, &["clone", "--quiet", "--no-checkout", root, "src"]);
        super::git(&source, &["checkout", "--quiet", "--detach", &commit]);
        make_image_in(&source, Some(&archive));
    }
    PreviousRelease {
        version: version.to_owned(),
        chart: source.join("charts/closte-operator"),
        archive,
    }
}

/// The commit released as `version`: its tag `vVERSION`, or, in a clone
/// without tags (a branch fetched alone), the last commit before the one
/// that moved the chart's version on from it.
fn release_commit(version: &str) -> String {
    let root = super::repo_root();
    let tag = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("v{version}^{{commit}}"))
        .current_dir(root)
        .output()
        .expect("run git");
    if tag.status.success() {
        return String::from_utf8(tag.stdout).unwrap().trim().to_owned();
    }
    let chart_at = |commit: &str| {
        let text = super::git(root, &["show", &format!("{commit}:{CHART_YAML}")]);
        chart_versions(&text).version
    };
    let changes = super::git(root, &["log", "--format=%H %P", "--", CHART_YAML]);
    for change in changes.lines() {
        let mut ids = change.split_whitespace();
        let (Some(commit), Some(parent)) = (ids.next(), ids.next()) else {
            continue;
        };
        if chart_at(commit) != version && chart_at(parent) == version {
            return parent.to_owned();
        }
    }
    panic!(
        "release {version}: this clone has neither the tag v{version} nor a commit that \
         moved {CHART_YAML} on from version {version}; fetch the history and tags: \
         git fetch --unshallow --tags"
    )
}

/// `make wordpress-image` written to `archive`; the image's name.
pub fn wordpress_image(archive: &Path) -> String {
    let (said, _) = make_wordpress_image(Some(archive));
    said.lines()
        .find_map(|l| l.strip_prefix("image "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("make wordpress-image named no image:\n{said}"))
        .to_owned()
}
pub fn sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// One entry of a ustar archive.
#[derive(Debug)]
pub struct Entry {
    pub kind: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub link: String,
    pub data: Vec<u8>,
}

/// The entries of a ustar archive in their order; folder names without their
/// trailing `/`. Pax headers are refused: the archives carry no extended
/// attributes or times of their own.
pub fn untar(bytes: &[u8], what: &str) -> Vec<(String, Entry)> {
    fn text(field: &[u8]) -> String {
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        String::from_utf8(field[..end].to_vec()).expect("a UTF-8 name")
    }
    fn octal(field: &[u8]) -> u64 {
        let digits = text(field);
        u64::from_str_radix(digits.trim_matches(|c| c == ' ' || c == '\0'), 8).unwrap_or(0)
    }
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|&b| b != 0) {
        let header = &bytes[at..at + 512];
        assert_eq!(
            &header[257..263],
            b"ustar\0",
            "{what}: the entry at byte {at} is not a POSIX ustar header"
        );
        let kind = header[156];
        assert!(
            !matches!(kind, b'x' | b'g'),
            "{what}: a pax header at byte {at}; the archive must carry none (they hold times)"
        );
        let (prefix, name) = (text(&header[345..500]), text(&header[..100]));
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = octal(&header[124..136]) as usize;
        let data = bytes[at + 512..at + 512 + size].to_vec();
        entries.push((
            name.trim_end_matches('/').to_owned(),
            Entry {
                kind,
                mode: octal(&header[100..108]) as u32,
                uid: octal(&header[108..116]) as u32,
                gid: octal(&header[116..124]) as u32,
                mtime: octal(&header[136..148]),
                link: text(&header[157..257]),
                data,
            },
        ));
        at += 512 + size.div_ceil(512) * 512;
    }
    entries
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip unpacks the layer: apt-get install gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().expect("write to gzip");
    assert!(out.status.success(), "the layer is not valid gzip");
    out.stdout
}

/// The image as the archive holds it.
pub struct Image {
    pub archive: Vec<u8>,
    /// The manifest's digest, from index.json.
    pub digest: String,
    /// index.json's descriptor of the manifest.
    pub descriptor: Value,
    /// The config's `config` object.
    pub config: Value,
    pub created: String,
    pub layer: BTreeMap<String, Entry>,
}

/// Reads an OCI image layout archive: every blob's name is its digest, one
/// manifest for linux/amd64, its config and its one gzip'd layer.
pub fn read_image(path: &Path) -> Image {
    let archive = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let entries = untar(&archive, "the archive");
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "the archive's entries are not sorted");
    let files: BTreeMap<&str, &Entry> = entries.iter().map(|(n, e)| (n.as_str(), e)).collect();
    for (name, entry) in &files {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(
                sha256(&entry.data),
                format!("sha256:{hex}"),
                "blob {name} does not have the digest it is named by"
            );
        }
    }
    let json = |name: &str| -> Value {
        let entry = files
            .get(name)
            .unwrap_or_else(|| panic!("the archive has no {name}; it has {names:?}"));
        serde_json::from_slice(&entry.data).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let blob = |digest: &Value| -> &Entry {
        let digest = digest.as_str().expect("a digest");
        let name = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        files
            .get(name.as_str())
            .unwrap_or_else(|| panic!("the archive has no blob {digest}"))
    };
    assert_eq!(
        json("oci-layout"),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = json("index.json");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let [descriptor] = index["manifests"].as_array().unwrap().as_slice() else {
        panic!("index.json should list exactly one manifest: {index}");
    };
    assert_eq!(descriptor["platform"]["os"], "linux");
    assert_eq!(descriptor["platform"]["architecture"], "amd64");
    let manifest: Value = serde_json::from_slice(&blob(&descriptor["digest"]).data).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config: Value = serde_json::from_slice(&blob(&manifest["config"]["digest"]).data).unwrap();
    let [layer] = manifest["layers"].as_array().unwrap().as_slice() else {
        panic!("the manifest should list exactly one layer: {manifest}");
    };
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let layer_tar = gunzip(&blob(&layer["digest"]).data);
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([sha256(&layer_tar)]),
        "the config's diff_id is not the digest of the unpacked layer"
    );
    let layer_entries = untar(&layer_tar, "the layer");
    let layer_names: Vec<&str> = layer_entries.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = layer_names.clone();
    sorted.sort();
    assert_eq!(layer_names, sorted, "the layer's entries are not sorted");
    Image {
        digest: descriptor["digest"].as_str().unwrap().to_owned(),
        descriptor: descriptor.clone(),
        created: config["created"].as_str().unwrap_or_default().to_owned(),
        config: config["config"].clone(),
        layer: layer_entries.into_iter().collect(),
        archive,
    }
}
