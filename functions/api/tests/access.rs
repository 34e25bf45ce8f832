//! Least privilege, the access audit and several API keys, at the HTTP level against a real
//! PostgreSQL: the API served by a login user of the reader role, every person read appended to
//! `access_audit`, a read refused when its audit cannot be written, and keys revoked by
//! rebuilding the router without them.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use medrec_api::keys::key_digest_hex;
use medrec_api::{router_with_keys, ApiKeys, API_KEY_HEADER};
use medrec_store::roles::Role;
use medrec_store::DbConfig;
use medrec_testkit::TestDb;
use serde_json::Value as Json;
use tower::ServiceExt;

const OPS_KEY: &str = "ops-key-0123456789";
const DS_KEY: &str = "ds-key-9876543210";
/// A login user of the reader role, shared by the test databases of the cluster.
const API_LOGIN: &str = "medrec_test_api_login";

fn keys(entries: &[(&str, &str)]) -> ApiKeys {
    let text: Vec<String> = entries
        .iter()
        .map(|(id, key)| format!("{id}:{}", key_digest_hex(key.as_bytes())))
        .collect();
    ApiKeys::from_entries(&text.join(",")).unwrap()
}

async fn get(api: &Router, uri: &str, key: &str) -> (StatusCode, Json) {
    let request = Request::builder()
        .uri(uri)
        .header(API_KEY_HEADER, key)
        .body(Body::empty())
        .unwrap();
    let response = api.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
    (status, body)
}

/// The sample's database and the API over a pool that logs in as a member of the reader role.
async fn reader_api() -> (TestDb, Router) {
    let db = TestDb::with_sample().await.unwrap();
    let config = db.config_as(API_LOGIN, Role::Reader).await.unwrap();
    let pool = medrec_store::pool(&config, 2).unwrap();
    let api = router_with_keys(pool, keys(&[("ops", OPS_KEY), ("ds", DS_KEY)])).unwrap();
    (db, api)
}

