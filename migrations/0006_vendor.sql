-- Per-person vendor JSON files (docs/vendor-json.md): each file replaces that person's rows from
-- that vendor in one short transaction that locks only rows of that person.

-- Vendor lineage on runs: a vendor file's runs (one per non-empty table) name the vendor and the
-- person, so "that person's rows from that vendor" is found by run without touching other rows.
ALTER TABLE ingest_run
    ADD COLUMN vendor_id text,
    ADD COLUMN vendor_person_id bigint,
    ADD CONSTRAINT ingest_run_vendor_pair
        CHECK ((vendor_id IS NULL) = (vendor_person_id IS NULL));
CREATE INDEX ingest_run_vendor_person ON ingest_run (vendor_id, vendor_person_id)
    WHERE vendor_id IS NOT NULL;

-- The version of each person's record loaded from each vendor. Its row is the per-person lock:
-- SELECT ... FOR UPDATE serialises files of one person and nothing else.
CREATE TABLE vendor_person (
    vendor_id  text NOT NULL CHECK (vendor_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    person_id  bigint NOT NULL CHECK (person_id > 0),
    -- 0 only inside the first file's transaction, before its version is stored.
    version    bigint NOT NULL CHECK (version >= 0),
    updated_at timestamptz,
    sha256     text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    file_id    bigint,
    loaded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (vendor_id, person_id)
);

-- Every vendor file received, whatever became of it.
CREATE TABLE vendor_file (
    file_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         text NOT NULL,
    -- The object's version where the source has one (an S3 ETag), else NULL.
    source_version text,
    sha256         text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes          bigint CHECK (bytes >= 0),
    -- Known once the file parsed; a rejected file may have none.
    vendor_id      text,
    person_id      bigint,
    version        bigint,
    updated_at     timestamptz,
    status         text NOT NULL CHECK (status IN ('loaded', 'ignored', 'rejected')),
    -- Machine-readable: why a file was rejected ('invalid_json', ...) or ignored
    -- ('same_file', 'not_newer'); NULL when loaded.
    reason         text,
    detail         text,
    -- The version already loaded when this file was ignored.
    stored_version bigint,
    run_ids        bigint[] NOT NULL DEFAULT '{}',
    raw_rows       bigint NOT NULL DEFAULT 0,
    loaded_rows    bigint NOT NULL DEFAULT 0,
    duplicate_rows bigint NOT NULL DEFAULT 0,
    quarantined_rows bigint NOT NULL DEFAULT 0,
    received_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT vendor_file_conserves_rows
        CHECK (raw_rows = loaded_rows + duplicate_rows + quarantined_rows),
    CONSTRAINT vendor_file_reason
        CHECK ((status = 'loaded') = (reason IS NULL))
);
CREATE INDEX vendor_file_person ON vendor_file (vendor_id, person_id) WHERE vendor_id IS NOT NULL;
