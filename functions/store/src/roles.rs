//! Least privilege: the group roles of `migrations/0011_roles_audit.sql`, their grants, and the
//! login users that are members of one.
//!
//! - the migrating user owns every object (in the cloud: the Aurora master user, used only by
//!   the migrate function);
//! - [`Role::Writer`] (`medrec_writer`): the clean, vendor and features functions, and local
//!   commands that load: read the schema, insert and change what the loaders and the feature
//!   refresh change, temporary tables (the load's stage), the functions;
//! - [`Role::Reader`] (`medrec_reader`): the API: `SELECT` on what it serves and `INSERT` on
//!   `access_audit`, nothing else;
//! - [`Role::Exporter`] (`medrec_exporter`): the export function: `SELECT` on what the features
//!   are computed from (the tables as known at an instant too), the spine's temporary table and
//!   `INSERT` on `access_audit`, nothing else.
//!
//! All are NOLOGIN groups. Roles are cluster-wide while grants are per database, so a login
//! user is a member in every database of the cluster and has privileges only where [`GRANTS`]
//! ran.

use anyhow::{bail, Context};
use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;

/// A group role of medrec's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `medrec_reader`: the API.
    Reader,
    /// `medrec_writer`: the loaders and the feature refresh.
    Writer,
    /// `medrec_exporter`: the export function (training sets and full exports).
    Exporter,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reader, Role::Writer, Role::Exporter];

    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "medrec_reader",
            Role::Writer => "medrec_writer",
            Role::Exporter => "medrec_exporter",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = anyhow::Error;

    /// `reader`, `writer` or `exporter`, with or without the `medrec_` prefix.
    fn from_str(text: &str) -> anyhow::Result<Role> {
        match text.strip_prefix("medrec_").unwrap_or(text) {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "exporter" => Ok(Role::Exporter),
            _ => bail!("{text} is not a role (reader, writer or exporter)"),
        }
    }
}

/// The grants on existing objects, idempotent. `migrate()` runs them (after the definitions)
/// whenever it applied anything once `0011_roles_audit.sql` is applied, so an object a later
/// migration creates, or a definition drops and creates, keeps its grants. A new table the API
/// serves is added to the reader's list here; one the writer must change, to the writer's.
pub const GRANTS: &str = r#"
DO $grants$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO medrec_reader, medrec_writer, medrec_exporter',
                   current_database());
    -- The load stages rows in a temporary table, a training set its spine.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO medrec_writer, medrec_exporter',
                   current_database());
    GRANT USAGE ON SCHEMA public TO medrec_reader, medrec_writer, medrec_exporter;

    -- The reader: what GET /persons/{id}, /persons/{id}/features, /runs, /runs/{id} and /report
    -- read, and the audit. Of the quarantine, only where and why: never the raw line.
    GRANT SELECT ON person, lifestyle, rx, conditions, labs, tests, event_date, encounter,
        person_features, object_receipt, ingest_run, ingest_run_flag, vendor_file TO medrec_reader;
    GRANT SELECT (run_id, source_line, reason, column_name) ON quarantine TO medrec_reader;
    GRANT INSERT ON access_audit TO medrec_reader;

    -- The writer: the CSV and vendor loaders, the receipts, the feature refresh.
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO medrec_writer;
    REVOKE ALL ON access_audit, schema_migration, schema_definition FROM medrec_writer;
    GRANT INSERT, UPDATE ON ingest_run, vendor_person TO medrec_writer;
    -- A run's flag counts are written once, with the run.
    REVOKE UPDATE, DELETE, TRUNCATE ON ingest_run_flag FROM medrec_writer;
    GRANT INSERT ON ingest_run_flag TO medrec_writer;
    GRANT INSERT ON person, quarantine, vendor_file, object_receipt TO medrec_writer;
    GRANT INSERT, DELETE ON lifestyle, rx, conditions, labs, tests TO medrec_writer;
    -- A vendor file moves the rows it replaces here (knowledge time): added, never changed.
    GRANT INSERT ON lifestyle_superseded, rx_superseded, conditions_superseded, labs_superseded,
        tests_superseded TO medrec_writer;
    GRANT INSERT, UPDATE, DELETE ON person_features, features_owed TO medrec_writer;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO medrec_writer;

    -- The exporter: what the features are computed from (as known at an instant too), the loads
    -- a manifest names, and the audit of every person it exports. Never the quarantine.
    GRANT SELECT ON person, lifestyle, rx, conditions, labs, tests, lifestyle_superseded,
        rx_superseded, conditions_superseded, labs_superseded, tests_superseded, event_date,
        encounter, person_features, ingest_run TO medrec_exporter;
    GRANT INSERT ON access_audit TO medrec_exporter;

    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO medrec_reader, medrec_writer,
        medrec_exporter;
