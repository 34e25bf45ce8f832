//! The `medrec` binary and the generator link no AWS SDK and no Lambda runtime: those belong to
//! the functions and to the dev-loop poller (`medrec-dev`, local/devloop).

use std::process::Command;

/// The packages `package` depends on at run time (normal edges, host target), by name.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--package", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// AWS SDK, Smithy runtime and Lambda crates; aws-lc-rs (rustls' crypto provider, used for
/// PostgreSQL TLS) is not one of them.
fn is_aws(name: &str) -> bool {
    (name.starts_with("aws-") && !name.starts_with("aws-lc-"))
        || name.starts_with("aws_")
        || name.starts_with("lambda_")
}

#[test]
fn medrec_and_the_generator_link_no_aws_sdk() {
    for package in ["medrec-local", "medrec-generate"] {
        let names = normal_dependencies(package);
        assert!(
            names.iter().any(|n| n == package),
            "cargo tree -p {package} listed nothing: {names:?}"
        );
        let mut aws: Vec<&String> = names.iter().filter(|n| is_aws(n)).collect();
        aws.sort();
        aws.dedup();
        assert!(aws.is_empty(), "{package} depends on {aws:?}");
    }
}

#[test]
fn the_check_sees_the_sdk_where_it_is() {
    let names = normal_dependencies("medrec-devloop");
    assert!(names.iter().any(|n| n == "aws-sdk-sqs"), "{names:?}");
    assert!(names.iter().any(|n| n == "aws_lambda_events"), "{names:?}");
}
