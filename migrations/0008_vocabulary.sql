-- The vocabularies of medrec_core's enums as tables, filled by migrate() from the Rust lists
-- (Flag::ALL, Reason::ALL, clean::common::SPECIALTY_CODES), as drug_class is from the drug
-- book. A value is only ever added, never removed, so a row stored under an older vocabulary
-- stays valid. A new variant in Rust needs no SQL edit: the next migrate() adds it.
CREATE TABLE quality_flag (
    flag text PRIMARY KEY CHECK (flag ~ '^[a-z0-9_]+$')
);
CREATE TABLE quarantine_reason (
    reason text PRIMARY KEY CHECK (reason ~ '^[a-z0-9_]+$')
);
CREATE TABLE specialty (
    specialty text PRIMARY KEY CHECK (specialty ~ '^[a-z0-9_]+$')
);

-- quarantine.reason: a foreign key to the vocabulary instead of 0001's list. Quarantined rows
-- are few, so the per-row key check costs nothing that matters. The reasons already stored seed
-- the table so the key validates here; migrate() adds the rest.
-- The clean tables keep their CHECKs (quality_flags_ok, specialty_ok): those run on every clean
-- row, so migrations/definitions/R__10_vocabulary.sql rebuilds them from these tables as
-- constants instead of a per-row lookup or foreign key.
INSERT INTO quarantine_reason (reason) SELECT DISTINCT reason FROM quarantine;
ALTER TABLE quarantine
    DROP CONSTRAINT quarantine_reason_check,
    ADD CONSTRAINT quarantine_reason_fk FOREIGN KEY (reason) REFERENCES quarantine_reason;
