//! The API as users run it locally: `cargo lambda watch` serving the `api` binary over HTTP
//! (API Gateway HTTP API payloads through the function URL), called with the README's curl lines.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use medrec_testkit::{free_port, status_and_body, workspace_root, TestDb};
use serde_json::Value as Json;

const KEY: &str = "watch-test-key";

/// cargo-lambda: `CARGO_LAMBDA`, the repo's tool venv (`make tools`), or PATH.
fn cargo_lambda() -> PathBuf {
    if let Ok(path) = std::env::var("CARGO_LAMBDA") {
        return path.into();
    }
    let venv = workspace_root().join(".venv/tools/bin/cargo-lambda");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("cargo-lambda")
}

/// `cargo lambda watch` in its own process group, killed (with the functions it ran) on drop.
struct Watch {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Watch {
    fn start(database_url: &str, log_dir: &Path) -> Watch {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let log = log_dir.join("watch.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .current_dir(workspace_root())
            .env("DATABASE_URL", database_url)
            .env("MEDREC_API_KEY", KEY)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run cargo-lambda ({e}); install it with `make tools`")
            });
        Watch {
            child,
            url: format!("http://127.0.0.1:{port}/lambda-url/api"),
            log,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        // SAFETY: signalling a process group this test created.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// `curl` through bash, as a user would; returns (HTTP status, body).
fn curl(line: &str, api_url: &str) -> (u16, String) {
    try_curl(line, api_url).unwrap_or_else(|| panic!("{line} failed"))
}

/// `None` when curl itself fails (nothing listening yet).
fn try_curl(line: &str, api_url: &str) -> Option<(u16, String)> {
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("{line} -w '\\n%{{http_code}}'"))
        .env("API_URL", api_url)
        .env("MEDREC_API_KEY", KEY)
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| status_and_body(&output.stdout))
}

/// The curl lines of the README's API examples (the fenced block after `<!-- api-examples -->`).
fn readme_examples() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let after = readme
        .split_once("<!-- api-examples -->")
        .expect("README has an api-examples block")
        .1;
    let block = after.split("```").nth(1).expect("a fenced block");
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_curl_examples_work_against_cargo_lambda_watch() {
    let db = TestDb::with_sample().await.unwrap();
    let logs = tempfile::tempdir().unwrap();
    let watch = Watch::start(db.config.expose_url(), logs.path());

    // The first call builds and starts the function; allow for a build.
    let started = Instant::now();
    loop {
        if let Some((200, _)) = try_curl("curl -s \"$API_URL/health\"", &watch.url) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "cargo lambda watch never answered: {}",
            watch.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let examples = readme_examples();
    assert!(examples.len() >= 3, "{examples:?}");
    for line in &examples {
        let (status, body) = curl(line, &watch.url);
        assert_eq!(status, 200, "{line}: {body}");
        let json: Json = serde_json::from_str(&body).unwrap();
        if line.contains("/features") {
            assert_eq!(json["person_id"], 3591, "{line}");
            assert!(json["data"]["taking_alpha_blockers"].is_boolean(), "{line}");
        } else if line.contains("/persons/") {
            assert_eq!(json["person_id"], 3591, "{line}");
            assert!(json["data"].is_object(), "{line}");
        }
    }

    // Over the wire too: the key, unknown persons, bad ids, other methods.
    let (status, body) = curl("curl -s \"$API_URL/persons/3591\"", &watch.url);
    assert_eq!(status, 401, "{body}");
    let key = "-H \"x-api-key: $MEDREC_API_KEY\"";
    let (status, _) = curl(
        &format!("curl -s {key} \"$API_URL/persons/999999\""),
        &watch.url,
    );
    assert_eq!(status, 404);
    let (status, body) = curl(
        &format!("curl -s {key} \"$API_URL/persons/-3\""),
        &watch.url,
    );
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Json>(&body).unwrap()["status"], 400);
    let (status, _) = curl(
        &format!("curl -s -X DELETE {key} \"$API_URL/persons/3591\""),
        &watch.url,
    );
    assert_eq!(status, 405);

    // Logs carry routes, statuses and timings, never record values.
    let logs = watch.logs();
    assert!(logs.contains("\"route\":\"person\""), "{logs}");
    for value in ["HYTRIN", "terazosin", "Quinazoline"] {
        assert!(!logs.contains(value), "{value} in the logs");
    }
}
