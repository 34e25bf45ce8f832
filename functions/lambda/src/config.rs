//! Configuration read once at cold start, from the environment (and Secrets Manager in the cloud).
//!
//! Locally: `DATABASE_URL`, `MEDREC_API_KEY`, `AWS_ENDPOINT_URL` (the emulator).
//! In the cloud (see infra/template.yaml): `DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_NAME`,
//! `DATABASE_SECRET_ARN` (JSON with `username` and `password`), `DATABASE_SSLMODE`,
//! `API_KEY_SECRET_ARN`. `DATABASE_POOL_SIZE` in both (default 2).

use anyhow::{bail, Context};
use aws_config::{BehaviorVersion, SdkConfig};
use medrec_store::DbConfig;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> anyhow::Result<String> {
    var(name).with_context(|| format!("{name} is not set"))
}

/// The AWS SDK's shared configuration (region, credentials, `AWS_ENDPOINT_URL`), loaded once:
/// only when a function needs AWS (locally the API needs none).
pub async fn aws() -> &'static SdkConfig {
    static SDK: tokio::sync::OnceCell<SdkConfig> = tokio::sync::OnceCell::const_new();
    SDK.get_or_init(|| aws_config::load_defaults(BehaviorVersion::latest()))
        .await
}

/// S3 with path-style addressing, which both AWS and the emulators accept.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn secret_string(arn: &str) -> anyhow::Result<String> {
    aws_sdk_secretsmanager::Client::new(aws().await)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .context("reading a secret from Secrets Manager")?
        .secret_string
        .context("the secret has no string value")
}

/// Where the database is: `DATABASE_URL`, or host, port and name with credentials from a secret.
pub async fn database() -> anyhow::Result<DbConfig> {
    if let Some(url) = var("DATABASE_URL") {
        return Ok(DbConfig::new(url));
    }
    let secret = secret_string(&required("DATABASE_SECRET_ARN")?).await?;
    let secret: serde_json::Value =
        serde_json::from_str(&secret).context("the database secret is not JSON")?;
    let field = |name: &str| {
        secret[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the database secret has no {name}"))
    };
    Ok(DbConfig::new(key_value_connection_string(&[
        ("host", required("DATABASE_HOST")?),
        (
            "port",
            var("DATABASE_PORT").unwrap_or_else(|| "5432".into()),
        ),
        ("dbname", required("DATABASE_NAME")?),
        ("user", field("username")?),
        ("password", field("password")?),
        (
            "sslmode",
            var("DATABASE_SSLMODE").unwrap_or_else(|| "require".into()),
        ),
    ])))
}

/// libpq's `key='value'` form, which needs no URL escaping of passwords.
fn key_value_connection_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| {
            format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Connections per process. Keep concurrency x pool size under the database's connection limit.
pub fn pool_size() -> anyhow::Result<usize> {
    match var("DATABASE_POOL_SIZE") {
        None => Ok(2),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => bail!("DATABASE_POOL_SIZE must be a whole number from 1 to 64"),
        },
    }
}

/// The API key: `MEDREC_API_KEY`, or the secret named by `API_KEY_SECRET_ARN` (its string, or
/// its `api_key` field when it is a JSON object).
pub async fn api_key() -> anyhow::Result<String> {
    if let Some(key) = var("MEDREC_API_KEY") {
        return Ok(key);
    }
    let arn = var("API_KEY_SECRET_ARN")
        .context("set MEDREC_API_KEY (locally) or API_KEY_SECRET_ARN (in the cloud)")?;
    let secret = secret_string(&arn).await?;
    match serde_json::from_str::<serde_json::Value>(&secret) {
        Ok(serde_json::Value::Object(map)) => map
            .get("api_key")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .context("the API key secret has no api_key field"),
        _ => Ok(secret),
    }
}

/// The queue that receives person ids to recompute (`FEATURES_QUEUE_URL`).
pub fn features_queue_url() -> anyhow::Result<String> {
    required("FEATURES_QUEUE_URL")
}

/// The table a cleaning function is dedicated to (`MEDREC_TABLE`, exactly a table's lower-case
/// name); unset: any, by key prefix.
pub fn table() -> anyhow::Result<Option<medrec_core::Table>> {
    var("MEDREC_TABLE")
        .map(|name| {
            name.parse::<medrec_core::Table>()
                .ok()
                .with_context(|| format!("MEDREC_TABLE={name} is not a table"))
        })
        .transpose()
}

/// JSON logs to stderr (CloudWatch keeps them), level from `RUST_LOG` (default info).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_with_quotes_and_spaces_survive_the_connection_string() {
        let s = key_value_connection_string(&[
            ("host", "db.example".into()),
            ("user", "medrec".into()),
            ("password", r"it's a \secret".into()),
        ]);
        let config: tokio_postgres::Config = s.parse().unwrap();
        assert_eq!(config.get_password(), Some(&br"it's a \secret"[..]));
        assert_eq!(config.get_user(), Some("medrec"));
    }
}
