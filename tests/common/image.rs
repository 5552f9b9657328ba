//! `make image` from a test, and the archive it wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// The archive `make image` writes by default, for the chart's appVersion.
pub fn default_archive() -> PathBuf {
    super::repo_root().join(format!(
        "target/image/closte-operator-{}.oci.tar",
        app_version()
    ))
}

/// The chart's appVersion: the image's tag and version label.
pub fn app_version() -> String {
    let path = super::repo_root().join("charts/closte-operator/Chart.yaml");
    let chart: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).expect("Chart.yaml is YAML");
    chart["appVersion"]
        .as_str()
        .expect("Chart.yaml has an appVersion")
        .to_owned()
}

/// A released version's chart and image, from its git tag: the tag's tree
/// cloned and its `make image` run once per machine, kept under
/// `~/.cache/closte-operator/releases/COMMIT` (`CLOSTE_OPERATOR_CACHE`).
pub struct PreviousRelease {
    pub tag: String,
    pub chart: PathBuf,
    pub archive: PathBuf,
}

pub fn previous_release(tag: &str) -> PreviousRelease {
    let root = super::repo_root();
    let git = |dir: &Path, args: &[&str]| -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let found = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{tag}^{{commit}}"),
        ])
        .current_dir(root)
        .output()
        .expect("run git");
    assert!(
        found.status.success(),
        "the release tag {tag} is not in this clone; fetch it: git fetch --tags"
    );
    let commit = String::from_utf8(found.stdout).unwrap().trim().to_owned();
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
        git(
            &dir,
            &[
                "clone",
                "--quiet",
                "--no-checkout",
                root.to_str().unwrap(),
                "src",
            ],
        );
        git(&source, &["checkout", "--quiet", "--detach", &commit]);
        make_image_in(&source, Some(&archive));
    }
    PreviousRelease {
        tag: tag.to_owned(),
        chart: source.join("charts/closte-operator"),
        archive,
    }
}

/// `make wordpress-image` (WordPress from Debian's packages; the root file
/// system is cached per machine), written to `archive`; the image's name.
pub fn wordpress_image(archive: &Path) -> String {
    let mut make = Command::new("make");
    make.arg("-s")
        .arg("wordpress-image")
        .arg(format!("WORDPRESS_IMAGE_ARCHIVE={}", archive.display()));
    let out = make
        .current_dir(super::repo_root())
        .output()
        .expect("run make (apt-get install make)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "make wordpress-image failed ({}):\n{stdout}\n{}\n(it needs mmdebstrap: apt-get install mmdebstrap)",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("image "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("make wordpress-image named no image:\n{stdout}"))
        .to_owned()
}