END
$grants$;
"#;

/// The group roles, created when this cluster lacks them: `migrate()` runs it before any
/// migration (0011 grants to them), so a database restored into another cluster gets them too.
/// Roles are cluster-wide and many databases (the test databases) share one cluster: a
/// concurrent creator winning the race is not an error.
pub const ENSURE_ROLES: &str = r#"
DO $roles$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['medrec_reader', 'medrec_writer', 'medrec_exporter'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$roles$;
"#;

/// A login user's name: lower-case letters, digits and `_`, not a group role's or a system
/// one's, so that it can be written into SQL as a quoted identifier.
fn check_user_name(user: &str) -> anyhow::Result<()> {
    let ok = !user.is_empty()
        && user.len() <= 63
        && user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !user.starts_with("pg_")
        && !Role::ALL.iter().any(|r| r.name() == user);
    if !ok {
        bail!("{user:?} is not a valid login user name ([a-z_][a-z0-9_]*, not pg_* or a group)");
    }
    Ok(())
}

/// Makes `user` a login user that is a member of `role` and of no other medrec group: created
/// when missing, its password set when one is given (sent as a SCRAM-SHA-256 verifier, so the
/// password itself is never in a statement or a server log). Idempotent, and safe when several
/// databases of one cluster (tests) ensure the same user at once.
///
/// Needs CREATEROLE and ADMIN on the groups: the migrating user (who created them) has both.
pub async fn ensure_login(
    client: &impl GenericClient,
    user: &str,
    password: Option<&str>,
    role: Role,
) -> anyhow::Result<()> {
    check_user_name(user)?;
    let revoke_others: String = Role::ALL
        .iter()
        .filter(|other| **other != role)
        .map(|other| {
            format!(
                r#"
    IF EXISTS (SELECT FROM pg_auth_members m
               WHERE m.roleid = '{other}'::regrole AND m.member = '{user}'::regrole) THEN
        REVOKE "{other}" FROM "{user}";
    END IF;"#,
                other = other.name()
            )
        })
        .collect();
    let create = format!(
        r#"DO $login$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN
        BEGIN
            CREATE ROLE "{user}" LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = '{user}') THEN
        ALTER ROLE "{user}" LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_auth_members m
                   WHERE m.roleid = '{group}'::regrole AND m.member = '{user}'::regrole) THEN
        BEGIN
            GRANT "{group}" TO "{user}";
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    {revoke_others}
END
$login$"#,
        group = role.name(),
    );
    client
        .batch_execute(&create)
        .await
        .with_context(|| format!("creating the login user {user} ({})", role.name()))?;
    if let Some(password) = password {
        anyhow::ensure!(!password.is_empty(), "the password of {user} is empty");
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        // The verifier is base64 and `$:` only: no quote can end the literal early.
        anyhow::ensure!(
            verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=$:-".contains(&b)),
            "unexpected characters in a SCRAM verifier"
        );
        client
            .batch_execute(&format!(r#"ALTER ROLE "{user}" PASSWORD '{verifier}'"#))
            .await
            .with_context(|| format!("setting the password of {user}"))?;
    }
    Ok(())
}

/// True when the error is PostgreSQL refusing a privilege (SQLSTATE 42501).
pub fn is_permission_denied(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_are_plain_identifiers() {
        for ok in ["medrec_api", "medrec_app", "_x", "a1"] {
            assert!(check_user_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Medrec",
            "medrec-api",
            "a\"b",
            "a'b",
            "1abc",
            "pg_monitor",
            "medrec_reader",
            "medrec_writer",
            &"a".repeat(64),
        ] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
        assert_eq!("reader".parse::<Role>().unwrap(), Role::Reader);
        assert_eq!("medrec_writer".parse::<Role>().unwrap(), Role::Writer);
        assert!("owner".parse::<Role>().is_err());
    }
}
