//! The person document written from typed rows is, byte for byte, the document the API served
//! when it was `person_document`'s json (0004's definition, kept below as the contract) parsed
//! into `serde_json::Value`, reshaped and serialised again.

use chrono::NaiveDate;
use medrec_core::Table;
use medrec_store::person::{self, ResourceFilter};
use medrec_testkit::TestDb;
use serde_json::Value;

/// The definition the API served until the document was written from typed rows (the
/// R__40_person_document.sql of 366d1e5), under another name.
const CONTRACT: &str = r#"
CREATE FUNCTION contract_document(p_person bigint, p_since date, p_until date, p_types text[])
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1 FROM person WHERE person_id = p_person;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN json_build_object(
        'lifestyle', CASE WHEN p_types IS NULL OR 'lifestyle' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.report_date, t.row_hash), '[]'::json)
             FROM lifestyle t WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END,
        'rx', CASE WHEN p_types IS NULL OR 'rx' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.rx_date, t.row_hash), '[]'::json)
             FROM rx t WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.rx_date >= p_since)
               AND (p_until IS NULL OR t.rx_date <= p_until)) END,
        'conditions', CASE WHEN p_types IS NULL OR 'conditions' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.report_date, t.id), '[]'::json)
             FROM conditions t WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END,
        'labs', CASE WHEN p_types IS NULL OR 'labs' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.feature_date, t.row_hash), '[]'::json)
             FROM labs t WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.feature_date >= p_since)
               AND (p_until IS NULL OR t.feature_date <= p_until)) END,
        'tests', CASE WHEN p_types IS NULL OR 'tests' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.report_date, t.row_hash), '[]'::json)
             FROM tests t WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END);
END
$$;
"#;

/// The API's reshaping of the contract's json (medrec_store::person::shape of 366d1e5).
fn shape(person: i64, data: Value) -> Value {
    let Value::Object(tables) = data else {
        return serde_json::json!({ "person_id": person, "data": {} });
    };
    let tables: serde_json::Map<String, Value> = tables
        .into_iter()
        .filter(|(_, rows)| !rows.is_null())
        .map(|(table, mut rows)| {
            for item in rows.as_array_mut().into_iter().flatten() {
                if let Value::Object(fields) = item {
                    fields.remove("person_id");
                    if let Some(Value::String(hash)) = fields.remove("row_hash") {
                        let hex = hash.strip_prefix("\\x").unwrap_or(&hash).to_owned();
                        fields.insert("row_id".to_owned(), Value::String(hex));
                    }
                }
            }
            (table, rows)
        })
        .collect();
    serde_json::json!({ "person_id": person, "data": tables })
}

/// Every person of the database (and one unknown) under each filter: the contract's bytes and
/// the document's are equal. Returns how many documents were compared.
async fn compare_all(db: &TestDb) -> usize {
    let admin = db.client().await.unwrap();
    let pool = medrec_store::pool(&db.config, 2).unwrap();
    let client = pool.get().await.unwrap();
    let mut persons: Vec<i64> = medrec_testkit::column(&admin, "SELECT person_id FROM person")
        .await
        .into_iter()
        .collect();
    persons.push(0);
    let date = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let filters = [
        ResourceFilter::default(),
        ResourceFilter {
            since: date("2033-01-01"),
            until: date("2035-12-31"),
            tables: Some(vec![Table::Labs, Table::Rx]),
        },
        ResourceFilter {
            since: date("2020-01-01"),
            until: None,
            tables: Some(vec![Table::Conditions]),
        },
        ResourceFilter {
            since: None,
            until: date("1990-01-01"),
            tables: None,
        },
    ];
    let mut compared = 0;
    for filter in &filters {
        let tables: Option<Vec<&str>> = filter
            .tables
            .as_ref()
            .map(|t| t.iter().map(|t| t.name()).collect());
        for &id in &persons {
            let contract: Option<Value> = admin
                .query_one(
                    "SELECT contract_document($1, $2, $3, $4)",
                    &[&id, &filter.since, &filter.until, &tables],
                )
                .await
                .unwrap()
                .get(0);
            let expected = contract.map(|data| serde_json::to_vec(&shape(id, data)).unwrap());
            let written = person::document(&client, id, filter).await.unwrap();
            assert_eq!(
                written.as_deref().map(String::from_utf8_lossy),
                expected.as_deref().map(String::from_utf8_lossy),
                "person {id}, {filter:?}"
            );
            compared += 1;
        }
    }
    compared
}

