//! `medrec`: the whole pipeline on one machine.

mod cluster;
mod ingest;
mod ingest_json;
mod progress;
mod report;
mod runs;
mod serve;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use medrec_store::DbConfig;

/// The key id the command's reads of person records are audited under (`access_audit.key_id`).
const CLI_KEY_ID: &str = "medrec-cli";

#[derive(Parser)]
#[command(
    name = "medrec",
    version,
    about = "Clean raw medical-record tables into PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a directory of raw CSVs (the table is each file name's first word). Without
    /// DATABASE_URL, a throwaway PostgreSQL is started and removed afterwards.
    Ingest {
        dir: PathBuf,
        /// Keep the throwaway PostgreSQL running and print its URL.
        #[arg(long)]
        keep: bool,
        /// Do not recompute features after loading (for a bulk load followed by
        /// `medrec features refresh`).
        #[arg(long)]
        no_features: bool,
        /// Files loaded at once, each in its own transaction and connection (default: the
        /// number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// No progress line on stderr (the report is printed all the same).
        #[arg(long)]
        quiet: bool,
    },
    /// Load per-person vendor JSON files (a directory's `*.json`, or one file): one short
    /// transaction per file; older versions are ignored, bad files rejected with a reason.
    IngestJson {
        path: PathBuf,
        /// Files loaded in parallel, each worker on its own connection.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Do not recompute the loaded persons' features.
        #[arg(long)]
        no_features: bool,
        /// No progress line on stderr (the report is printed all the same).
        #[arg(long)]
        quiet: bool,
    },
    /// Apply pending migrations to DATABASE_URL.
    Migrate,
    /// What became of the objects that reached DATABASE_URL, newest first: every upload or file
    /// (loaded, already loaded, ignored, rejected with a reason, failed, superseded, refused).
    Runs {
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only this outcome (loaded, already_loaded, ignored, rejected, failed, superseded,
        /// refused).
        #[arg(long)]
        outcome: Option<medrec_store::receipts::Outcome>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Per-person features in DATABASE_URL.
    Features {
        #[command(subcommand)]
        command: FeaturesCommand,
    },
    /// Write synthetic raw tables (or per-person vendor JSON files) with the sample's layout,
    /// vocabulary and defects.
    Generate(medrec_generate::GenerateArgs),
    /// A PostgreSQL cluster that outlives this command (for `make local-up`): `start` prints
    /// `DATABASE_URL=...` and records the cluster in STATE/postgres.env; `stop` removes it.
    Postgres {
        #[command(subcommand)]
        command: PostgresCommand,
    },
    /// API keys: `medrec api-key hash` prints the SHA-256 of a key read from stdin.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Serve the HTTP API (the `api` function's router) on a plain HTTP server over DATABASE_URL.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 8)]
        pool_size: usize,
        /// A key clients send in `x-api-key` (its id: `local`).
        #[arg(long, env = "MEDREC_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// More keys, as `id:sha256hex` entries separated by commas (`medrec api-key hash`
        /// prints a key's SHA-256); with or instead of --api-key.
        #[arg(long, env = "MEDREC_API_KEYS", hide_env_values = true)]
        api_keys: Option<String>,
        /// Connections served at once (lowered to fit the open-file limit); past it new ones
        /// wait, unaccepted, until one closes.
        #[arg(long, default_value_t = serve::MAX_CONNECTIONS)]
        max_connections: usize,
    },
    /// Write the quality report of DATABASE_URL: DIR/index.html, one page that opens offline
    /// (loads, quarantine reasons and lines, quality flags, sources, feature coverage, trend).
    /// Counts, reasons and ids only, unless --show-values.
    Report {
        #[arg(long, default_value = "target/report")]
        out: PathBuf,
        /// Also show the most common source values behind repairs (drug names, codes): for a
        /// trusted environment only.
        #[arg(long)]
        show_values: bool,
    },
    /// Write the Mermaid schema diagram of a freshly migrated database.
    SchemaDiagram {
        #[arg(long, default_value = "docs/schema.md")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Print the SHA-256 (hex) of the key on stdin (one line; the line end is not part of
    /// it), for MEDREC_API_KEYS (`id:<hash>`) and the API key secret (`{"id": "<hash>"}`).
    Hash,
}

#[derive(Subcommand)]
enum FeaturesCommand {
    /// Recompute the stored features of every person.
    Refresh,
    /// Write one row per person to a file.
    Export {
        #[arg(long, default_value = "csv")]
        format: medrec_pipeline::feature_file::Format,
        #[arg(long)]
        out: PathBuf,
        /// Compute the features from events on or before this date (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
    /// Print one person's features (computed now, or as of a date) with, for each, the clean
    /// rows that decided it (table, source, line, run), as JSON. The read is audited.
    Explain {
        person: i64,
        /// Compute from events on or before this date (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
    /// Write one row per spine row: its columns, then every feature as of its cutoff (a
    /// point-in-time join; docs/features.md, "Training sets").
    TrainingSet {
        /// A CSV (or .parquet) with person_id, cutoff (YYYY-MM-DD) and any other columns (passed
        /// through unchanged).
        #[arg(long)]
        spine: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "csv")]
        format: medrec_pipeline::feature_file::Format,
        /// Read the tables as known at this instant (RFC 3339): only rows of runs finished by
        /// then count, and rows a vendor file replaced later come back.
        #[arg(long, value_parser = parse_instant)]
        known_at: Option<chrono::DateTime<chrono::Utc>>,
        /// No progress display.
        #[arg(long)]
        quiet: bool,
    },
}

fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant (2026-12-01T09:30:00Z): {e}"))
}

