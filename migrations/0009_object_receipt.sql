-- Every object that reached medrec (an S3 notification, a file named on the command line) and
-- what became of it, one row per attempt: loaded, already loaded, ignored (vendor: not newer),
-- rejected (with a reason), failed (to be retried), superseded (overwritten since announced),
-- or refused (under no known prefix or table, or sent to a function that does not take it).
-- The outcomes are the Rust enum medrec_store::receipts::Outcome, synced by migrate().
CREATE TABLE object_outcome (
    outcome text PRIMARY KEY CHECK (outcome ~ '^[a-z0-9_]+$')
);

CREATE TABLE object_receipt (
    receipt_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A path or s3://bucket/key, as ingest_run.source and vendor_file.source name it.
    source         text NOT NULL,
    source_version text,
    -- 'csv' or 'vendor' when the object's kind is known.
    kind           text CHECK (kind IN ('csv', 'vendor')),
    table_name     text,
    outcome        text NOT NULL REFERENCES object_outcome,
    -- Why, in words that name kinds and columns, never record values.
    reason         text,
    run_id         bigint REFERENCES ingest_run,
    file_id        bigint REFERENCES vendor_file,
    -- Persons announced for recomputation because of this object.
    persons        integer NOT NULL DEFAULT 0 CHECK (persons >= 0),
    received_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX object_receipt_received ON object_receipt (received_at DESC, receipt_id DESC);
CREATE INDEX object_receipt_source ON object_receipt (source, received_at DESC);