#[tokio::test]
async fn every_sample_persons_document_is_the_contracts_bytes() {
    let db = TestDb::with_sample().await.unwrap();
    db.client()
        .await
        .unwrap()
        .batch_execute(CONTRACT)
        .await
        .unwrap();
    assert_eq!(compare_all(&db).await, 51 * 4);
}

#[tokio::test]
async fn values_at_the_edges_of_their_types_keep_the_contracts_bytes() {
    let db = TestDb::with_sample().await.unwrap();
    let admin = db.client().await.unwrap();
    admin.batch_execute(CONTRACT).await.unwrap();
    // Floats whose text form or serde_json reading is delicate, and random bit patterns; dates,
    // arrays with NULLs, nested JSON, empty strings and escapes, spread over the sample's labs.
    let mut floats = vec![
        "1e14",
        "999999999999999",
        "1e15",
        "1.5e15",
        "123456789012345.6",
        "0.0001",
        "0.00001",
        "1.5e-5",
        "0.30000000000000004",
        "1e300",
        "-0",
        "5e-324",
        "2.2250738585072014e-308",
        "NaN",
        "Infinity",
        "-Infinity",
        "12.5",
        "100",
        "-7",
        "9007199254740993",
        "1e22",
        "1e23",
        "0.1",
        "1.7976931348623157e308",
        "4.35",
        "8.589973e9",
        "123.456e-10",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    let mut state: u64 = 0x9e3779b97f4a7c15;
    while floats.len() < 2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let value = f64::from_bits(state);
        if value.is_finite() {
            floats.push(format!("{value:e}"));
        }
        // Values of the sizes lab results have, with many digits.
        floats.push(format!("{}", (state % 1_000_000_007) as f64 / 997.0));
    }
    admin
        .execute(
            "WITH v AS (SELECT f::float8 AS value, row_number() OVER () AS n
                        FROM unnest($1::text[]) AS f),
                  l AS (SELECT person_id, row_hash, row_number() OVER (ORDER BY person_id, row_hash) AS n
                        FROM labs)
             UPDATE labs SET value_num = v.value, range_low = -v.value
             FROM l JOIN v ON v.n = l.n
             WHERE labs.person_id = l.person_id AND labs.row_hash = l.row_hash",
            &[&floats],
        )
        .await
        .unwrap();
    admin
        .batch_execute(
            r#"
            UPDATE labs SET feature_date = 'infinity' WHERE row_hash = (SELECT row_hash FROM labs ORDER BY row_hash LIMIT 1);
            UPDATE labs SET feature_date = '0044-03-15 BC' WHERE row_hash = (SELECT row_hash FROM labs ORDER BY row_hash DESC LIMIT 1);
            UPDATE lifestyle SET secondary_value = E'tab\there\n\u0001 </script> \u2028',
                   extras = '{"b": 1.50, "a": [1, 2.0e3, {"z": null, "é": "x"}], "": true}'
              WHERE row_hash IN (SELECT row_hash FROM lifestyle ORDER BY row_hash LIMIT 20);
            UPDATE rx SET flags = '{}', raw_values = '{}' WHERE row_hash IN (SELECT row_hash FROM rx LIMIT 20);
            UPDATE conditions SET value = '' WHERE id IN (SELECT id FROM conditions LIMIT 20);
            "#,
        )
        .await
        .unwrap();
    assert_eq!(compare_all(&db).await, 51 * 4);
}
