//! The `closte-operator` binary itself: the `crd` output is the committed CRD,
//! and every subcommand and flag explains itself in `--help`.

mod common;

use std::process::Output;

use common::process::Launch;

fn run(args: &[&str]) -> Output {
    Launch::run(args[0]).args(&args[1..]).output()
}

#[test]
fn crd_subcommand_prints_the_committed_crd() {
    let out = run(&["crd"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crds/mappeddomains.closte-operator.io.yaml"),
    )
    .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed == committed, "crds/ is stale: run `make crd`");
    let in_chart = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("charts/closte-operator/files/mappeddomains.closte-operator.io.yaml"),
    )
    .unwrap();
    assert!(
        printed == in_chart,
        "the chart's CRD is stale: run `make crd`"
    );
}

#[test]
fn help_lists_every_subcommand_with_a_line() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for cmd in [
        "crd",
        "controller",
        "sidecar",
        "simulate",
        "check",
        "status",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("--help does not list {cmd}:\n{help}"));
        assert!(
            line.len() > cmd.len() + 10,
            "{cmd} has no description: {line:?}"
        );
    }
    assert!(help.contains("--log-format"), "{help}");
}

#[test]
fn sidecar_explains_its_flags_and_wants_a_token() {
    let out = run(&["sidecar", "-h"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--namespace",
        "--token-file",
        "--credentials-secret",
        "--check-interval",
        "--expected-target",
    ] {
        // clap puts a long description on the line after the flag
        let lines: Vec<&str> = help.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("sidecar -h lacks {flag}:\n{help}"));
        let description = lines.get(at + 1).copied().unwrap_or_default().trim();
        assert!(
            description.len() > 20 && !description.starts_with('-'),
            "{flag} has no description:\n{help}"
        );
    }
    let out = Launch::run("sidecar")
        .env_remove("CLOSTE_SIDECAR_TOKEN")
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no token: give --token-file or set CLOSTE_SIDECAR_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["sidecar", "--check-interval", "5s"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad flag values are refused by the parser"
    );
}

#[test]
fn controller_explains_where_its_own_key_may_be_used() {
    let out = run(&["controller", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = help.lines().collect();
    for (flag, says) in [
        (
            "--default-key-namespaces <NS,...>",
            "serves every namespace",
        ),
        (
            "--default-key-namespace-selector <SELECTOR>",
            "get/list/watch",
        ),
    ] {
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("controller --help lacks {flag}:\n{help}"));
        let description = lines.get(at + 1).copied().unwrap_or_default();
        assert!(description.contains(says), "{flag}: {description}");
    }
    let out = run(&["controller", "--default-key-namespace-selector", "a b"]);
    assert_eq!(out.status.code(), Some(2), "a bad selector is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read requirement \"a b\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
