//! The committed example events in local/events/ stay current.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The migrations version docs/deploy.md passes to `sam deploy` (a digest of migrations/*.sql
/// and migrations/definitions/*.sql), by the same command.
fn migrations_version() -> String {
    let output = Command::new("bash")
        .arg("-c")
        .arg("cat migrations/*.sql migrations/definitions/*.sql | sha256sum | cut -c1-16")
        .current_dir(root())
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_migrate_events_name_the_current_migrations_version() {
    let deploy = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    assert!(
        deploy.contains(
            "MigrationsVersion=$(cat migrations/*.sql migrations/definitions/*.sql | sha256sum | cut -c1-16)"
        ),
        "docs/deploy.md computes MigrationsVersion another way: change this test with it"
    );
    let version = migrations_version();
    assert_eq!(version.len(), 16);
    for event in ["migrate-create.json", "migrate-delete.json"] {
        let text = std::fs::read_to_string(root().join("local/events").join(event)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json["ResourceProperties"]["MigrationsVersion"], version,
            "local/events/{event} names another migrations version than migrations/ has: \
             `make events` writes the current one"
        );
    }
}