async fn audit_rows(db: &TestDb) -> Vec<(String, i64, String, i16, String)> {
    db.client()
        .await
        .unwrap()
        .query(
            "SELECT route, person_id, key_id, status, db_user FROM access_audit ORDER BY audit_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

#[tokio::test]
async fn the_api_works_as_a_reader_login_and_audits_every_person_read() {
    let (db, api) = reader_api().await;
    let (status, person) = get(&api, "/persons/3591", OPS_KEY).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(person["person_id"], 3591);
    assert!(!person["data"]["rx"].as_array().unwrap().is_empty());
    let (status, features) = get(&api, "/persons/3591/features", DS_KEY).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(features["data"]["taking_alpha_blockers"], true);
    let (status, _) = get(&api, "/persons/3586/features?as_of=2034-01-01", OPS_KEY).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&api, "/persons/999999", DS_KEY).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Not person reads: not audited (a bad id reads nothing; /runs and /health read no person).
    assert_eq!(
        get(&api, "/persons/abc", OPS_KEY).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get(&api, "/runs", OPS_KEY).await.0, StatusCode::OK);
    assert_eq!(get(&api, "/health", "").await.0, StatusCode::OK);
    // Refused keys read nothing.
    assert_eq!(
        get(&api, "/persons/3591", "nope").await.0,
        StatusCode::UNAUTHORIZED
    );

    let login = API_LOGIN.to_owned();
    assert_eq!(
        audit_rows(&db).await,
        [
            ("person".into(), 3591, "ops".into(), 200, login.clone()),
            ("features".into(), 3591, "ds".into(), 200, login.clone()),
            ("features".into(), 3586, "ops".into(), 200, login.clone()),
            ("person".into(), 999999, "ds".into(), 404, login),
        ]
    );

    // The reader login the API runs as cannot change the audit, nor any table.
    let reader = medrec_store::connect(&db.config_as(API_LOGIN, Role::Reader).await.unwrap())
        .await
        .unwrap();
    for sql in [
        "UPDATE access_audit SET status = 200",
        "DELETE FROM access_audit",
        "TRUNCATE access_audit",
        "DELETE FROM rx",
        "UPDATE person_features SET hgb_latest = 0",
        "INSERT INTO object_receipt (source, outcome) VALUES ('x', 'loaded')",
    ] {
        let error = reader.batch_execute(sql).await.expect_err(sql);
        assert!(
            medrec_store::roles::is_permission_denied(&error),
            "{sql}: {error:?}"
        );
    }
    assert_eq!(audit_rows(&db).await.len(), 4);
}

#[tokio::test]
async fn a_read_whose_audit_cannot_be_written_is_not_served() {
    let (db, api) = reader_api().await;
    assert_eq!(get(&api, "/persons/3591", OPS_KEY).await.0, StatusCode::OK);
    // This database only: the grants are per database.
    db.client()
        .await
        .unwrap()
        .batch_execute("REVOKE INSERT ON access_audit FROM medrec_reader")
        .await
        .unwrap();
    for uri in ["/persons/3591", "/persons/3591/features", "/persons/999999"] {
        let (status, body) = get(&api, uri, OPS_KEY).await;
        assert!(status.is_server_error(), "{uri}: {status}");
        assert!(body.get("data").is_none(), "{uri}: {body}");
        assert_eq!(body["status"], status.as_u16(), "{uri}: a problem document");
    }
    assert_eq!(audit_rows(&db).await.len(), 1);
}

/// Concurrent reads share the audit's statements (a group commit), and each read still gets its
/// own row, with its own key and status, before it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_are_each_audited_once_in_shared_statements() {
    let (db, api) = reader_api().await;
    let persons: Vec<i64> = medrec_testkit::column(
        &db.client().await.unwrap(),
        "SELECT person_id FROM person ORDER BY person_id",
    )
    .await;
    let reads: Vec<(String, &str, &str)> = (0..400)
        .map(|n| {
            let person = persons[n % persons.len()];
            let (key, route) = if n % 3 == 0 {
                (DS_KEY, "/features")
            } else {
                (OPS_KEY, "")
            };
            let uri = if n % 7 == 0 {
                "/persons/999999".to_owned() // unknown: audited as 404
            } else {
                format!("/persons/{person}{route}")
            };
            (uri, key, if key == DS_KEY { "ds" } else { "ops" })
        })
        .collect();
    let answers = futures::future::join_all(reads.iter().map(|(uri, key, _)| {
        let api = api.clone();
        async move { get(&api, uri, key).await.0 }
    }))
    .await;
    let mut expected: Vec<(String, i64, String, i16)> = reads
        .iter()
        .zip(&answers)
        .map(|((uri, _, key_id), status)| {
            let mut parts = uri.trim_start_matches("/persons/").split('/');
            let person: i64 = parts.next().unwrap().parse().unwrap();
            let route = if parts.next().is_some() {
                "features"
            } else {
                "person"
            };
            (
                route.to_owned(),
                person,
                key_id.to_string(),
                status.as_u16() as i16,
            )
        })
        .collect();
    assert!(answers
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::NOT_FOUND));
    let mut audited: Vec<(String, i64, String, i16)> = audit_rows(&db)
        .await
        .into_iter()
        .map(|(route, person, key, status, _)| (route, person, key, status))
        .collect();
    expected.sort();
    audited.sort();
    assert_eq!(audited, expected);
    // Fewer statements than reads: the rows of one statement share its transaction id.
    let statements = db
        .count("SELECT count(DISTINCT xmin::text) FROM access_audit")
        .await;
    assert!(statements < reads.len() as i64, "{statements} statements");
}

#[tokio::test]
async fn a_key_removed_from_the_set_is_refused_once_the_router_is_rebuilt() {
    // /openapi.json needs a key but no database.
    let nowhere = || medrec_store::pool(&DbConfig::new("postgres://x@127.0.0.1:1/x"), 1).unwrap();
    let both = router_with_keys(nowhere(), keys(&[("a", OPS_KEY), ("b", DS_KEY)])).unwrap();
    assert_eq!(get(&both, "/openapi.json", OPS_KEY).await.0, StatusCode::OK);
    assert_eq!(get(&both, "/openapi.json", DS_KEY).await.0, StatusCode::OK);
    let without_a = router_with_keys(nowhere(), keys(&[("b", DS_KEY)])).unwrap();
    assert_eq!(
        get(&without_a, "/openapi.json", OPS_KEY).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&without_a, "/openapi.json", DS_KEY).await.0,
        StatusCode::OK
    );
    // A key's digest is not a key.
    assert_eq!(
        get(
            &without_a,
            "/openapi.json",
            &key_digest_hex(DS_KEY.as_bytes())
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert!(router_with_keys(nowhere(), ApiKeys::new()).is_err());
}