#[derive(Subcommand)]
enum PostgresCommand {
    Start {
        #[arg(long, default_value = ".local")]
        state: PathBuf,
    },
    Stop {
        #[arg(long, default_value = ".local")]
        state: PathBuf,
    },
}

/// A database to work in: DATABASE_URL, or a throwaway cluster that lives as long as this value.
struct Database {
    config: DbConfig,
    cluster: Option<cluster::Cluster>,
}

impl Database {
    /// `kept`: the throwaway cluster may be kept after the command (`--keep`), so it must be
    /// durable.
    fn from_env_or_throwaway(kept: bool) -> anyhow::Result<Database> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(Database {
                config: DbConfig::new(url),
                cluster: None,
            }),
            _ => {
                let durability = if kept {
                    cluster::Durability::Durable
                } else {
                    cluster::Durability::Throwaway
                };
                let cluster = cluster::Cluster::start(durability)
                    .context("starting a throwaway PostgreSQL")?;
                if kept {
                    eprintln!(
                        "started a PostgreSQL on port {} (durable: it may be kept)",
                        cluster.port
                    );
                } else {
                    eprintln!(
                        "started a throwaway PostgreSQL on port {} with fsync, synchronous_commit \
                         and full_page_writes off (fast, not crash-safe): it is removed when this \
                         command ends; use DATABASE_URL or --keep for data to keep",
                        cluster.port
                    );
                }
                Ok(Database {
                    config: DbConfig::new(cluster.url.clone()),
                    cluster: Some(cluster),
                })
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MEDREC_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Ingest {
            dir,
            keep,
            no_features,
            jobs,
            quiet,
        } => {
            let mut db = Database::from_env_or_throwaway(keep)?;
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let result = ingest::run(&db.config, &dir, !no_features, jobs, quiet).await;
            if keep {
                if let Some(cluster) = db.cluster.as_mut() {
                    let path = cluster.keep();
                    println!("DATABASE_URL={}", cluster.url);
                    eprintln!("kept the PostgreSQL cluster in {}", path.display());
                }
            }
            result
        }
        Command::IngestJson {
            path,
            workers,
            no_features,
            quiet,
        } => {
            let db = Database::from_env_or_throwaway(false)?;
            ingest_json::run(&db.config, &path, workers, !no_features, quiet).await
        }
        Command::Runs {
            limit,
            outcome,
            json,
        } => {
            let client = medrec_store::connect(&DbConfig::from_env()?).await?;
            runs::print(&client, limit, outcome, json).await
        }
        Command::Migrate => {
            let mut client = medrec_store::connect(&DbConfig::from_env()?).await?;
            let applied = medrec_store::migrate(&mut client).await?;
            println!(
                "applied {} migration(s): {}",
                applied.len(),
                applied.join(", ")
            );
            Ok(())
        }
        Command::Features { command } => {
            let config = DbConfig::from_env()?;
            let client = medrec_store::connect(&config).await?;
            match command {
                FeaturesCommand::Refresh => {
                    // Everyone, so also whatever earlier runs left owed (settled with it), in
                    // parts side by side, one more connection each.
                    let mut helpers = Vec::new();
                    for _ in 1..medrec_pipeline::everyone_parts() {
                        helpers.push(medrec_store::connect(&config).await?);
                    }
                    let clients: Vec<&tokio_postgres::Client> =
                        std::iter::once(&client).chain(&helpers).collect();
                    let n = medrec_store::features::refresh_everyone(&clients).await?;
                    println!("recomputed the features of {n} person(s)");
                }
                FeaturesCommand::Export { format, out, as_of } => {
                    let exported = medrec_pipeline::feature_file::export(
                        &client, format, &out, as_of, CLI_KEY_ID,
                    )
                    .await?;
                    println!("wrote {} person(s) to {}", exported.rows, out.display());
                }
                FeaturesCommand::Explain { person, as_of } => {
                    let found = medrec_store::features::explain(&client, person, as_of).await?;
                    let access = medrec_store::audit::Access {
                        route: medrec_store::audit::AuditRoute::Features,
                        person_id: person,
                        key_id: CLI_KEY_ID,
                        status: if found.is_some() { 200 } else { 404 },
                    };
                    medrec_store::audit::record_on(&client, &access)
                        .await
                        .context("writing the access audit (the read is not shown)")?;
                    let Some((doc, why)) = found else {
                        anyhow::bail!("no person {person}");
                    };
                    let shown = serde_json::json!({
                        "person_id": doc.features.person_id,
                        "data": doc.features.values,
                        "definitions_version": doc.definitions_version,
                        "as_of": as_of.map(|d| d.to_string()),
                        "explanation": why,
                    });
                    println!("{}", serde_json::to_string_pretty(&shown)?);
                }
                FeaturesCommand::TrainingSet {
                    spine,
                    out,
                    format,
                    known_at,
                    quiet,
                } => {
                    let progress =
                        std::sync::Arc::new(medrec_pipeline::training::TrainingProgress::default());
                    let _shown = progress::show(progress.clone(), quiet);
                    let written = medrec_pipeline::training::write(
                        &client,
                        &medrec_pipeline::training::SpineFile::local(&spine),
                        &out,
                        format,
                        known_at,
                        CLI_KEY_ID,
                        &progress,
                    )
                    .await?;
                    let known = match written.provenance.known_at {
                        Some(t) => format!(", as known at {}", t.to_rfc3339()),
                        None => String::new(),
                    };
                    println!(
                        "wrote {} training row(s) to {} (definitions {}{known})",
                        written.rows,
                        out.display(),
                        written.provenance.definitions_version
                    );
                }
            }
            Ok(())
        }
        Command::Generate(args) => {
            let counter = std::sync::Arc::new(medrec_generate::Counter::default());
            let status = progress::Generating {
                counter: counter.clone(),
                started: std::time::Instant::now(),
            };
            let shown = progress::show(std::sync::Arc::new(status), args.quiet);
            let written = tokio::task::spawn_blocking(move || medrec_generate::run(args, counter))
                .await
                .context("the generator stopped")?;
            drop(shown);
            written
        }
        Command::Serve {
            listen,
            pool_size,
            api_key,
            api_keys,
            max_connections,
        } => {
            let db = DbConfig::from_env()?;
            let keys = serve_keys(api_key.as_deref(), api_keys.as_deref())?;
            serve::run(listen, &db, pool_size, keys, max_connections).await
        }
        Command::ApiKey {
            command: ApiKeyCommand::Hash,
        } => {
            let mut key = String::new();
            std::io::stdin().read_line(&mut key)?;
            let key = key.strip_suffix('\n').unwrap_or(&key);
            let key = key.strip_suffix('\r').unwrap_or(key);
            anyhow::ensure!(!key.is_empty(), "no key on stdin");
            println!("{}", medrec_api::keys::key_digest_hex(key.as_bytes()));
            Ok(())
        }
        Command::Report { out, show_values } => {
            let mut client = medrec_store::connect(&DbConfig::from_env()?).await?;
            let path = report::write(&mut client, &out, show_values).await?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Postgres { command } => postgres(command),
        Command::SchemaDiagram { out } => {
            let db = Database::from_env_or_throwaway(false)?;
            let mut client = medrec_store::connect(&db.config).await?;
            medrec_store::migrate(&mut client).await?;
            let doc = medrec_store::schema_doc::render(&client).await?;
            std::fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

/// `STATE/postgres.env` holds `PGCLUSTER_DIR=` and `DATABASE_URL=` lines of a kept cluster.
fn postgres(command: PostgresCommand) -> anyhow::Result<()> {
    match command {
        PostgresCommand::Start { state } => {
            let record = state.join("postgres.env");
            anyhow::ensure!(
                !record.exists(),
                "{} exists: a cluster is recorded already (`medrec postgres stop` first)",
                record.display()
            );
            std::fs::create_dir_all(&state)?;
            let mut cluster = cluster::Cluster::start(cluster::Durability::Durable)
                .context("starting PostgreSQL")?;
            let url = cluster.url.clone();
            let dir = cluster.keep();
            std::fs::write(
                &record,
                format!("PGCLUSTER_DIR={}\nDATABASE_URL={url}\n", dir.display()),
            )?;
            println!("DATABASE_URL={url}");
            Ok(())
        }
        PostgresCommand::Stop { state } => {
            let record = state.join("postgres.env");
            let Ok(text) = std::fs::read_to_string(&record) else {
                eprintln!("no cluster recorded in {}", record.display());
                return Ok(());
            };
            let dir = text
                .lines()
                .find_map(|l| l.strip_prefix("PGCLUSTER_DIR="))
                .with_context(|| format!("{} has no PGCLUSTER_DIR", record.display()))?;
            cluster::Cluster::stop_kept(std::path::Path::new(dir))?;
            std::fs::remove_file(&record)?;
            eprintln!("stopped and removed the PostgreSQL cluster in {dir}");
            Ok(())
        }
    }
}

/// `medrec serve`'s keys: MEDREC_API_KEY (id `local`) and MEDREC_API_KEYS entries.
fn serve_keys(plain: Option<&str>, entries: Option<&str>) -> anyhow::Result<medrec_api::ApiKeys> {
    let mut keys = medrec_api::ApiKeys::new();
    if let Some(entries) = entries {
        keys.insert_entries(entries)
            .context("MEDREC_API_KEYS (--api-keys)")?;
    }
    if let Some(plain) = plain {
        keys.insert_plain(medrec_api::keys::LOCAL_KEY_ID, plain)
            .context("MEDREC_API_KEY (--api-key)")?;
    }
    anyhow::ensure!(
        !keys.is_empty(),
        "set MEDREC_API_KEY (--api-key) or MEDREC_API_KEYS (--api-keys)"
    );
    Ok(keys)
}
