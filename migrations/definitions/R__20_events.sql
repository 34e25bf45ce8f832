-- Events and encounters: the dates the feature windows count (R__30_features.sql), now and as
-- known at an instant. The person document (R__40_person_document.sql) filters each table by the
-- same date column.
-- CREATE OR REPLACE VIEW keeps each view's columns (it may only append new ones): renaming or
-- retyping a column needs DROP VIEW IF EXISTS first (encounter before event_date).

-- <table>_known_at(t): the table's rows as they were known at t (migrations/0013): rows of runs
-- finished at or before t that are still current, or that a vendor file superseded after t.
-- SQL functions of one SELECT: the planner inlines them, so a person filter reaches the indexes.
DO $known$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lifestyle', 'rx', 'conditions', 'labs', 'tests'] LOOP
        EXECUTE format($f$
CREATE OR REPLACE FUNCTION %1$I(p_known_at timestamptz) RETURNS SETOF %2$I
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
    SELECT c.* FROM %2$I c
    WHERE c.run_id IN (SELECT run_id FROM ingest_run
                       WHERE status = 'loaded' AND finished_at <= p_known_at)
    UNION ALL
    SELECT (h.clean_row).* FROM %3$I h
    WHERE h.superseded_at > p_known_at
      AND (h.clean_row).run_id IN (SELECT run_id FROM ingest_run
                                   WHERE status = 'loaded' AND finished_at <= p_known_at)
$body$$f$, t || '_known_at', t, t || '_superseded');
    END LOOP;
END
$known$;

-- Every dated clinical event of a person. rx counts by rx_date (the date the prescription was
-- documented); start and end dates are not encounters. Placeholder dates are NULL in the clean
-- tables, so they never count. One list of (table, date column) makes both the current view and
-- the known-at function, so the two cannot disagree on what an event is.
DO $events$
DECLARE
    arms text := '';
    known_arms text := '';
    source text[];
BEGIN
    FOREACH source SLICE 1 IN ARRAY ARRAY[
        ['conditions', 'report_date'], ['labs', 'feature_date'], ['lifestyle', 'report_date'],
        ['tests', 'report_date'], ['rx', 'rx_date']]
    LOOP
        arms := arms || CASE WHEN arms = '' THEN '' ELSE ' UNION ALL ' END
            || format('SELECT person_id, %2$I AS event_date, %1$L::text AS source_table FROM %1$I WHERE %2$I IS NOT NULL',
                      source[1], source[2]);
        known_arms := known_arms || CASE WHEN known_arms = '' THEN '' ELSE ' UNION ALL ' END
            || format('SELECT person_id, %2$I AS event_date, %1$L::text AS source_table FROM %3$I(p_known_at) WHERE %2$I IS NOT NULL',
                      source[1], source[2], source[1] || '_known_at');
    END LOOP;
    EXECUTE 'CREATE OR REPLACE VIEW event_date AS ' || arms;
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION event_date_known_at(p_known_at timestamptz)
RETURNS TABLE (person_id bigint, event_date date, source_table text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$ %s $body$$f$, known_arms);
END
$events$;

-- An encounter is a distinct (person, event date) across all five tables.
CREATE OR REPLACE VIEW encounter AS
    SELECT DISTINCT person_id, event_date AS encounter_date FROM event_date;

CREATE OR REPLACE FUNCTION encounter_known_at(p_known_at timestamptz)
RETURNS TABLE (person_id bigint, encounter_date date)
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
    SELECT DISTINCT person_id, event_date FROM event_date_known_at(p_known_at)
$body$;
