//! Configuration read once at cold start, from the environment (and Secrets Manager in the cloud).
//!
//! Locally: `DATABASE_URL`, `MEDREC_API_KEY` (or `MEDREC_API_KEYS`), `AWS_ENDPOINT_URL` (the
//! emulator).
//! In the cloud (see infra/template.yaml): `DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_NAME`,
//! `DATABASE_SECRET_ARN` (JSON with `username` and `password`), `DATABASE_SSLMODE`,
//! `API_KEY_SECRET_ARN`, and for the migrate function `DATABASE_LOGINS`. Each function's
//! database secret is its own login user's. `DATABASE_POOL_SIZE` in both (default 2); `MEDREC_MAX_CSV_BYTES` for the
//! clean functions (default 512 MiB), `MEDREC_MAX_SPINE_BYTES` for the export function (default
//! 64 MiB).

use anyhow::{bail, Context};
use aws_config::{BehaviorVersion, SdkConfig};
use medrec_api::ApiKeys;
use medrec_store::roles::Role;
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

/// The largest raw CSV the clean function takes: `MEDREC_MAX_CSV_BYTES`, by default
/// [`medrec_pipeline::FUNCTION_MAX_CSV_BYTES`].
pub fn max_csv_bytes() -> anyhow::Result<u64> {
    byte_limit(
        "MEDREC_MAX_CSV_BYTES",
        medrec_pipeline::FUNCTION_MAX_CSV_BYTES,
    )
}

/// The largest spine the export function takes: `MEDREC_MAX_SPINE_BYTES`, by default
/// [`medrec_pipeline::FUNCTION_MAX_SPINE_BYTES`].
pub fn max_spine_bytes() -> anyhow::Result<u64> {
    byte_limit(
        "MEDREC_MAX_SPINE_BYTES",
        medrec_pipeline::FUNCTION_MAX_SPINE_BYTES,
    )
}

/// A size limit in bytes from `name`, above 0; `default` when unset.
fn byte_limit(name: &str, default: u64) -> anyhow::Result<u64> {
    match var(name) {
        None => Ok(default),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("{name} must be a whole number of bytes above 0"),
        },
    }
}

/// The API keys ([`medrec_api::keys`]): `MEDREC_API_KEYS` (`id:sha256hex` entries),
/// `MEDREC_API_KEY` (one plain key, id `local`, for the local loop) and the secret named by
/// `API_KEY_SECRET_ARN`, any or all of them; at least one key in all. Read at cold start: a
/// changed secret takes effect in new execution environments (docs/deploy.md, rotating keys).
pub async fn api_keys() -> anyhow::Result<ApiKeys> {
    let secret = match var("API_KEY_SECRET_ARN") {
        Some(arn) => Some(secret_string(&arn).await?),
        None => None,
    };
    api_keys_from(
        var("MEDREC_API_KEYS").as_deref(),
        var("MEDREC_API_KEY").as_deref(),
        secret.as_deref(),
    )
}

/// The id of the key of a secret that holds one plain key (the stack's generated secret,
/// before it is replaced by hashes).
pub const SECRET_PLAIN_KEY_ID: &str = "default";

/// [`api_keys`] from the variables' and the secret's values. The secret is a JSON object
/// `{"id": "sha256hex", ...}`; a plain string (or `{"api_key": "..."}`) is one plain key, id
/// `default`.
fn api_keys_from(
    entries: Option<&str>,
    plain: Option<&str>,
    secret: Option<&str>,
) -> anyhow::Result<ApiKeys> {
    let mut keys = ApiKeys::new();
    if let Some(entries) = entries {
        keys.insert_entries(entries).context("MEDREC_API_KEYS")?;
    }
    if let Some(plain) = plain {
        keys.insert_plain(medrec_api::keys::LOCAL_KEY_ID, plain)
            .context("MEDREC_API_KEY")?;
    }
    if let Some(secret) = secret {
        match serde_json::from_str::<serde_json::Value>(secret) {
            Ok(serde_json::Value::Object(map)) if map.contains_key("api_key") => {
                let key = map["api_key"]
                    .as_str()
                    .context("the API key secret's api_key is not a string")?;
                keys.insert_plain(SECRET_PLAIN_KEY_ID, key)
            }
            Ok(json @ serde_json::Value::Object(_)) => keys.insert_json(&json),
            _ => keys.insert_plain(SECRET_PLAIN_KEY_ID, secret.trim()),
        }
        .context("the API key secret")?;
    }
    anyhow::ensure!(
        !keys.is_empty(),
        "set MEDREC_API_KEY or MEDREC_API_KEYS (locally) or API_KEY_SECRET_ARN (in the cloud)"
    );
    Ok(keys)
}

/// The login users the migrate function keeps (`DATABASE_LOGINS`: `role=secret-arn` entries
/// separated by commas, role `reader` or `writer`; each secret JSON with `username` and
/// `password`): created or updated as members of their role after every migration.
pub fn database_logins() -> anyhow::Result<Vec<(Role, String)>> {
    parse_logins(var("DATABASE_LOGINS").as_deref().unwrap_or(""))
}

fn parse_logins(text: &str) -> anyhow::Result<Vec<(Role, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (role, arn) = entry
                .split_once('=')
                .context("a DATABASE_LOGINS entry is not role=secret-arn")?;
            Ok((role.trim().parse::<Role>()?, arn.trim().to_owned()))
        })
        .collect()
}

/// One login user's credentials (`username` and `password`) from its secret.
pub async fn login_credentials(arn: &str) -> anyhow::Result<(String, String)> {
    let secret = secret_string(arn).await?;
    let secret: serde_json::Value =
        serde_json::from_str(&secret).context("a login secret is not JSON")?;
    let field = |name: &str| {
        secret[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("a login secret has no {name}"))
    };
    Ok((field("username")?, field("password")?))
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
    fn api_keys_come_from_entries_the_local_key_and_the_secret() {
        let a = medrec_api::keys::key_digest_hex(b"key-a");
        let keys = api_keys_from(
            Some(&format!("ops:{a}")),
            Some("key-local"),
            Some(&format!(
                r#"{{"ds": "{}"}}"#,
                medrec_api::keys::key_digest_hex(b"key-ds")
            )),
        )
        .unwrap();
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["ops", "local", "ds"]);
        assert_eq!(keys.check(b"key-ds").unwrap().as_str(), "ds");
        // The stack's generated secret: one plain key.
        for secret in ["generated-key\n", r#"{"api_key": "generated-key"}"#] {
            let keys = api_keys_from(None, None, Some(secret)).unwrap();
            assert_eq!(keys.check(b"generated-key").unwrap().as_str(), "default");
        }
        assert!(api_keys_from(None, None, None).is_err());
        assert!(api_keys_from(None, Some(""), None).is_err());
        assert!(api_keys_from(None, None, Some(r#"{"ops": "not-hex"}"#)).is_err());
    }

    #[test]
    fn logins_name_a_role_and_a_secret() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123:secret:medrec-api-AbCd";
        assert_eq!(
            parse_logins(&format!("reader={arn}, writer=arn:x")).unwrap(),
            [
                (Role::Reader, arn.to_owned()),
                (Role::Writer, "arn:x".to_owned())
            ]
        );
        assert!(parse_logins("").unwrap().is_empty());
        assert!(parse_logins(&format!("owner={arn}")).is_err());
        assert!(parse_logins(arn).is_err());
    }

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
