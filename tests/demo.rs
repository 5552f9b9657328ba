//! The README's first command: `make demo` installs the chart, runs the
//! controller and the sidecar under their ServiceAccounts, and ends with
//! every example `done`; `make demo-down` cleans up.

use std::process::Command;

#[test]
fn make_demo_ends_with_every_example_done() {
    let bin = env!("CARGO_BIN_EXE_closte-operator");
    let make = |target: &str| {
        Command::new("make")
            .arg(target)
            .arg(format!("BIN={bin}"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("KUBECONFIG")
            .output()
            .expect("run make")
    };
    let demo = make("demo");
    let down = make("demo-down");
    let out = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "make demo failed:\n{out}\n{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(out.contains("Every domain is done"), "{out}");
    for example in [
        "shop-example-com",
        "buecher-example",
        "wildcard-blogs-example-org",
        "sidecar-example-com",
    ] {
        let last_table = out.rsplit("NAME ").next().unwrap();
        let row = last_table
            .lines()
            .find(|l| l.starts_with(example))
            .unwrap_or_else(|| panic!("{example} is not in the final table:\n{last_table}"));
        assert!(row.contains(" done "), "{row}");
    }
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}
