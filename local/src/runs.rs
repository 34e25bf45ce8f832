//! `medrec runs`: the ledger of objects and what became of them, newest first.

use medrec_store::receipts::{recent, Listed, Outcome};

pub async fn print(
    client: &tokio_postgres::Client,
    limit: i64,
    outcome: Option<Outcome>,
    json: bool,
) -> anyhow::Result<()> {
    let receipts = recent(client, limit.clamp(1, 100_000), outcome).await?;
    if json {
        for receipt in &receipts {
            println!("{}", serde_json::to_string(receipt)?);
        }
        return Ok(());
    }
    println!(
        "{:<19} {:<14} {:<10} {:>8} {:>8} {:>9} {:>11} {:>7}  source",
        "received (UTC)",
        "outcome",
        "table",
        "raw",
        "loaded",
        "duplicate",
        "quarantined",
        "persons"
    );
    for r in &receipts {
        println!("{}", line(r));
        if let Some(reason) = &r.reason {
            println!("{:<19} {reason}", "");
        }
    }
    if receipts.is_empty() {
        println!("(no objects on record)");
    }
    Ok(())
}

fn line(r: &Listed) -> String {
    let count = |n: Option<i64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let table = r
        .table
        .clone()
        .or_else(|| r.kind.clone())
        .unwrap_or_else(|| "-".to_owned());
    format!(
        "{:<19} {:<14} {:<10} {:>8} {:>8} {:>9} {:>11} {:>7}  {}",
        r.received_at.format("%Y-%m-%d %H:%M:%S"),
        r.outcome,
        table,
        count(r.raw_rows),
        count(r.loaded_rows),
        count(r.duplicate_rows),
        count(r.quarantined_rows),
        r.persons,
        r.source
    )
}
