//! The test control plane's script: a run that ends leaves the next run of
//! the same scenario, in the same folder, alone.

mod common;

use std::path::Path;
use std::process::Command;

use common::wait::eventually;

fn controlplane(args: &[&str]) {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    common::controlplane(&args);
}

/// Whether any process's command line carries `text`.
fn running_with(text: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(text))
    })
}

fn ready(dir: &Path) -> bool {
    Command::new("kubectl")
        .args(["get", "--raw", "/readyz"])
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .output()
        .is_ok_and(|out| out.status.success())
}

#[tokio::test]
async fn a_watcher_stops_only_the_control_plane_its_own_run_started() {
    let dir = common::repo_root()
        .join("target/controlplane-tests")
        .join(format!("twice-{}", std::process::id()));
    let dir_arg = dir.to_str().unwrap();

    // the first run, watching a process that stands for its test binary
    let mut first_run = Command::new("sleep").arg("600").spawn().unwrap();
    controlplane(&["up", dir_arg, "--watch", &first_run.id().to_string()]);
    let first_owner = std::fs::read_to_string(dir.join("owner")).unwrap();
    let first_owner = first_owner.trim();
    assert!(running_with(first_owner), "the first run's watcher runs");

    // it ends as a run ends (its process exits, its cluster is taken down),
    // and the same scenario starts again at once in the same folder
    first_run.kill().unwrap();
    first_run.wait().unwrap();
    controlplane(&["down", dir_arg]);
    controlplane(&["up", dir_arg, "--watch", &std::process::id().to_string()]);
    let second_owner = std::fs::read_to_string(dir.join("owner")).unwrap();
    assert_ne!(second_owner.trim(), first_owner);

    // the first run's watcher notices its process is gone, and finishes
    eventually(60, "the first run's watcher to finish", || async {
        !running_with(first_owner)
    })
    .await;
    assert!(
        ready(&dir),
        "the first run's watcher took down the second run's control plane"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("owner")).unwrap(),
        second_owner
    );
    controlplane(&["down", dir_arg]);
}
