//! Every file in a crate's tests/ directory is compiled into a test binary. The crates with
//! several test files have `autotests = false` and one tests/main.rs that declares the others as
//! modules, so a new file that no `mod` line (or `[[test]]` entry) names would never run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

/// (package directory, root files of its test targets) of every workspace member.
fn test_targets() -> Vec<(PathBuf, Vec<PathBuf>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Json = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let manifest = Path::new(package["manifest_path"].as_str().unwrap());
            let roots = package["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "test"))
                .map(|t| PathBuf::from(t["src_path"].as_str().unwrap()))
                .collect();
            (manifest.parent().unwrap().to_owned(), roots)
        })
        .collect()
}

/// The files of the modules `root` declares (`mod name;` lines).
fn modules(root: &Path) -> Vec<PathBuf> {
    let dir = root.parent().unwrap();
    std::fs::read_to_string(root)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            line.strip_prefix("mod ")?.strip_suffix(';')
        })
        .map(|name| {
            let file = dir.join(format!("{name}.rs"));
            if file.exists() {
                file
            } else {
                dir.join(name).join("mod.rs")
            }
        })
        .collect()
}

#[test]
fn every_test_file_is_in_a_test_binary() {
    let packages = test_targets();
    assert!(packages.len() >= 5, "{packages:?}");
    let mut missing = Vec::new();
    for (dir, roots) in packages {
        let Ok(entries) = std::fs::read_dir(dir.join("tests")) else {
            continue;
        };
        let mut compiled: BTreeSet<PathBuf> = roots.iter().flat_map(|r| modules(r)).collect();
        compiled.extend(roots);
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") && !compiled.contains(&path) {
                missing.push(path);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "test files no test target compiles (add `mod <name>;` to the crate's tests/main.rs): \
         {missing:?}"
    );
}
