//! Several API keys from the command line: `medrec api-key hash` prints a key's SHA-256, and
//! `medrec serve` takes `MEDREC_API_KEYS` (`id:sha256hex`) with the plain `MEDREC_API_KEY`
//! (id `local`); each caller's key id reaches the access audit.

use std::io::Write;
use std::process::Stdio;

use medrec_testkit::{curl, TestDb};

use crate::medrec;

fn hash(key: &str) -> String {
    let mut child = medrec()
        .command()
        .args(["api-key", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{key}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_takes_hashed_keys_by_id_and_the_plain_local_one() {
    assert_eq!(
        hash("test"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    let db = TestDb::with_sample().await.unwrap();
    let (_server, base) = crate::serve::serve_with(&db, |command| {
        command
            .env("MEDREC_API_KEY", "plain-local-key")
            .env("MEDREC_API_KEYS", format!("ops:{}", hash("ops-key-1")));
    });
    let person = format!("{base}/persons/3591");
    assert_eq!(curl(&["-H", "x-api-key: ops-key-1", &person]).0, 200);
    assert_eq!(curl(&["-H", "x-api-key: plain-local-key", &person]).0, 200);
    assert_eq!(
        curl(&["-H", &format!("x-api-key: {}", hash("ops-key-1")), &person]).0,
        401
    );
    let ids: Vec<String> = medrec_testkit::column(
        &db.client().await.unwrap(),
        "SELECT key_id FROM access_audit ORDER BY audit_id",
    )
    .await;
    assert_eq!(ids, ["ops", "local"]);

    // No key at all is refused at start.
    let output = medrec()
        .on(&db)
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("MEDREC_API_KEY")
        .env_remove("MEDREC_API_KEYS")
        .output()
        .unwrap();
    assert!(!output.status.success());
}
