//! Derived data after a crash (docs/features.md, "After a crash"): `medrec` killed after its
//! loads committed and before or during its recompute, then run again, ends with every loaded
//! person's features equal to a clean full recompute, with no manual step; the orphaned refresh
//! on the server is cancelled; a cluster that is kept is durable.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use medrec_testkit::{count, describe, stale_features, TestDb};
use tokio_postgres::Client;

use crate::medrec;

fn generate(out: &Path, persons: &str, first: &str, format: &str) {
    medrec().run_ok_blocking(&[
        "generate",
        "--persons",
        persons,
        "--first-person-id",
        first,
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ]);
}

fn spawn(db: &TestDb, args: &[&str]) -> Child {
    medrec()
        .on(db)
        .command()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning medrec")
}

/// Polls `sql` (a bigint) until it is at least `at_least`; panics after 60 s.
async fn until(client: &Client, sql: &str, at_least: i64) {
    let started = Instant::now();
    while count(client, sql).await < at_least {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {sql}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run_ok(db: &TestDb, args: &[&str]) -> String {
    medrec().on(db).run_ok(args).await
}

/// The refresh of `medrec ingest`, waiting on a lock.
const REFRESHING: &str = "SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'
      AND query LIKE '%refresh_person_features%'";

/// `medrec ingest` (started by `spawn` once the lock is taken) held at its recompute: the
/// refresh waits on a lock `holder` takes first, once every one of its 5 loads committed.
/// `holder.batch_execute("COMMIT")` lets it go.
struct HeldAtRecompute {
    holder: Client,
    child: Child,
}

async fn hold_recompute(
    watcher: &Client,
    holder: Client,
    spawn: impl FnOnce() -> Child,
) -> HeldAtRecompute {
    holder
        .batch_execute("BEGIN; LOCK TABLE person_features IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let child = spawn();
    until(
        watcher,
        "SELECT count(*) FROM ingest_run WHERE status = 'loaded'",
        5,
    )
    .await;
    until(watcher, REFRESHING, 1).await;
    HeldAtRecompute { holder, child }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingest_killed_during_its_recompute_is_healed_by_the_next_run() {
    let db = TestDb::migrated().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let (a, b) = (data.path().join("a"), data.path().join("b"));
    generate(&a, "300", "1000000", "csv");
    generate(&b, "20", "2000000", "csv");
    let watcher = db.client().await.unwrap();

    // The recompute waits on a lock held here, after every load committed.
    let HeldAtRecompute { holder, mut child } =
        hold_recompute(&watcher, db.client().await.unwrap(), || {
            spawn(&db, &["ingest", a.to_str().unwrap(), "--jobs", "2"])
        })
        .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The server notices its client is gone and cancels the orphaned refresh, lock or not.
    let started = Instant::now();
    while count(&watcher, REFRESHING).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the orphaned refresh still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        count(&watcher, "SELECT count(*) FROM person_features").await,
        0
    );
    assert_eq!(
        count(&watcher, "SELECT count(*) FROM features_owed").await,
        300
    );

    // Any later run heals it: here one of other files.
    let stdout = run_ok(&db, &["ingest", b.to_str().unwrap()]).await;
    assert!(
        stdout.contains("features recomputed for 320 person(s) (of them 300 owed by earlier runs"),
        "{stdout}"
    );
    assert_eq!(stale_features(&watcher).await, Vec::<i64>::new());
    assert_eq!(
        count(&watcher, "SELECT count(*) FROM person_features").await,
        320
    );
    assert_eq!(
        count(&watcher, "SELECT count(*) FROM features_owed").await,
        0
    );

    // And the same command again: its files are already loaded, its persons recomputed: 300 of
    // 320 are more than a quarter of everyone (FULL_REFRESH_SHARE), so everyone is.
    let stdout = run_ok(&db, &["ingest", a.to_str().unwrap()]).await;
    assert!(
        stdout.contains("features recomputed for 320 person(s):"),
        "{stdout}"
    );
    assert_eq!(stale_features(&watcher).await, Vec::<i64>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ingest_json_killed_midway_is_healed_by_the_next_run() {
    let db = TestDb::migrated().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    generate(data.path(), "600", "1000000", "json");
    let dir = data.path().to_str().unwrap();
    let watcher = db.client().await.unwrap();

    let mut child = spawn(&db, &["ingest-json", dir, "--workers", "4"]);
    until(&watcher, "SELECT count(*) FROM vendor_file", 100).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let loaded = count(
        &watcher,
        "SELECT count(*) FROM vendor_person WHERE version > 0",
    )
    .await;
    assert!(loaded < 600, "killed midway: {loaded} of 600 loaded");
    // Every committed file's person is owed, whatever else the kill cut short.
    assert_eq!(
        count(
            &watcher,
            "SELECT count(*) FROM vendor_person v JOIN features_owed USING (person_id)
             WHERE v.version > 0"
        )
        .await,
        loaded
    );

    let stdout = run_ok(&db, &["ingest-json", dir, "--workers", "4"]).await;
    assert!(
        stdout.contains("features recomputed for 600 person(s)"),
        "{stdout}"
    );
    assert_eq!(
        count(&watcher, "SELECT count(*) FROM person_features").await,
        600
    );
    assert_eq!(stale_features(&watcher).await, Vec::<i64>::new());
    assert_eq!(
        count(&watcher, "SELECT count(*) FROM features_owed").await,
        0
    );
}

/// `pg_ctl stop -m immediate` of a cluster `medrec postgres start` keeps in `dir`: SIGQUIT to
/// its postmaster (no checkpoint, crash recovery at the next start). Then starts it again with
/// the options it was started with (`pg_ctl restart` reads them from postmaster.opts), as the
/// data directory's owner.
fn crash_and_restart(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let data = dir.join("data");
    let pid: i32 = std::fs::read_to_string(data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let bin = std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    // SAFETY: a signal to the cluster's own postmaster.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGQUIT) }, 0);
    let started = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "postmaster still up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let owner = std::fs::metadata(&data).unwrap();
    let output = std::process::Command::new(bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "restart"])
        .uid(owner.uid())
        .gid(owner.gid())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_stopped_immediately_during_the_recompute_loses_nothing_the_next_run_heals() {
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().to_str().unwrap();
    let started = medrec()
        .run_ok(&["postgres", "start", "--state", state_arg])
        .await;
    let url = started
        .lines()
        .find_map(|l| l.strip_prefix("DATABASE_URL="))
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    let record = std::fs::read_to_string(state.path().join("postgres.env")).unwrap();
    let cluster_dir = record
        .lines()
        .find_map(|l| l.strip_prefix("PGCLUSTER_DIR="))
        .unwrap()
        .to_owned();
    let run = |args: &[&str]| {
        let mut command = medrec().command();
        command.env("DATABASE_URL", &url).args(args);
        command
    };
    assert!(run(&["migrate"]).output().unwrap().status.success());
    let data = tempfile::tempdir().unwrap();
    let (a, b) = (data.path().join("a"), data.path().join("b"));
    generate(&a, "300", "1000000", "csv");
    generate(&b, "20", "2000000", "csv");

    let connect = || async {
        medrec_store::connect(&medrec_store::DbConfig::new(url.clone()))
            .await
            .unwrap()
    };
    let watcher = connect().await;
    let HeldAtRecompute { holder, mut child } = hold_recompute(&watcher, connect().await, || {
        run(&["ingest", a.to_str().unwrap(), "--jobs", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    })
    .await;
    // The server goes down mid-recompute; the command sees its connection lost and fails.
    crash_and_restart(Path::new(&cluster_dir));
    assert!(!child.wait().unwrap().success());
    drop(holder);
    drop(watcher);

    // After crash recovery the loads and what they owe are there, the features are not.
    let after = connect().await;
    assert_eq!(
        count(
            &after,
            "SELECT count(*) FROM ingest_run WHERE status = 'loaded'"
        )
        .await,
        5
    );
    assert_eq!(
        count(&after, "SELECT count(*) FROM person_features").await,
        0
    );
    assert_eq!(
        count(&after, "SELECT count(*) FROM features_owed").await,
        300
    );
    // Any later run heals it, with no manual step.
    let output = run(&["ingest", b.to_str().unwrap()]).output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("features recomputed for 320 person(s) (of them 300 owed by earlier runs"),
        "{stdout}"
    );
    assert_eq!(stale_features(&after).await, Vec::<i64>::new());
    assert_eq!(count(&after, "SELECT count(*) FROM features_owed").await, 0);
    medrec()
        .run_ok(&["postgres", "stop", "--state", state_arg])
        .await;
}

async fn setting(client: &Client, name: &str) -> String {
    client
        .query_one(&format!("SHOW {name}"), &[])
        .await
        .unwrap()
        .get(0)
}

async fn assert_durable(url: &str) {
    let client = medrec_store::connect(&medrec_store::DbConfig::new(url))
        .await
        .unwrap();
    for name in ["fsync", "synchronous_commit", "full_page_writes"] {
        assert_eq!(setting(&client, name).await, "on", "{name} of {url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_cluster_is_durable_and_a_throwaway_one_says_it_is_not() {
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().to_str().unwrap();
    let started = medrec()
        .run_ok(&["postgres", "start", "--state", state_arg])
        .await;
    let url = started
        .lines()
        .find_map(|l| l.strip_prefix("DATABASE_URL="))
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    assert_durable(&url).await;
    medrec()
        .run_ok(&["postgres", "stop", "--state", state_arg])
        .await;

    // `ingest` without DATABASE_URL: a throwaway cluster, fast and said to be not crash-safe.
    let data = tempfile::tempdir().unwrap();
    generate(data.path(), "5", "1000000", "csv");
    let mut command = medrec().command();
    command
        .env_remove("DATABASE_URL")
        .args(["ingest", data.path().to_str().unwrap()]);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("fsync, synchronous_commit and full_page_writes off (fast, not crash-safe)"),
        "{stderr}"
    );
}
