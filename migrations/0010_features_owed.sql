-- Derived data that survives a crash (docs/features.md, "After a crash").
--
-- features_owed: the persons whose stored features are owed a recompute. Every load (a raw CSV,
-- a vendor file) upserts its persons here in the same transaction as its rows, so a load that
-- committed can never leave its persons' features stale unnoticed, whatever happens to the
-- process afterwards; a refresh deletes the rows it computed from, in the same transaction as it
-- writes person_features. Any later refresh (medrec ingest, medrec ingest-json, the features
-- function, medrec features refresh) takes what is owed, oldest first.
--
-- seq orders the changes of one person: a load sets it from features_owed_seq in the upsert's
-- UPDATE, which runs after the load holds the row's lock, so of two loads of a person the one
-- that commits later has the larger seq. A refresh reads each person's seq in its own snapshot
-- and deletes only `seq <= what it read`: a load that commits while the refresh runs leaves its
-- persons owed (no lost update), and a load never waits for a refresh's computation.
CREATE SEQUENCE features_owed_seq;

CREATE TABLE features_owed (
    -- No foreign key: a refresh settles an owed id whether or not the person exists, and a load
    -- of a million persons need not check a million keys again.
    person_id bigint PRIMARY KEY,
    seq       bigint NOT NULL
);

-- Oldest first, for the bounded batches of owed persons.
CREATE INDEX features_owed_by_seq ON features_owed (seq);

-- The person's change (features_owed.seq) the stored row was computed from; 0 for rows computed
-- before this migration. The upsert replaces a row only with one computed from the same or a
-- later change, so a refresh that started before a load cannot overwrite one that started
-- after it.
ALTER TABLE person_features ADD COLUMN computed_seq bigint NOT NULL DEFAULT 0;
