-- The five clean tables. Every row carries the same lineage and quality columns:
--   row_hash    128-bit hash of the trimmed raw row: exact duplicates share it (the dedup key)
--   run_id      the ingest run that first loaded the row; source_line its line in that file
--   flags       quality flags: a value was nulled or repaired (vocabulary: quality_flags_ok)
--   raw_values  source text of values nulled or repaired by inference (not of lossless normalisation)
--   extras      values of source columns the cleaner does not know, by column name

CREATE FUNCTION quality_flags_ok(flags text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN flags <@ ARRAY[
    'placeholder_date', 'invalid_date', 'end_before_start', 'float_encoded_person_id',
    'invalid_icd_code', 'invalid_din', 'invalid_rx_norm', 'natural_product_number',
    'invalid_loinc', 'specialty_person_name_removed', 'unknown_specialty',
    'class_from_ingredient', 'unknown_drug', 'unknown_analyte', 'loinc_analyte_mismatch',
    'range_repaired', 'range_unparsed', 'flag_mismatch', 'value_unparsed']::text[];

CREATE FUNCTION specialty_ok(specialty text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN specialty IN ('general_medicine', 'cardiology', 'dermatology', 'rheumatology', 'urology',
                     'oncology', 'neurology', 'orthopedics', 'physiatry', 'gastroenterology', 'other');

CREATE TABLE lifestyle (
    person_id           bigint NOT NULL REFERENCES person,
    row_hash            bytea NOT NULL CHECK (octet_length(row_hash) = 16),
    impairment_category text,
    impairment          text,
    lifestyle_category  text,
    feature_type        text,
    feature             text NOT NULL,
    report_date         date,
    clinician_specialty text,
    specialty           text CHECK (specialty_ok(specialty)),
    value               text,
    value_num           double precision,
    secondary_value     text,
    run_id              bigint NOT NULL REFERENCES ingest_run,
    source_line         bigint NOT NULL,
    flags               text[] NOT NULL DEFAULT '{}' CHECK (quality_flags_ok(flags)),
    raw_values          jsonb,
    extras              jsonb,
    PRIMARY KEY (person_id, row_hash)
);

CREATE TABLE conditions (
    id                  bigint PRIMARY KEY CHECK (id > 0),
    person_id           bigint NOT NULL REFERENCES person,
    row_hash            bytea NOT NULL CHECK (octet_length(row_hash) = 16),
    impairment_category text,
    impairment          text,
    feature_type        text,
    feature             text NOT NULL,
    icd_code            text CHECK (icd_code ~ '^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$'),
    report_date         date,
    clinician_specialty text,
    specialty           text CHECK (specialty_ok(specialty)),
    value               text,
    run_id              bigint NOT NULL REFERENCES ingest_run,
    source_line         bigint NOT NULL,
    flags               text[] NOT NULL DEFAULT '{}' CHECK (quality_flags_ok(flags)),
    raw_values          jsonb,
    extras              jsonb
);
CREATE INDEX conditions_person ON conditions (person_id, report_date);

-- Drug classes: the vocabulary of functions/core/data/drug_classes.csv, synced at migration.
CREATE TABLE drug_class (
    drug_class  text PRIMARY KEY CHECK (drug_class ~ '^[a-z0-9_]+$'),
    description text NOT NULL
);

CREATE TABLE rx (
    person_id           bigint NOT NULL REFERENCES person,
    row_hash            bytea NOT NULL CHECK (octet_length(row_hash) = 16),
    impairment_category text,
    impairment          text,
    din                 text CHECK (din ~ '^[0-9]{8}$'),
    rx_norm             text CHECK (rx_norm ~ '^[0-9]{1,10}$'),
    rx_name             text NOT NULL,
    rx_name_norm        text NOT NULL,
    ingredient          text,
    drug_class          text REFERENCES drug_class,
    rx_type             text,
    rx_type_class       text REFERENCES drug_class,
    start_date          date,
    end_date            date,
    rx_date             date,
    run_id              bigint NOT NULL REFERENCES ingest_run,
    source_line         bigint NOT NULL,
    flags               text[] NOT NULL DEFAULT '{}' CHECK (quality_flags_ok(flags)),
    raw_values          jsonb,
    extras              jsonb,
    PRIMARY KEY (person_id, row_hash)
);

CREATE TABLE labs (
    person_id           bigint NOT NULL REFERENCES person,
    row_hash            bytea NOT NULL CHECK (octet_length(row_hash) = 16),
    impairment_category text,
    impairment          text,
    loinc               text CHECK (loinc ~ '^[0-9]{1,7}-[0-9]$'),
    feature             text NOT NULL,
    analyte             text CHECK (analyte ~ '^[a-z0-9_]+$'),
    feature_date        date,
    value_raw           text,
    value_num           double precision,
    value_operator      text CHECK (value_operator IN ('<', '<=', '>', '>=')),
    value_text          text,
    range_raw           text,
    range_low           double precision,
    range_high          double precision,
    range_text          text,
    flag_src            text,
    flag_calc           text CHECK (flag_calc IN ('low', 'normal', 'high', 'abnormal')),
    run_id              bigint NOT NULL REFERENCES ingest_run,
    source_line         bigint NOT NULL,
    flags               text[] NOT NULL DEFAULT '{}' CHECK (quality_flags_ok(flags)),
    raw_values          jsonb,
    extras              jsonb,
    PRIMARY KEY (person_id, row_hash)
);

CREATE TABLE tests (
    person_id           bigint NOT NULL REFERENCES person,
    row_hash            bytea NOT NULL CHECK (octet_length(row_hash) = 16),
    impairment_category text,
    impairment          text,
    feature             text NOT NULL,
    icd_code            text CHECK (icd_code ~ '^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$'),
    report_date         date,
    value               text,
    value_num           double precision,
    value_operator      text CHECK (value_operator IN ('<', '<=', '>', '>=')),
    value_unit          text,
    value_low           double precision,
    value_high          double precision,
    systolic            integer CHECK (systolic BETWEEN 40 AND 300),
    diastolic           integer CHECK (diastolic BETWEEN 20 AND 200),
    run_id              bigint NOT NULL REFERENCES ingest_run,
    source_line         bigint NOT NULL,
    flags               text[] NOT NULL DEFAULT '{}' CHECK (quality_flags_ok(flags)),
    raw_values          jsonb,
    extras              jsonb,
    PRIMARY KEY (person_id, row_hash)
);
