//! docs/architecture.md's diagram names exactly the workspace's crates, at their paths.

use std::collections::BTreeSet;

use medrec_testkit::workspace_root;

/// (crate name, path) of every workspace member, from each member's Cargo.toml.
fn members() -> BTreeSet<(String, String)> {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("a members list in the workspace manifest");
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .map(|path| {
            let crate_manifest =
                std::fs::read_to_string(workspace_root().join(&path).join("Cargo.toml")).unwrap();
            let name = crate_manifest
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .map(|n| n.trim_matches('"').to_owned())
                .unwrap();
            (name, path)
        })
        .collect()
}

/// (crate name, path) of every node of the diagram: `id["name<br/>path<br/>..."]`.
fn diagram() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/architecture.md")).unwrap();
    let mermaid = doc
        .split_once("```mermaid")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(m, _)| m)
        .expect("a mermaid block");
    mermaid
        .lines()
        .filter_map(|l| l.split_once("[\"").map(|(_, label)| label))
        .map(|label| {
            let mut parts = label.split("<br/>");
            let name = parts.next().unwrap().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            (name, path)
        })
        .collect()
}

/// The medrec crates each member depends on (normal dependencies only).
fn dependencies() -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for (name, path) in members() {
        let manifest =
            std::fs::read_to_string(workspace_root().join(&path).join("Cargo.toml")).unwrap();
        let mut in_dependencies = false;
        for line in manifest.lines() {
            if line.starts_with('[') {
                in_dependencies = line == "[dependencies]";
            } else if in_dependencies && line.starts_with("medrec-") {
                let dependency = line.split(['.', ' ', '=']).next().unwrap();
                edges.insert((name.clone(), dependency.to_owned()));
            }
        }
    }
    edges
}

/// The diagram's arrows, as (crate, crate it depends on).
fn arrows() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/architecture.md")).unwrap();
    let mermaid = doc.split_once("```mermaid").unwrap().1;
    let mermaid = mermaid.split_once("```").unwrap().0;
    let mut names = std::collections::BTreeMap::new();
    for line in mermaid.lines() {
        if let Some((id, label)) = line.trim().split_once("[\"") {
            names.insert(
                id.to_owned(),
                label.split("<br/>").next().unwrap().to_owned(),
            );
        }
    }
    mermaid
        .lines()
        .filter_map(|l| l.split_once("-->"))
        .map(|(from, to)| (names[from.trim()].clone(), names[to.trim()].clone()))
        .collect()
}

/// Every arrow is a real dependency, and every dependency between crates is drawn or follows
/// from arrows (lambda -> pipeline -> store implies lambda may use the store).
#[test]
fn the_diagram_draws_only_real_dependencies_and_implies_all_of_them() {
    let arrows = arrows();
    let dependencies = dependencies();
    let false_arrows: Vec<_> = arrows.difference(&dependencies).collect();
    assert!(
        false_arrows.is_empty(),
        "not dependencies: {false_arrows:?}"
    );
    let reachable = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(at) = stack.pop() {
            if at == to {
                return true;
            }
            if seen.insert(at.clone()) {
                stack.extend(
                    arrows
                        .iter()
                        .filter(|(a, _)| *a == at)
                        .map(|(_, b)| b.clone()),
                );
            }
        }
        false
    };
    let undrawn: Vec<_> = dependencies
        .iter()
        .filter(|(from, to)| !reachable(from, to))
        .collect();
    assert!(
        undrawn.is_empty(),
        "dependencies the diagram does not imply: {undrawn:?}"
    );
}

#[test]
fn the_diagram_names_every_crate_and_only_crates_that_exist() {
    let members = members();
    assert!(members.len() >= 5, "{members:?}");
    assert_eq!(diagram(), members);
}
