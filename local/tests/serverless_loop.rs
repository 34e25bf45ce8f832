//! The serverless loop end to end, as `make local-up` runs it: the sample's CSVs uploaded to the
//! LocalStack bucket flow S3 -> SQS -> clean function -> features queue -> features function, and
//! come back as features from the API URL served by `cargo lambda watch`. Every hop passes
//! through the emulated services; nothing here calls a handler directly.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use medrec_testkit::{curl, free_port, sample_dir, workspace_root, Medrec};
use serde_json::Value as Json;
use tokio_postgres::NoTls;

/// A private stack (own state directory and ports), taken down by `make local-down` on drop.
struct Stack {
    state: tempfile::TempDir,
    ports: [(&'static str, String); 2],
    env: BTreeMap<String, String>,
}

impl Stack {
    fn make(&self, target: &str) -> std::process::Output {
        Command::new("make")
            .args(["--no-print-directory", target])
            .current_dir(workspace_root())
            .env("MEDREC_STATE_DIR", self.state.path())
            .envs(self.ports.iter().map(|(k, v)| (*k, v.as_str())))
            .env("ESM_RETRY_AFTER", "1")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    }

    fn up() -> Stack {
        let mut stack = Stack {
            state: tempfile::tempdir().unwrap(),
            ports: [
                ("LOCALSTACK_PORT", free_port().to_string()),
                ("LAMBDA_PORT", free_port().to_string()),
            ],
            env: BTreeMap::new(),
        };
        let output = stack.make("local-up");
        assert!(
            output.status.success(),
            "make local-up failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        for name in ["API_URL", "BUCKET", "MEDREC_API_KEY"] {
            assert!(
                stdout.lines().any(|l| l.starts_with(&format!("{name}="))),
                "local-up printed no {name}= line: {stdout}"
            );
        }
        let env = std::fs::read_to_string(stack.state.path().join("env")).unwrap();
        stack.env = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        stack
    }

    fn var(&self, name: &str) -> &str {
        &self.env[name]
    }

    /// The AWS CLI of the LocalStack venv, pointed at this stack.
    fn aws(&self, args: &[&str]) -> String {
        let output = Command::new(workspace_root().join(".venv/localstack/bin/aws"))
            .args([
                "--endpoint-url",
                self.var("AWS_ENDPOINT_URL"),
                "--output",
                "json",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn upload_sample(&self) {
        for table in ["lifestyle", "rx", "conditions", "labs", "tests"] {
            let file = sample_dir().join(format!("{table}_ae.csv"));
            self.aws(&[
                "s3",
                "cp",
                "--only-show-errors",
                file.to_str().unwrap(),
                &format!("s3://{}/raw/{table}/{table}_ae.csv", self.var("BUCKET")),
            ]);
        }
    }

    /// `aws s3 cp` of `s3://BUCKET/key` to `to`; false when it is not there (yet).
    fn download(&self, key: &str, to: &std::path::Path) -> bool {
        Command::new(workspace_root().join(".venv/localstack/bin/aws"))
            .args(["--endpoint-url", self.var("AWS_ENDPOINT_URL"), "s3", "cp"])
            .args(["--only-show-errors"])
            .arg(format!("s3://{}/{key}", self.var("BUCKET")))
            .arg(to)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap()
            .status
            .success()
    }

    /// Uploads `from` to `s3://BUCKET/key`.
    fn upload(&self, from: &std::path::Path, key: &str) {
        self.aws(&[
            "s3",
            "cp",
            "--only-show-errors",
            from.to_str().unwrap(),
            &format!("s3://{}/{key}", self.var("BUCKET")),
        ]);
    }

    /// Waits until the export function has written `exports/<name>.json`, and returns it.
    async fn manifest(&self, name: &str, dir: &std::path::Path) -> Json {
        let to = dir.join(format!("{}.json", name.replace('/', "_")));
        wait_for(
            &format!("exports/{name}.json"),
            Duration::from_secs(120),
            || async { self.download(&format!("exports/{name}.json"), &to) },
        )
        .await;
        serde_json::from_slice(&std::fs::read(&to).unwrap()).unwrap()
    }

    fn get(&self, path: &str) -> (u16, Json) {
        let (status, body) = curl(&[
            "-H",
            &format!("x-api-key: {}", self.var("MEDREC_API_KEY")),
            &format!("{}{path}", self.var("API_URL")),
        ]);
        (status, serde_json::from_str(&body).unwrap_or(Json::Null))
    }

    /// Runs each `cargo lambda invoke` line of the README's invoke-examples block against this
    /// stack (its port instead of 9000, its LocalStack port in the events' URLs); returns each
    /// line with the function's answer.
    fn readme_invocations(&self) -> Vec<(String, Json)> {
        let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
        let block = readme
            .split_once("<!-- invoke-examples -->")
            .expect("README has an invoke-examples block")
            .1
            .split("```")
            .nth(1)
            .unwrap();
        let lines: Vec<&str> = block
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("cargo lambda invoke"))
            .collect();
        assert_eq!(lines.len(), 5, "one line per function: {lines:?}");
        let events = tempfile::tempdir().unwrap();
        let localstack = format!("127.0.0.1:{}", self.ports[0].1);
        lines
            .into_iter()
            .map(|line| {
                let mut words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
                for word in words.iter_mut() {
                    if word == "9000" {
                        *word = self.ports[1].1.clone();
                    } else if word.starts_with("local/events/") {
                        let text = std::fs::read_to_string(workspace_root().join(&*word)).unwrap();
                        let copy = events.path().join(word.rsplit('/').next().unwrap());
                        std::fs::write(&copy, text.replace("127.0.0.1:4566", &localstack)).unwrap();
                        *word = copy.to_str().unwrap().to_owned();
                    }
                }
                let output = Command::new(workspace_root().join(".venv/tools/bin/cargo-lambda"))
                    .args(&words[1..])
                    .current_dir(workspace_root())
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{line}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let answer = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
                    panic!("{line}: {e}: {}", String::from_utf8_lossy(&output.stdout))
                });
                (line.to_owned(), answer)
            })
            .collect()
    }

    fn pids(&self) -> Vec<i32> {
        ["esm.pid", "watch.pid", "localstack.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.state.path().join(f)).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let output = self.make("local-down");
        if !output.status.success() {
            eprintln!(
                "make local-down: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// A Parquet file's rows, as text.
fn parquet_rows(path: &std::path::Path) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| row.unwrap().to_string())
        .collect()
}

/// Polls `condition` every 500 ms until it holds, or fails after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Persons whose stored features are missing or older than `since`.
async fn stale_persons(db: &tokio_postgres::Client, since: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM person p LEFT JOIN person_features f USING (person_id)
         WHERE f.person_id IS NULL OR f.computed_at < $1::text::timestamptz",
        &[&since],
    )
    .await
    .unwrap()
    .get(0)
}

async fn now(db: &tokio_postgres::Client) -> String {
    db.query_one("SELECT clock_timestamp()::text", &[])
        .await
        .unwrap()
        .get(0)
}

/// Every clean table's row count, the ingest runs and every person's features: what a repeated
/// upload must leave as it was.
async fn snapshot(db: &tokio_postgres::Client) -> Vec<String> {
    let mut rows = Vec::new();
    for query in [
        "SELECT 'lifestyle', count(*)::text FROM lifestyle",
        "SELECT 'rx', count(*)::text FROM rx",
        "SELECT 'conditions', count(*)::text FROM conditions",
        "SELECT 'labs', count(*)::text FROM labs",
        "SELECT 'tests', count(*)::text FROM tests",
        "SELECT 'quarantine', count(*)::text FROM quarantine",
        "SELECT status, count(*)::text FROM ingest_run GROUP BY 1",
        // computed_seq numbers each run's own loads: it differs between the two runs.
        "SELECT person_id::text, (to_jsonb(f) - 'computed_at' - 'computed_seq')::text FROM person_features f ORDER BY 1",
    ] {
        for row in db.query(query, &[]).await.unwrap() {
            rows.push(format!("{}={}", row.get::<_, String>(0), row.get::<_, String>(1)));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn csvs_uploaded_to_the_bucket_come_back_as_features_from_the_api() {
    let stack = Stack::up();
    let (db, connection) = tokio_postgres::connect(stack.var("DATABASE_URL"), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);

    let before_upload = now(&db).await;
    stack.upload_sample();
    wait_for(
        "the five files and every person's features",
        Duration::from_secs(300),
        || async {
            let loaded: i64 = db
                .query_one(
                    "SELECT count(*) FROM ingest_run WHERE status = 'loaded'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            // Nothing owed too: features computed after an earlier file are not stale by
            // time, but a later file's persons stay owed until their recompute ran.
            let owed: i64 = db
                .query_one("SELECT count(*) FROM features_owed", &[])
                .await
                .unwrap()
                .get(0);
            loaded == 5 && owed == 0 && stale_persons(&db, &before_upload).await == 0
        },
    )
    .await;
    let persons: i64 = db
        .query_one("SELECT count(*) FROM person_features", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(persons, 50);

    // The API's answers, through the function URL.
    let (status, hytrin) = stack.get("/persons/3591/features");
    assert_eq!(status, 200, "{hytrin}");
    assert_eq!(hytrin["data"]["taking_alpha_blockers"], true);
    let (_, hemoglobin) = stack.get("/persons/3597/features");
    assert_eq!(hemoglobin["data"]["hgb_latest"], 11.5);
    assert_eq!(hemoglobin["data"]["hgb_latest_date"], "2035-01-14");
    let (_, no_rx) = stack.get("/persons/3599/features");
    assert_eq!(no_rx["data"]["taking_alpha_blockers"], Json::Null);
    assert_eq!(no_rx["data"]["encounters_6m"], 4);
    let (_, proscar) = stack.get("/persons/3583/features");
    assert_eq!(proscar["data"]["taking_alpha_blockers"], false);
    let (status, person) = stack.get("/persons/3591?types=rx");
    assert_eq!(status, 200);
    let rx = person["data"]["rx"].as_array().unwrap();
    assert!(
        rx.iter().any(|r| r["ingredient"] == "terazosin"),
        "{person}"
    );
    assert!(
        rx.iter().all(|r| r["run_id"].is_i64()),
        "every row has its lineage"
    );
    assert_eq!(stack.get("/persons/999999/features").0, 404);

    // The same files again: the events are processed (the persons are re-announced and
    // recomputed) and nothing else changes.
    let first = snapshot(&db).await;
    let before_again = now(&db).await;
    stack.upload_sample();
    wait_for(
        "the re-uploads to be processed",
        Duration::from_secs(300),
        || async { stale_persons(&db, &before_again).await == 0 },
    )
    .await;
    assert_eq!(snapshot(&db).await, first);

    // A poisoned message in a batch with a good one: the good one is recomputed, the poisoned
    // one is retried until the queue's redrive policy moves it to the DLQ.
    let features_queue = stack.var("FEATURES_QUEUE_URL").to_owned();
    let dlq = format!("{features_queue}-dlq");
    let before_poison = now(&db).await;
    stack.aws(&[
        "sqs",
        "send-message-batch",
        "--queue-url",
        &features_queue,
        "--entries",
        r#"[{"Id":"poison","MessageBody":"poison"},{"Id":"good","MessageBody":"{\"person_ids\":[3591]}"}]"#,
    ]);
    wait_for("3591 to be recomputed", Duration::from_secs(60), || async {
        let fresh: i64 = db
            .query_one(
                "SELECT count(*) FROM person_features
                 WHERE person_id = 3591 AND computed_at >= $1::text::timestamptz",
                &[&before_poison],
            )
            .await
            .unwrap()
            .get(0);
        fresh == 1
    })
    .await;
    let mut in_dlq = false;
    let started = Instant::now();
    while !in_dlq && started.elapsed() < Duration::from_secs(120) {
        let received = stack.aws(&[
            "sqs",
            "receive-message",
            "--queue-url",
            &dlq,
            "--wait-time-seconds",
            "2",
        ]);
        if !received.trim().is_empty() {
            let messages: Json = serde_json::from_str(&received).unwrap();
            in_dlq = messages["Messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["Body"] == "poison"));
        }
    }
    assert!(in_dlq, "the poisoned message did not reach {dlq}");
    assert_eq!(stale_persons(&db, &before_again).await, 0);

    // The vendor feed: per-person JSON files under vendor/ go through their own queue and
    // function; a newer version replaces the person's rows, an older one is ignored.
    let person = 5_000_000_i64;
    let vendor_files = tempfile::tempdir().unwrap();
    for version in ["1", "2"] {
        let dir = vendor_files.path().join(version);
        Medrec::new(env!("CARGO_BIN_EXE_medrec")).run_ok_blocking(&[
            "generate",
            "--format",
            "json",
            "--persons",
            "1",
            "--version",
            version,
            "--first-person-id",
            &person.to_string(),
            "--out",
            dir.to_str().unwrap(),
        ]);
    }
    let upload_vendor = |version: &str| {
        let file = vendor_files
            .path()
            .join(version)
            .join(format!("{person}.json"));
        stack.aws(&[
            "s3",
            "cp",
            "--only-show-errors",
            file.to_str().unwrap(),
            &format!("s3://{}/vendor/vendor-a/{person}.json", stack.var("BUCKET")),
        ]);
    };
    let vendor_files_with = |status: &'static str| {
        let db = &db;
        async move {
            let n: i64 = db
                .query_one(
                    "SELECT count(*) FROM vendor_file WHERE person_id = $1 AND status = $2",
                    &[&person, &status],
                )
                .await
                .unwrap()
                .get(0);
            n
        }
    };
    let rows_of = |answer: &Json| -> usize {
        answer["data"]
            .as_object()
            .unwrap()
            .values()
            .map(|rows| rows.as_array().unwrap().len())
            .sum()
    };
    upload_vendor("1");
    wait_for(
        "vendor version 1 and its features",
        Duration::from_secs(120),
        || async {
            vendor_files_with("loaded").await == 1
                && stack.get(&format!("/persons/{person}/features")).0 == 200
        },
    )
    .await;
    let (_, version_1) = stack.get(&format!("/persons/{person}"));
    upload_vendor("2");
    wait_for("vendor version 2", Duration::from_secs(120), || async {
        vendor_files_with("loaded").await == 2
    })
    .await;
    let (_, version_2) = stack.get(&format!("/persons/{person}"));
    assert!(
        rows_of(&version_2) > rows_of(&version_1),
        "version 2 adds a visit: {} then {} rows",
        rows_of(&version_1),
        rows_of(&version_2)
    );
    upload_vendor("1");
    wait_for(
        "the late version 1 to be ignored",
        Duration::from_secs(120),
        || async { vendor_files_with("ignored").await == 1 },
    )
    .await;
    assert_eq!(stack.get(&format!("/persons/{person}")).1, version_2);

    // Exports: a spine uploaded under spines/ comes back as exports/<name>.parquet with its
    // manifest, the rows the command writes for the same spine; a full export the same way; a
    // bad spine as a report.
    let exports = tempfile::tempdir().unwrap();
    let spine = exports.path().join("readmission.csv");
    std::fs::write(
        &spine,
        "example_id,person_id,cutoff,label\n\
         e1,3597,2035-01-13,1\n\
         e2,3591,2032-06-14,0\n\
         e3,999999,2035-01-14,0\n\
         e4,5000000,2030-01-01,1\n",
    )
    .unwrap();
    stack.upload(&spine, "spines/loop/readmission.csv");
    let manifest = stack.manifest("loop/readmission", exports.path()).await;
    assert_eq!(manifest["training_set"]["rows"], 4, "{manifest}");
    assert_eq!(
        manifest["training_set"]["spine"],
        "spines/loop/readmission.csv"
    );
    assert!(
        manifest["training_set"]["loaded_through"].is_string(),
        "{manifest}"
    );
    assert!(manifest["definitions_version"].is_string(), "{manifest}");
    let cloud = exports.path().join("cloud.parquet");
    assert!(stack.download("exports/loop/readmission.parquet", &cloud));
    assert_eq!(
        manifest["file"]["bytes"],
        std::fs::metadata(&cloud).unwrap().len()
    );
    let local = exports.path().join("local.parquet");
    let medrec_on_stack = |args: &[&str]| {
        let output = Medrec::new(env!("CARGO_BIN_EXE_medrec"))
            .command()
            .env("DATABASE_URL", stack.var("DATABASE_URL"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "medrec {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    medrec_on_stack(&[
        "features",
        "training-set",
        "--quiet",
        "--format",
        "parquet",
        "--spine",
        spine.to_str().unwrap(),
        "--out",
        local.to_str().unwrap(),
    ]);
    let rows = parquet_rows(&cloud);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows, parquet_rows(&local));
    assert!(rows[0].contains("hgb_latest: 10.2"), "{}", rows[0]);

    // A full export reads the stored features: the vendor person's last recompute (queued by
    // its version 2) must have run, or the export is one person short.
    wait_for(
        "every person's features stored",
        Duration::from_secs(120),
        || async {
            let count = |sql: &'static str| {
                let db = &db;
                async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
            };
            count("SELECT count(*) FROM features_owed").await == 0
                && count("SELECT count(*) FROM person_features").await == 51
        },
    )
    .await;
    let empty = exports.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    stack.upload(&empty, "full-exports/loop-all");
    let manifest = stack.manifest("loop-all", exports.path()).await;
    assert_eq!(manifest["export"]["rows"], 51, "{manifest}");
    assert!(stack.download("exports/loop-all.parquet", &cloud));
    medrec_on_stack(&[
        "features",
        "export",
        "--format",
        "parquet",
        "--out",
        local.to_str().unwrap(),
    ]);
    assert_eq!(parquet_rows(&cloud), parquet_rows(&local));

    std::fs::write(&spine, "person_id,cutoff\n3597,2035-01-13\nx,2035-01-13\n").unwrap();
    stack.upload(&spine, "spines/loop/bad.csv");
    let report = stack.manifest("loop/bad.error", exports.path()).await;
    assert_eq!(
        report["error"], "spines/loop/bad.csv:3: person_id \"x\" is not a positive whole number",
        "{report}"
    );

    // An upload under a prefix no notification routes is not lost: it is recorded as refused,
    // with the reason, within seconds (the cloud's bucket policy refuses the upload itself).
    let sample = sample_dir().join("labs_ae.csv");
    let unrouted = format!("s3://{}/raw/foo/labs_ae.csv", stack.var("BUCKET"));
    stack.aws(&[
        "s3",
        "cp",
        "--only-show-errors",
        sample.to_str().unwrap(),
        &unrouted,
    ]);
    wait_for(
        "the unrouted upload to be recorded",
        Duration::from_secs(60),
        || async {
            db.query_opt(
                "SELECT reason FROM object_receipt WHERE source = $1 AND outcome = 'refused'",
                &[&unrouted],
            )
            .await
            .unwrap()
            .and_then(|row| row.get::<_, Option<String>>(0))
            .is_some_and(|reason| reason.contains("raw/<table>/"))
        },
    )
    .await;
    let runs = Medrec::new(env!("CARGO_BIN_EXE_medrec"))
        .command()
        .env("DATABASE_URL", stack.var("DATABASE_URL"))
        .args(["runs", "--outcome", "refused"])
        .output()
        .unwrap();
    let runs = String::from_utf8_lossy(&runs.stdout);
    assert!(runs.contains("raw/foo/labs_ae.csv"), "{runs}");

    // The README's `cargo lambda invoke` lines, with the committed events, against this stack.
    for (line, answer) in stack.readme_invocations() {
        if line.contains(" api ") {
            assert_eq!(answer["statusCode"], 200, "{line}: {answer}");
            let body: Json = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["person_id"], 3585, "{line}");
        } else if line.contains(" migrate ") {
            assert!(answer["applied"].is_array(), "{line}: {answer}");
        } else {
            assert_eq!(
                answer["batchItemFailures"],
                serde_json::json!([]),
                "{line}: {answer}"
            );
        }
    }

    // Down: every process the stack started is gone.
    let pids = stack.pids();
    assert_eq!(pids.len(), 3, "pid files of esm, watch and localstack");
    drop(db);
    drop(stack);
    for pid in pids {
        // SAFETY: signal 0 only asks whether the process (group) exists.
        let group_alive = unsafe { libc::kill(-pid, 0) } == 0;
        assert!(!group_alive, "process group {pid} outlived make local-down");
    }
}
