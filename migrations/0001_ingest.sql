-- Persons, ingest runs and quarantine: the lineage every clean row points to.

CREATE TABLE person (
    person_id    bigint PRIMARY KEY CHECK (person_id > 0),
    first_run_id bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per raw file (or vendor object) processed.
CREATE TABLE ingest_run (
    run_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name       text NOT NULL CHECK (table_name IN ('lifestyle', 'rx', 'conditions', 'labs', 'tests')),
    source           text NOT NULL,
    -- The object's version where the source has one (an S3 ETag), else NULL.
    source_version   text,
    sha256           text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes            bigint CHECK (bytes >= 0),
    -- 'loading' exists only inside the loading transaction; others never see it.
    status           text NOT NULL CHECK (status IN ('loading', 'loaded', 'failed')),
    error            text,
    raw_rows         bigint NOT NULL DEFAULT 0 CHECK (raw_rows >= 0),
    loaded_rows      bigint NOT NULL DEFAULT 0 CHECK (loaded_rows >= 0),
    duplicate_rows   bigint NOT NULL DEFAULT 0 CHECK (duplicate_rows >= 0),
    quarantined_rows bigint NOT NULL DEFAULT 0 CHECK (quarantined_rows >= 0),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    -- Conservation: every raw row is loaded, a duplicate, or quarantined.
    CONSTRAINT ingest_run_conserves_rows
        CHECK (raw_rows = loaded_rows + duplicate_rows + quarantined_rows),
    CONSTRAINT ingest_run_loaded_has_hash
        CHECK (status <> 'loaded' OR (sha256 IS NOT NULL AND finished_at IS NOT NULL))
);

-- The same content is loaded into a table at most once: re-delivered files are no-ops.
CREATE UNIQUE INDEX ingest_run_loaded_once ON ingest_run (table_name, sha256) WHERE status = 'loaded';

ALTER TABLE person
    ADD CONSTRAINT person_first_run_fk FOREIGN KEY (first_run_id) REFERENCES ingest_run (run_id);

-- Raw rows that could not be loaded, with why and the exact line.
CREATE TABLE quarantine (
    run_id      bigint NOT NULL REFERENCES ingest_run (run_id) ON DELETE CASCADE,
    source_line bigint NOT NULL CHECK (source_line > 0),
    reason      text NOT NULL CHECK (reason IN (
        'too_few_fields', 'too_many_fields', 'invalid_utf8', 'nul_byte', 'line_too_long',
        'missing_person_id', 'invalid_person_id', 'missing_required_value', 'invalid_id',
        'conflicting_id')),
    -- The source column at fault, when one is.
    column_name text,
    -- The line as text (invalid bytes replaced); raw_bytes holds the exact bytes when they differ.
    raw_line    text NOT NULL,
    raw_bytes   bytea,
    PRIMARY KEY (run_id, source_line)
);
