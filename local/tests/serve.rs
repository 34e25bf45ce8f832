//! `medrec serve`: the API's router behind a plain HTTP server, over the wire.

use std::process::Stdio;
use std::time::{Duration, Instant};

use medrec_testkit::{curl, free_port, TestDb};
use serde_json::Value as Json;

use crate::medrec;

/// Kills the server on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_like_the_api_function() {
    let db = TestDb::with_sample().await.unwrap();
    let port = free_port();
    let _server = Server(
        medrec()
            .on(&db)
            .command()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("MEDREC_API_KEY", "serve-test-key")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while curl(&[&format!("{base}/health")]).0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let key = "x-api-key: serve-test-key";
    let (status, body) = curl(&["-H", key, &format!("{base}/persons/3591/features")]);
    assert_eq!(status, 200, "{body}");
    let json: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(json["data"]["taking_alpha_blockers"], true);
    let (status, body) = curl(&["-H", key, &format!("{base}/persons/3597?types=labs")]);
    assert_eq!(status, 200);
    let json: Json = serde_json::from_str(&body).unwrap();
    assert!(!json["data"]["labs"].as_array().unwrap().is_empty());
    assert!(json["data"].get("rx").is_none());
    assert_eq!(curl(&[&format!("{base}/persons/3591")]).0, 401);
    assert_eq!(curl(&["-H", key, &format!("{base}/persons/abc")]).0, 400);
    assert_eq!(
        curl(&["-H", key, "-X", "POST", &format!("{base}/persons/3591")]).0,
        405
    );
}
