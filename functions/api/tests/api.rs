//! The API's router at the HTTP level, in process, against a real PostgreSQL loaded with the sample.
//! Persons: 3591 takes HYTRIN (an alpha blocker typed "Quinazoline Derivative"); 3586 has
//! hemoglobin results; 3599 has no rx at all.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use medrec_api::{router, API_KEY_HEADER, OPENAPI};
use medrec_core::features::FEATURES;
use medrec_store::DbConfig;
use medrec_testkit::{free_port, TestDb};
use serde_json::Value as Json;
use tower::ServiceExt;

const KEY: &str = "test-key-1234";

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Json,
}

/// One request through the router, in process.
async fn send(api: &Router, request: Request<Body>) -> Response {
    api.clone().oneshot(request).await.unwrap()
}

async fn call(api: &Router, method: Method, uri: &str, key: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header(API_KEY_HEADER, key);
    }
    let response = send(api, request.body(Body::empty()).unwrap()).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Json::Null
    } else if content_type.contains("json") {
        serde_json::from_slice(&bytes).unwrap()
    } else {
        Json::String(String::from_utf8(bytes.to_vec()).unwrap())
    };
    Answer {
        status,
        content_type,
        body,
    }
}

async fn get(api: &Router, uri: &str) -> Answer {
    call(api, Method::GET, uri, Some(KEY)).await
}

fn api_on(config: &DbConfig) -> Router {
    router(medrec_store::pool(config, 2).unwrap(), KEY).unwrap()
}

async fn sample_api() -> (TestDb, Router) {
    let db = TestDb::with_sample().await.unwrap();
    let api = api_on(&db.config);
    (db, api)
}

const TABLES: [&str; 5] = ["lifestyle", "rx", "conditions", "labs", "tests"];

#[tokio::test]
async fn a_person_document_has_every_table_typed_rows_and_lineage() {
    let (db, api) = sample_api().await;
    let answer = get(&api, "/persons/3591").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.body["person_id"], 3591);
    let data = answer.body["data"].as_object().unwrap();
    assert_eq!(data.len(), 5);

    // Every clean row of the person is there, once.
    let client = db.client().await.unwrap();
    for table in TABLES {
        let count: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE person_id = 3591"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            data[table].as_array().unwrap().len() as i64,
            count,
            "{table}"
        );
    }

    let hytrin = data["rx"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["rx_name_norm"] == "HYTRIN")
        .expect("the HYTRIN prescription");
    assert_eq!(hytrin["drug_class"], "alpha_1_blocker");
    assert!(hytrin.get("person_id").is_none());
    assert!(hytrin["row_id"]
        .as_str()
        .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    assert!(hytrin["run_id"].is_i64());
    assert!(hytrin["source_line"].as_i64().unwrap() > 1);
    assert!(hytrin["flags"].is_array());
    let rx_date = hytrin["rx_date"].as_str().unwrap();
    assert!(chrono::NaiveDate::parse_from_str(rx_date, "%Y-%m-%d").is_ok());

    let labs = get(&api, "/persons/3586?types=labs").await.body;
    let hgb = labs["data"]["labs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["analyte"] == "hemoglobin")
        .expect("a hemoglobin result");
    assert!(hgb["value_num"].is_f64(), "numbers are JSON numbers");
    assert_eq!(hgb["loinc"], "4548-4", "the source code is kept as given");
}

#[tokio::test]
async fn filters_narrow_by_table_and_event_date() {
    let (_db, api) = sample_api().await;
    let all = get(&api, "/persons/3591").await.body;

    let some = get(&api, "/persons/3591?types=rx,labs").await.body;
    let keys: Vec<&String> = some["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["labs", "rx"]);
    assert_eq!(some["data"]["rx"], all["data"]["rx"]);

    let none = get(&api, "/persons/3599?types=rx").await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.body["data"]["rx"], serde_json::json!([]));

    // An event-date window keeps exactly the rows dated inside it.
    let date_of = |table: &str, item: &Json| {
        let column = match table {
            "labs" => "feature_date",
            "rx" => "rx_date",
            _ => "report_date",
        };
        item[column].as_str().map(str::to_owned)
    };
    let (since, until) = ("2033-01-01", "2033-12-31");
    let window = get(&api, &format!("/persons/3591?since={since}&until={until}"))
        .await
        .body;
    let mut kept_any = false;
    for table in TABLES {
        let expected: Vec<&Json> = all["data"][table]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| {
                date_of(table, item).is_some_and(|d| d.as_str() >= since && d.as_str() <= until)
            })
            .collect();
        let got: Vec<&Json> = window["data"][table].as_array().unwrap().iter().collect();
        assert_eq!(got, expected, "{table}");
        kept_any |= !got.is_empty();
    }
    assert!(kept_any, "the window should hold some of 3591's events");
    let total = |doc: &Json| {
        TABLES
            .iter()
            .map(|t| doc["data"][t].as_array().unwrap().len())
            .sum::<usize>()
    };
    assert!(total(&window) < total(&all));
}

