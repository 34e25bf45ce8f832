//! Event handlers with the `aws_lambda_events` types, against a real PostgreSQL.
//! (The cleaning handler's S3 path runs against LocalStack in tests/local_loop.rs.)

use aws_lambda_events::event::sqs::SqsEvent;
use medrec_lambda::features::FeaturesFunction;
use medrec_lambda::migrate::MigrateFunction;
use medrec_store::DbConfig;
use medrec_testkit::events::{sqs_event, sqs_message};
use medrec_testkit::{free_port, workspace_root, TestDb};
use serde_json::json;

async fn stored_persons(client: &tokio_postgres::Client) -> Vec<i64> {
    medrec_testkit::column(client, "SELECT person_id FROM person_features ORDER BY 1").await
}

#[tokio::test]
async fn features_recompute_the_batch_and_report_only_the_poisoned_message() {
    let db = TestDb::with_sample().await.unwrap();
    let client = db.client().await.unwrap();
    client
        .execute("DELETE FROM person_features", &[])
        .await
        .unwrap();
    let function = FeaturesFunction::new(medrec_store::pool(&db.config, 2).unwrap());

    let response = function
        .handle(sqs_event(vec![
            sqs_message("a", r#"{"person_ids":[3585,3591]}"#),
            sqs_message("poison", "not json"),
            sqs_message("b", r#"{"person_ids":[3591,3599]}"#),
            sqs_message("unknown-person", r#"{"person_ids":[424242]}"#),
        ]))
        .await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["poison"]);
    assert_eq!(stored_persons(&client).await, [3585, 3591, 3599]);
    let alpha: Option<bool> = client
        .query_one(
            "SELECT taking_alpha_blockers FROM person_features WHERE person_id = 3591",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(alpha, Some(true));
}

#[tokio::test]
async fn the_committed_features_event_is_accepted() {
    let db = TestDb::with_sample().await.unwrap();
    let path = workspace_root().join("local/events/features-sqs.json");
    let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let function = FeaturesFunction::new(medrec_store::pool(&db.config, 2).unwrap());
    let response = function.handle(event).await;
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn when_the_database_is_down_every_parsable_message_is_retried() {
    let port = free_port();
    let config = DbConfig::new(format!("postgres://postgres@127.0.0.1:{port}/medrec"));
    let function = FeaturesFunction::new(medrec_store::pool(&config, 1).unwrap());
    let response = function
        .handle(sqs_event(vec![
            sqs_message("a", r#"{"person_ids":[1]}"#),
            sqs_message("poison", "{}"),
        ]))
        .await;
    let mut failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    failed.sort();
    assert_eq!(failed, ["a", "poison"]);
}

#[tokio::test]
async fn migrations_run_when_invoked_directly_and_twice_is_a_no_op() {
    let db = TestDb::empty().await.unwrap();
    let function = MigrateFunction::new(db.config.clone());
    let first = function.handle(json!({})).await.unwrap();
    assert_eq!(
        first["applied"].as_array().unwrap().len(),
        medrec_store::MIGRATIONS.len() + medrec_store::DEFINITIONS.len()
    );
    let second = function.handle(json!({})).await.unwrap();
    assert_eq!(second["applied"], json!([]));
}

#[tokio::test]
async fn migrations_answer_the_custom_resource_protocol() {
    // CloudFormation's pre-signed URL, played by a one-shot local HTTP server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/response?signature=x",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = socket.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if body.len() >= length {
                    socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    return (head.to_owned(), body.to_owned());
                }
            }
        }
    });
    let db = TestDb::empty().await.unwrap();
    let function = MigrateFunction::new(db.config.clone());
    let request = json!({
        "RequestType": "Create",
        "ServiceToken": "arn:aws:lambda:us-east-1:000000000000:function:migrate",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/medrec/1",
        "RequestId": "req-1",
        "ResourceType": "Custom::Migrations",
        "LogicalResourceId": "Migrations",
        "ResourceProperties": {"ServiceToken": "x", "MigrationsVersion": "5"}
    });
    function.handle(request).await.unwrap();
    let (head, body) = server.await.unwrap();
    assert!(head.starts_with("PUT /response?signature=x"), "{head}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(answer["RequestId"], "req-1");
    assert_eq!(answer["LogicalResourceId"], "Migrations");
    assert_eq!(answer["PhysicalResourceId"], "medrec-migrations");
    let applied: i64 = db
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM schema_migration", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied as usize, medrec_store::MIGRATIONS.len());
}

#[tokio::test]
async fn a_features_batch_also_recomputes_persons_an_earlier_crash_left_owed() {
    // Loads committed (and owed their persons) but nothing was announced or recomputed.
    let db = TestDb::migrated().await.unwrap();
    let mut client = db.client().await.unwrap();
    medrec_testkit::load_sample(&mut client).await.unwrap();
    let function = FeaturesFunction::new(medrec_store::pool(&db.config, 2).unwrap());
    let response = function
        .handle(sqs_event(vec![sqs_message(
            "a",
            r#"{"person_ids":[3585]}"#,
        )]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    // 3585 and, within the batch's bound, the 49 others owed.
    assert_eq!(stored_persons(&client).await.len(), 50);
    assert_eq!(
        medrec_testkit::count(&client, "SELECT count(*) FROM features_owed").await,
        0
    );
}
