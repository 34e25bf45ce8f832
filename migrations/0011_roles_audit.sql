-- Least privilege (docs/deploy.md, "Database users and the access audit"). The migrating user
-- owns every object. Two NOLOGIN group roles hold the privileges; login users are made members of one
-- (medrec_store::roles::ensure_login, run by the migrate function in the cloud):
--   medrec_writer  the clean, vendor and features functions and the local commands that load
--   medrec_reader  the API: SELECT on what it serves, INSERT on access_audit, nothing else
-- The grants on existing objects are medrec_store::roles::GRANTS, which migrate() re-runs
-- whenever it applied anything, so that objects a later migration or definition creates (or
-- drops and creates) are covered; the default privileges below cover later tables for the
-- writer between those runs.
--
-- The two roles exist: migrate() creates them, when the cluster lacks them, before any
-- migration (medrec_store::roles::ENSURE_ROLES).

-- Nobody but the owner creates objects (already so from PostgreSQL 15 on).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Every person read through the API (GET /persons/{id} and /persons/{id}/features), appended in
-- the request, on the connection of the read: the route, the person, the caller's API key id
-- (never the key) and the answer's status. Never a record value. Append-only: the API's role
-- may only INSERT, and the trigger below refuses UPDATE, DELETE and TRUNCATE to everyone (the
-- owner included, unless it drops the trigger: retention is a deliberate, audited act).
CREATE TABLE access_audit (
    audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    accessed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    route       text NOT NULL CHECK (route IN ('person', 'features')),
    person_id   bigint NOT NULL CHECK (person_id > 0),
    key_id      text NOT NULL CHECK (key_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    status      smallint NOT NULL CHECK (status BETWEEN 100 AND 599),
    -- The database login that served the read (the API function's user).
    db_user     text NOT NULL DEFAULT session_user
);
CREATE INDEX access_audit_person ON access_audit (person_id, accessed_at);

CREATE FUNCTION access_audit_is_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'access_audit is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER access_audit_no_update_or_delete
    BEFORE UPDATE OR DELETE ON access_audit
    FOR EACH ROW EXECUTE FUNCTION access_audit_is_append_only();
CREATE TRIGGER access_audit_no_truncate
    BEFORE TRUNCATE ON access_audit
    FOR EACH STATEMENT EXECUTE FUNCTION access_audit_is_append_only();
REVOKE ALL ON access_audit FROM PUBLIC;

-- Tables, sequences and functions the migrating user creates from now on: the writer may read
-- and change rows (a migration that adds a table the writer must not change revokes that), use
-- sequences and call functions. The reader gets new tables only by name, in GRANTS.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO medrec_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO medrec_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO medrec_writer, medrec_reader;
