//! "Persons changed": the one policy for recomputing features, for the command (after a batch)
//! and the features function (per SQS batch) alike: the announced persons, then what earlier
//! runs left owed (`features_owed`: a crash between a load's commit and its refresh), in bounded
//! chunks.

use medrec_store::features::{owed, owed_horizon, persons_count, refresh, refresh_everyone};
use tokio_postgres::Client;

/// Persons per refresh statement (and transaction). Bounded so that one statement's time, locks
/// and `ANY(array)` stay small whatever the batch (a 1M-person ingest is 50 statements), far below
/// the statement timeout (`medrec_store::features::REFRESH_STATEMENT_TIMEOUT`), and so that a
/// crash loses at most one chunk's work: every chunk commits, with its owed rows settled.
pub const REFRESH_CHUNK: usize = 20_000;

/// With [`Owed::All`], everyone is refreshed instead of chunks when the announced persons are at
/// least this share of all persons. Measured on 2 cores (docs/performance.md): at 1M persons a
/// person costs 0.11-0.3 ms by index (10,000 took 1.1 s warm, 3.05 s cold in the bench) and
/// everyone 31-46 s in [`everyone_parts`] statements, so chunks stay cheaper to about a sixth to
/// a third of the persons; at 50k persons a chunk of more than a twentieth of them scans the
/// tables as everyone does (1.5 s), so everyone is cheaper from about a third. A quarter is
/// between; a first load (everyone announced) always takes it. Each part is well inside the
/// statement timeout, and it settles everything owed.
pub const FULL_REFRESH_SHARE: f64 = 0.25;

/// Persons owed by earlier runs (`features_owed`: a load committed, its announcement or refresh
/// lost) that one features-function batch also recomputes, oldest first: bounded, so a batch
/// stays well inside the function's 60 s (5,000 persons take a few seconds at 1M persons), and
/// what is left goes to the next batches.
pub const FUNCTION_OWED_PER_BATCH: usize = 5_000;

/// At most this many statements refresh everyone side by side
/// (`medrec_store::features::refresh_everyone`), one connection each.
pub const EVERYONE_PARTS_MAX: usize = 4;

/// How many connections a refresh of everyone uses: one per core of this machine (the command
/// runs beside its PostgreSQL, so its cores are the server's), at most [`EVERYONE_PARTS_MAX`].
/// Measured at 1M persons on 2 cores: the computation for everyone took 83.5 s in two halves side
/// by side against 113-132 s as one statement (docs/performance.md).
pub fn everyone_parts() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, EVERYONE_PARTS_MAX)
}

/// How much of what is owed a call also recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    /// Everything owed when the call starts (the command: a re-run heals all a crash left).
    All,
    /// At most this many persons (the features function: bounded work per invocation; what is
    /// left is taken by the next ones).
    AtMost(usize),
}

/// What a call recomputed: feature rows written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recomputed {
    /// For the announced persons.
    pub announced: i64,
    /// For persons owed by earlier runs and not announced in this one.
    pub healed: i64,
}

impl Recomputed {
    pub fn total(&self) -> i64 {
        self.announced + self.healed
    }
}

/// Recomputes `persons` (deduplicated), [`REFRESH_CHUNK`] at a time (everyone, from
/// [`FULL_REFRESH_SHARE`] of all persons on with [`Owed::All`]), then the persons still owed, oldest
/// first, as far as `owed_too` allows. Each chunk is its own transaction: an error leaves the
/// chunks before it done and the rest owed, for the next call. `helpers` are further
/// connections, used only when everyone is refreshed (one part each, beside `client`'s).
pub async fn persons_changed(
    client: &Client,
    helpers: &[&Client],
    persons: &[i64],
    owed_too: Owed,
) -> Result<Recomputed, tokio_postgres::Error> {
    let mut persons = persons.to_vec();
    persons.sort_unstable();
    persons.dedup();
    let mut done = Recomputed::default();
    if owed_too == Owed::All
        && !persons.is_empty()
        && persons.len() as f64 >= FULL_REFRESH_SHARE * persons_count(client).await? as f64
    {
        // Everyone: the count is everyone's rows.
        let clients: Vec<&Client> = std::iter::once(client)
            .chain(helpers.iter().copied())
            .collect();
        done.announced = refresh_everyone(&clients).await?;
        return Ok(done);
    }
    for chunk in persons.chunks(REFRESH_CHUNK) {
        done.announced += refresh(client, Some(chunk)).await?;
    }
    // Only what is owed now: loads that commit meanwhile are their own runs' to refresh, so the
    // loop ends even while they keep coming.
    let Some(horizon) = owed_horizon(client).await? else {
        return Ok(done);
    };
    let mut budget = match owed_too {
        Owed::All => usize::MAX,
        Owed::AtMost(n) => n,
    };
    while budget > 0 {
        let chunk = owed(client, budget.min(REFRESH_CHUNK), Some(horizon)).await?;
        if chunk.is_empty() {
            break;
        }
        budget = budget.saturating_sub(chunk.len());
        // Settles the chunk's owed rows (up to the change it read), so the next round moves on.
        done.healed += refresh(client, Some(&chunk)).await?;
    }
    if done.healed > 0 {
        tracing::info!(
            healed = done.healed,
            "recomputed persons owed by earlier runs"
        );
    }
    Ok(done)
}
