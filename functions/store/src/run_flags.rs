//! Quality flags counted per run while loading (`ingest_run_flag`, migration 0015): each flag
//! with the source column it was raised on, over the rows the cleaner kept from the file. The
//! quality report sums these instead of scanning every clean row.

use std::collections::BTreeMap;

use medrec_core::clean::{CleanedRow, Flag};
use tokio_postgres::GenericClient;

/// One run's flags, tallied row by row as the cleaner keeps them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FlagTally {
    /// Rows the cleaner kept.
    pub cleaned_rows: i64,
    /// Of those, rows with at least one flag.
    pub flagged_rows: i64,
    /// Rows per (flag, source column).
    pub counts: BTreeMap<(Flag, &'static str), i64>,
}

impl FlagTally {
    pub fn add(&mut self, row: &CleanedRow) {
        self.cleaned_rows += 1;
        if !row.flags.is_empty() {
            self.flagged_rows += 1;
        }
        for pair in &row.flagged_columns {
            *self.counts.entry(*pair).or_default() += 1;
        }
    }

    /// Writes the tally of `run_id`, in the load's transaction.
    pub async fn record(
        &self,
        client: &impl GenericClient,
        run_id: i64,
    ) -> Result<(), tokio_postgres::Error> {
        let (pairs, rows): (Vec<_>, Vec<i64>) = self.counts.iter().map(|(k, v)| (*k, *v)).unzip();
        let flags: Vec<&str> = pairs.iter().map(|(f, _)| f.as_str()).collect();
        let columns: Vec<&str> = pairs.iter().map(|(_, c)| *c).collect();
        if !rows.is_empty() {
            client
                .execute(
                    "INSERT INTO ingest_run_flag (run_id, flag, column_name, rows)
                     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[])",
                    &[&run_id, &flags, &columns, &rows],
                )
                .await?;
        }
        client
            .execute(
                "UPDATE ingest_run SET cleaned_rows = $2, flagged_rows = $3 WHERE run_id = $1",
                &[&run_id, &self.cleaned_rows, &self.flagged_rows],
            )
            .await?;
        Ok(())
    }
}
