//! medrec's test helpers, shared by the crates' tests (a dev-dependency only, never in a product
//! build): a fresh database per test ([`TestDb`]), the shared sample, table counts and checksums,
//! the `medrec` command runner ([`Medrec`]), curl, free ports, and the SQS/S3 events the Lambdas
//! receive ([`events`]).

use std::path::PathBuf;

use tokio_postgres::Client;

mod cli;
mod db;
pub mod events;

pub use cli::{describe, Medrec};
pub use db::{load_sample, TestDb, DEFAULT_ADMIN_URL};

/// The shared sample beside the repository (`../shared/data/sample`, never copied into it).
pub fn sample_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/sample"
    ))
}

/// The bytes of one file of the sample, e.g. `sample("rx_ae.csv")`.
pub fn sample(file: &str) -> Vec<u8> {
    let path = sample_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the sample is in ../shared/data/sample)",
            path.display()
        )
    })
}

/// The workspace's root directory (where the Makefile and README.md are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `bigint` the query `sql` (say `SELECT count(*) FROM ...`) returns.
pub async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// The first column of every row of `sql`, in the order returned.
pub async fn column<T: tokio_postgres::types::FromSqlOwned>(client: &Client, sql: &str) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The persons whose stored features (`person_features`) differ from a clean recompute of
/// everyone (`person_features_as_of(NULL, NULL)`), either way, by every catalogue feature:
/// empty when nothing derived is missing or stale.
pub async fn stale_features(client: &Client) -> Vec<i64> {
    let columns = std::iter::once("person_id")
        .chain(medrec_core::features::FEATURES.iter().map(|f| f.name))
        .collect::<Vec<_>>()
        .join(", ");
    column(
        client,
        &format!(
            "SELECT DISTINCT person_id FROM (
                 (SELECT {columns} FROM person_features_as_of(NULL, NULL)
                  EXCEPT SELECT {columns} FROM person_features)
                 UNION ALL
                 (SELECT {columns} FROM person_features
                  EXCEPT SELECT {columns} FROM person_features_as_of(NULL, NULL))) d
             ORDER BY 1"
        ),
    )
    .await
}

/// An order-independent checksum of the whole contents of `tables`: one md5 per table (of its
/// rows as text, sorted), concatenated.
pub async fn checksum(client: &Client, tables: &[&str]) -> String {
    let mut all = String::new();
    for table in tables {
        let sum: String = client
            .query_one(
                &format!(
                    "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        all.push_str(&sum);
    }
    all
}

/// `curl -s ARGS`; returns (HTTP status, body). The status is 0 when nothing answered.
pub fn curl(args: &[&str]) -> (u16, String) {
    let output = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("running curl");
    status_and_body(&output.stdout)
}

/// Splits what curl printed with `-w '\n%{http_code}'` into (HTTP status, body).
pub fn status_and_body(stdout: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(stdout);
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}
