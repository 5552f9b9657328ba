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
        .current_dir(super::repo_root())
        .output()
        .expect("run make (apt-get install make)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "make image failed ({}):\n{}\n{stderr}\n{MUSL_HELP}",
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
