//! `medrec-dev`: tools of the local development loop (`local/stack`), not part of the product.

mod esm;
mod unrouted;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "medrec-dev",
    version,
    about = "Local development loop tools for medrec"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Emulate Lambda's SQS event source mappings locally (LocalStack cannot run them without
    /// Docker): poll each queue and invoke its function through `cargo lambda watch`.
    EventSourceMappings {
        #[arg(long, default_value = ".local/mappings.json")]
        mappings: PathBuf,
        /// The Lambda Invoke API (`cargo lambda watch -A 127.0.0.1 -P 9000`).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        lambda_url: String,
        /// Make failed messages visible again after this many seconds instead of the queue's
        /// visibility timeout: the local loop's short retry schedule (`local/stack` passes
        /// ESM_RETRY_AFTER, 3 s by default). Unset, retries wait the visibility timeout, as in AWS.
        #[arg(long)]
        retry_after: Option<u64>,
        /// Also sweep this bucket for objects under no routed prefix, and send each to be
        /// refused and recorded (the local stand-in for the template's bucket policy, which
        /// LocalStack does not enforce).
        #[arg(long)]
        sweep_bucket: Option<String>,
    },
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
        Command::EventSourceMappings {
            mappings,
            lambda_url,
            retry_after,
            sweep_bucket,
        } => {
            let mappings = esm::run(
                esm::read_mappings(&mappings)?,
                lambda_url,
                retry_after.map(Duration::from_secs),
            );
            match sweep_bucket {
                None => mappings.await,
                Some(bucket) => {
                    let sweeper = unrouted::Sweeper::new(bucket).await;
                    tokio::try_join!(mappings, sweeper.run()).map(|_| ())
                }
            }
        }
    }
}