#[tokio::test]
async fn features_stored_and_as_of() {
    let (_db, api) = sample_api().await;
    let hytrin = get(&api, "/persons/3591/features").await;
    assert_eq!(hytrin.status, StatusCode::OK);
    let data = hytrin.body["data"].as_object().unwrap();
    assert_eq!(data.len(), FEATURES.len());
    assert_eq!(data["taking_alpha_blockers"], true);
    assert!(hytrin.body["definitions_version"].is_string());
    assert!(hytrin.body["computed_at"].is_string());
    assert_eq!(hytrin.body["as_of"], Json::Null);

    let hgb = get(&api, "/persons/3586/features").await.body;
    assert!(hgb["data"]["hgb_latest"].is_f64());
    let no_rx = get(&api, "/persons/3599/features").await.body;
    assert_eq!(no_rx["data"]["taking_alpha_blockers"], Json::Null);

    // Point in time: before any event nothing is known; on the index date it matches storage.
    let before = get(&api, "/persons/3591/features?as_of=1990-01-01")
        .await
        .body;
    assert_eq!(before["as_of"], "1990-01-01");
    assert_eq!(before["computed_at"], Json::Null);
    assert!(before["data"]
        .as_object()
        .unwrap()
        .values()
        .all(Json::is_null));
    let index_date = data["index_date"].as_str().unwrap();
    let same = get(&api, &format!("/persons/3591/features?as_of={index_date}"))
        .await
        .body;
    assert_eq!(same["data"], hytrin.body["data"]);
    assert!(same.get("explanation").is_none());

    // Why: the alpha-blocker rx rows of 3591 and the hemoglobin row of 3597, by file and line.
    let why = get(&api, "/persons/3591/features?explain=true").await;
    assert_eq!(why.status, StatusCode::OK);
    assert_eq!(why.body["data"], hytrin.body["data"]);
    let rows = why.body["explanation"]["taking_alpha_blockers"]
        .as_array()
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(row["table"], "rx");
        assert_eq!(row["source"], "rx_ae.csv");
        assert!(row["source_line"].as_i64().unwrap() > 1);
        assert!(row["run_id"].as_i64().is_some());
    }
    let hgb = get(&api, "/persons/3597/features?explain=true&as_of=2035-01-13")
        .await
        .body;
    assert_eq!(hgb["data"]["hgb_latest"], 10.2);
    assert_eq!(hgb["explanation"]["hgb_latest"][0]["table"], "labs");
    assert_eq!(
        get(&api, "/persons/3591/features?explain=yes").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn features_of_a_person_not_yet_refreshed_are_computed_on_read() {
    let (db, api) = sample_api().await;
    let client = db.client().await.unwrap();
    let stored = get(&api, "/persons/3586/features").await.body;
    client
        .execute("DELETE FROM person_features WHERE person_id = 3586", &[])
        .await
        .unwrap();
    let live = get(&api, "/persons/3586/features").await.body;
    assert_eq!(live["data"], stored["data"]);
    assert_eq!(live["computed_at"], Json::Null);
}

#[tokio::test]
async fn bad_requests_get_problem_documents() {
    let (_db, api) = sample_api().await;
    for uri in [
        "/persons/abc",
        "/persons/-1",
        "/persons/0",
        "/persons/1.5",
        "/persons/9223372036854775808",
        "/persons/99999999999999999999999999",
        "/persons/3591?since=2034-13-01",
        "/persons/3591?since=yesterday",
        "/persons/3591?until=2034-1-1",
        "/persons/3591?since=2034-06-01&until=2034-01-01",
        "/persons/3591?types=rx,vitals",
        "/persons/3591?types=",
        "/persons/3591?sinse=2034-01-01",
        "/persons/3591?since=2034-01-01&since=2034-02-01",
        "/persons/3591/features?as_of=2034-02-30",
        "/persons/3591/features?as_of=-999-01-01",
        "/persons/3591/features?as_of=0000-01-01",
        "/persons/3591?since=-999-01-01",
        "/persons/3591?until=%2B2034-01-01",
        "/persons/3591/features?since=2034-01-01",
        "/persons/abc/features",
    ] {
        let answer = get(&api, uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(answer.content_type, "application/problem+json", "{uri}");
        assert_eq!(answer.body["status"], 400, "{uri}");
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(!detail.to_lowercase().contains("select"), "{uri}: {detail}");
    }
}

#[tokio::test]
async fn oversized_queries_are_refused_on_every_route_before_they_are_decoded() {
    let (_db, api) = sample_api().await;
    // 55 KB of distinct parameters: comparing every pair took half a second of CPU.
    let huge = (0..6500)
        .map(|i| format!("p{i:05}=x"))
        .collect::<Vec<_>>()
        .join("&");
    assert!(huge.len() > 50_000);
    let many = (0..33)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>()
        .join("&");
    for route in [
        "/health",
        "/persons/3591",
        "/persons/3591/features",
        "/runs",
        "/openapi.json",
    ] {
        let started = std::time::Instant::now();
        let answer = get(&api, &format!("{route}?{huge}")).await;
        assert_eq!(answer.status, StatusCode::URI_TOO_LONG, "{route}");
        assert_eq!(answer.content_type, "application/problem+json");
        assert_eq!(answer.body["status"], 414);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));

        let answer = get(&api, &format!("{route}?{many}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{route}");
        assert_eq!(answer.content_type, "application/problem+json");
        assert!(answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("more than 32 parameters"));
    }
    // Under the limits, the routes' own checks answer, as before.
    let answer = get(&api, &format!("/health?{}", "a".repeat(2000))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get(&api, "/persons/3591?types=rx").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_persons_paths_and_methods() {
    let (_db, api) = sample_api().await;
    for uri in [
        "/persons/999999",
        "/persons/999999/features",
        "/persons",
        "/persons/3591/labs",
        "/",
    ] {
        let answer = get(&api, uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.content_type, "application/problem+json");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let response = send(
            &api,
            Request::builder()
                .method(method.clone())
                .uri("/persons/3591")
                .header(API_KEY_HEADER, KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()["allow"], "GET");
    }
}

#[tokio::test]
async fn the_api_key_is_required_except_for_health() {
    let (_db, api) = sample_api().await;
    for key in [None, Some(""), Some("test-key-123"), Some("test-key-12345")] {
        for uri in ["/persons/3591", "/persons/3591/features", "/openapi.json"] {
            let answer = call(&api, Method::GET, uri, key).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri} {key:?}");
            assert_eq!(answer.content_type, "application/problem+json");
        }
    }
    // Unknown persons are not revealed to callers without the key.
    let answer = call(&api, Method::GET, "/persons/999999", None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    let health = call(&api, Method::GET, "/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["database"], "ok");
    assert!(router(
        medrec_store::pool(&DbConfig::new("postgres://x@127.0.0.1/x"), 1).unwrap(),
        ""
    )
    .is_err());
}

#[tokio::test]
async fn the_served_contract_is_the_committed_file_and_matches_the_router() {
    let (_db, api) = sample_api().await;
    let served = get(&api, "/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    let committed: Json = serde_json::from_str(OPENAPI).unwrap();
    assert_eq!(served.body, committed);
    // Every documented path answers (with a real person in place of the template).
    let paths = committed["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 8);
    for path in paths.keys() {
        let uri = path.replace("{person_id}", "3591").replace("{run_id}", "1");
        let answer = get(&api, &uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_contract_names_every_feature_with_its_type() {
    let contract: Json = serde_json::from_str(OPENAPI).unwrap();
    let data = &contract["components"]["schemas"]["FeatureDocument"]["properties"]["data"];
    let properties = data["properties"].as_object().unwrap();
    let names: Vec<&str> = properties.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    expected.sort_unstable();
    let mut names_sorted = names.clone();
    names_sorted.sort_unstable();
    assert_eq!(names_sorted, expected);
    assert_eq!(data["additionalProperties"], false);
    for feature in FEATURES {
        let schema = &properties[feature.name];
        assert_eq!(
            schema["type"],
            serde_json::json!([feature.kind.json_type(), "null"]),
            "{}",
            feature.name
        );
        let date = feature.kind == medrec_core::features::FeatureKind::Date;
        assert_eq!(schema["format"] == "date", date, "{}", feature.name);
    }
}

#[tokio::test]
async fn the_catalogue_report_and_runs_are_served_with_the_key() {
    let (db, api) = sample_api().await;
    for uri in ["/features", "/report", "/runs/1"] {
        let anonymous = call(&api, Method::GET, uri, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(anonymous.content_type, "application/problem+json", "{uri}");
    }

    let catalogue = get(&api, "/features").await;
    assert_eq!(catalogue.status, StatusCode::OK);
    let served: Vec<&str> = catalogue.body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(served, FEATURES.iter().map(|f| f.name).collect::<Vec<_>>());
    let version: String = db
        .client()
        .await
        .unwrap()
        .query_one("SELECT feature_definitions_version()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(catalogue.body["definitions_version"], version.as_str());
    let hgb = &catalogue.body["features"][1];
    assert_eq!(hgb["unit"], "g/dL");
    assert_eq!(hgb["tables"], serde_json::json!(["labs"]));

    let report = get(&api, "/report").await;
    assert_eq!(report.status, StatusCode::OK);
    assert_eq!(report.content_type, "text/html; charset=utf-8");
    let page = report.body.as_str().unwrap();
    assert!(page.contains("medrec quality report"));
    assert!(!page.contains("HYTRIN"), "no record value");
    assert!(!page.contains("<script"));

    let run = get(&api, "/runs/1").await;
    assert_eq!(run.status, StatusCode::OK);
    assert_eq!(run.body["run_id"], 1);
    assert_eq!(run.body["status"], "loaded");
    let raw = run.body["raw_rows"].as_i64().unwrap();
    assert_eq!(
        raw,
        run.body["loaded_rows"].as_i64().unwrap()
            + run.body["duplicate_rows"].as_i64().unwrap()
            + run.body["quarantined_rows"].as_i64().unwrap()
    );
    assert!(run.body["quarantine"].is_array());
    let unknown = get(&api, "/runs/999999").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["detail"], "no such run");
    for bad in [
        "/runs/abc",
        "/runs/0",
        "/runs/-1",
        "/runs/1.5",
        "/runs/99999999999999999999",
    ] {
        let answer = get(&api, bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.content_type, "application/problem+json", "{bad}");
    }
}

#[tokio::test]
async fn an_unreachable_database_gives_503_not_a_hang_or_a_trace() {
    // A port nothing listens on (bound, then released).
    let port = free_port();
    let api = api_on(&DbConfig::new(format!(
        "postgres://postgres@127.0.0.1:{port}/medrec"
    )));
    let health = call(&api, Method::GET, "/health", None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.body["status"], "unavailable");
    let person = get(&api, "/persons/3591").await;
    assert_eq!(person.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(person.content_type, "application/problem+json");
    assert!(!person.body.to_string().contains("127.0.0.1"));
}

#[tokio::test]
async fn request_bodies_beyond_the_limit_get_a_problem_document() {
    let (_db, api) = sample_api().await;
    let request = |size: usize| {
        Request::builder()
            .method(Method::GET)
            .uri("/persons/3591/features")
            .header(API_KEY_HEADER, KEY)
            .header("content-length", size)
            .body(Body::from(vec![b'x'; size]))
            .unwrap()
    };
    // A small body is ignored, as before.
    assert_eq!(send(&api, request(10)).await.status(), StatusCode::OK);
    let response = send(&api, request(medrec_api::MAX_REQUEST_BODY + 1)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Json = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["status"], 413);
    assert_eq!(body["detail"], "the API takes no request body");
}

#[tokio::test]
async fn runs_list_what_became_of_each_object_newest_first() {
    let (db, api) = sample_api().await;
    let client = db.client().await.unwrap();
    for (source, outcome, reason) in [
        ("s3://b/raw/rx/a.csv", "loaded", None),
        (
            "s3://b/raw/foo/x.csv",
            "refused",
            Some("the key's raw/<table>/ prefix names no known table"),
        ),
        ("s3://b/raw/rx/a.csv", "already_loaded", None),
    ] {
        client
            .execute(
                "INSERT INTO object_receipt (source, outcome, reason) VALUES ($1, $2, $3)",
                &[&source, &outcome, &reason],
            )
            .await
            .unwrap();
    }
    let all = get(&api, "/runs").await;
    assert_eq!(all.status, StatusCode::OK);
    let outcomes: Vec<&str> = all.body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["already_loaded", "refused", "loaded"]);

    let refused = get(&api, "/runs?outcome=refused&limit=10").await;
    let runs = refused.body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["source"], "s3://b/raw/foo/x.csv");
    assert!(runs[0]["reason"].as_str().unwrap().contains("prefix"));
    assert_eq!(
        get(&api, "/runs?limit=1").await.body["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for bad in [
        "/runs?limit=0",
        "/runs?limit=1001",
        "/runs?limit=x",
        "/runs?outcome=lost",
        "/runs?since=2020-01-01",
    ] {
        let answer = get(&api, bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.content_type, "application/problem+json", "{bad}");
    }
    assert_eq!(
        call(&api, Method::GET, "/runs", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The README's example answers (`<!-- example: PATH ... -->` before a ```json block) are what
/// the API answers on the sample: `computed_at` aside, and for a list the README shortens (the
/// catalogue's features), its first entries.
#[tokio::test]
async fn the_readmes_example_answers_are_real() {
    let (_db, api) = sample_api().await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut examples = 0;
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("<!-- example: ") {
        rest = &rest[at + "<!-- example: ".len()..];
        let path = rest.split_whitespace().next().unwrap().to_owned();
        let open = rest.find("```json\n").unwrap() + "```json\n".len();
        let close = open + rest[open..].find("\n```").unwrap();
        let mut shown: Json = serde_json::from_str(&rest[open..close]).unwrap();
        let mut answer = get(&api, &path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        for doc in [&mut shown, &mut answer.body] {
            if let Some(object) = doc.as_object_mut() {
                object.remove("computed_at");
            }
        }
        if let (Some(short), Some(all)) = (
            shown.get("features").and_then(Json::as_array).map(Vec::len),
            answer.body.get_mut("features").and_then(Json::as_array_mut),
        ) {
            all.truncate(short);
        }
        assert_eq!(shown, answer.body, "README example {path}");
        examples += 1;
    }
    assert_eq!(examples, 3);
}
