//! Each table's clean columns in the core (`CleanRow::COLUMNS`, what the cleaners produce and
//! the loaders bind) are the migrated clean table's own columns: the same names, SQL types and
//! order.

use medrec_core::Table;
use medrec_store::pg_value::sql_type_name;
use medrec_testkit::TestDb;

/// The columns every clean table has around its own (added by the loaders, not the cleaners).
const SHARED: [&str; 7] = [
    "person_id",
    "row_hash",
    "run_id",
    "source_line",
    "flags",
    "raw_values",
    "extras",
];

#[tokio::test]
async fn the_core_columns_are_the_clean_tables_columns() {
    let db = TestDb::migrated().await.unwrap();
    let client = db.client().await.unwrap();
    for table in Table::ALL {
        let in_database: Vec<(String, String)> = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                &[&table.name()],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .filter(|(name, _): &(String, String)| !SHARED.contains(&name.as_str()))
            .collect();
        let in_core: Vec<(String, String)> = table
            .clean_columns()
            .iter()
            .map(|c| (c.name.to_owned(), sql_type_name(c.ty).to_owned()))
            .collect();
        assert_eq!(in_core, in_database, "{table}");
    }
}
