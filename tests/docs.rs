//! The README's architecture table names every module under `src/`, and
//! every `src/` path it names exists: a module added, moved or renamed
//! without the table fails here. No IO but reading the tree.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The architecture table's rows: first cell (paths, in backticks) -> the
/// whole row's text.
fn architecture_rows() -> BTreeMap<String, String> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Architecture\n")
        .nth(1)
        .expect("README.md has an Architecture section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or_default();
        for path in first.split('`').skip(1).step_by(2) {
            rows.insert(path.to_string(), line.to_string());
        }
    }
    rows
}

/// The modules of one folder under `src/`: file stems and sub-folders,
/// without `mod` and unit-test modules.
fn modules_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a folder entry").path())
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?.to_string();
            let module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
            (module && stem != "mod" && stem != "tests").then_some(stem)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_architecture_table_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rows = architecture_rows();
    let mut missing = Vec::new();
    for top in modules_in(&root.join("src")) {
        let dir = root.join("src").join(&top);
        if !dir.is_dir() {
            let path = format!("src/{top}.rs");
            if !rows.contains_key(&path) {
                missing.push(path);
            }
            continue;
        }
        let path = format!("src/{top}/");
        let Some(row) = rows.get(&path) else {
            missing.push(path);
            continue;
        };
        for module in modules_in(&dir) {
            if !row.contains(&format!("`{module}`")) {
                missing.push(format!("src/{top}/{module} (in the `{path}` row)"));
            }
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "README.md's architecture table does not name these modules"
    );
}

#[test]
fn every_path_in_the_architecture_table_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rows = architecture_rows();
    assert!(
        rows.len() >= 20,
        "the architecture table was not found or lost rows: {:?}",
        rows.keys()
    );
    let stale: Vec<&String> = rows
        .keys()
        .filter(|path| !path.contains('*') && !root.join(path).exists())
        .collect();
    assert_eq!(
        stale,
        Vec::<&String>::new(),
        "README.md's architecture table names paths that do not exist"
    );
}
