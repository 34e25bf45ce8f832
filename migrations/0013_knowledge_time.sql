-- Knowledge time (docs/features.md, "Training sets"): a vendor file that replaces a person's
-- rows moves them here instead of deleting them, so any past state can be reproduced ("as if
-- later files had never arrived": `medrec features training-set --known-at`). Current reads (the
-- API, the stored features, the person document) read the clean tables only, as before.
--
-- Each row is the superseded clean row whole (its table's row type: a column added to the clean
-- table later is part of it, NULL in older rows), when it stopped being current, and the vendor
-- version of the person's record that replaced it. A row was known at T when its run finished
-- at or before T and, here, it was superseded after T. A vendor file stamps its runs' start and
-- finish and the rows it supersedes with one instant, so no T sees both or neither.
CREATE TABLE lifestyle_superseded (
    clean_row             lifestyle NOT NULL,
    superseded_at         timestamptz NOT NULL,
    superseded_by_version bigint NOT NULL
);
CREATE TABLE rx_superseded (
    clean_row             rx NOT NULL,
    superseded_at         timestamptz NOT NULL,
    superseded_by_version bigint NOT NULL
);
CREATE TABLE conditions_superseded (
    clean_row             conditions NOT NULL,
    superseded_at         timestamptz NOT NULL,
    superseded_by_version bigint NOT NULL
);
CREATE TABLE labs_superseded (
    clean_row             labs NOT NULL,
    superseded_at         timestamptz NOT NULL,
    superseded_by_version bigint NOT NULL
);
CREATE TABLE tests_superseded (
    clean_row             tests NOT NULL,
    superseded_at         timestamptz NOT NULL,
    superseded_by_version bigint NOT NULL
);
CREATE INDEX lifestyle_superseded_person ON lifestyle_superseded (((clean_row).person_id));
CREATE INDEX rx_superseded_person ON rx_superseded (((clean_row).person_id));
CREATE INDEX conditions_superseded_person ON conditions_superseded (((clean_row).person_id));
CREATE INDEX labs_superseded_person ON labs_superseded (((clean_row).person_id));
CREATE INDEX tests_superseded_person ON tests_superseded (((clean_row).person_id));

-- "Runs finished at or before T", the first step of every knowledge-time read.
CREATE INDEX ingest_run_finished ON ingest_run (finished_at) WHERE status = 'loaded';

-- The date of the latest BMI (measured or recorded), beside bmi_latest.
ALTER TABLE person_features ADD COLUMN bmi_latest_date date;
