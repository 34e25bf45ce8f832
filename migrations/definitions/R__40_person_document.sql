-- The API's view of one person: every clean row, by table, in event order. `person_rows` selects
-- the rows (the one definition of which rows and in what order); the API (medrec_store::person)
-- reads its typed arrays and writes the JSON itself, and `person_document` is the same rows as
-- one json value for psql (the API's bytes are tested equal to it, after medrec_store::person's
-- reshaping: person_id dropped, row_hash shown as the hex `row_id`, tables left out dropped).
-- The event date filtered by p_since/p_until is the one the `event_date` view uses: report_date,
-- feature_date for labs, rx_date for rx; rows without it are left out when a date filter is given.
-- Unknown person: `known` false and every array NULL (person_document: NULL). p_types NULL: every
-- table; a table p_types leaves out is NULL, a requested table without rows an empty array.
-- CREATE OR REPLACE keeps the signature and return type; changing either needs DROP FUNCTION
-- IF EXISTS first.

CREATE OR REPLACE FUNCTION person_rows(
    p_person bigint, p_since date, p_until date, p_types text[],
    OUT known boolean,
    OUT conditions conditions[], OUT labs labs[], OUT lifestyle lifestyle[], OUT rx rx[],
    OUT tests tests[])
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- plpgsql, not sql: its statements' plans are cached per connection.
    PERFORM 1 FROM person WHERE person_id = p_person;
    known := FOUND;
    IF NOT known THEN
        RETURN;
    END IF;
    IF p_types IS NULL OR 'conditions' = ANY (p_types) THEN
        conditions := coalesce(
            (SELECT array_agg(t ORDER BY t.report_date, t.id)
             FROM conditions t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)), '{}');
    END IF;
    IF p_types IS NULL OR 'labs' = ANY (p_types) THEN
        labs := coalesce(
            (SELECT array_agg(t ORDER BY t.feature_date, t.row_hash)
             FROM labs t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.feature_date >= p_since)
               AND (p_until IS NULL OR t.feature_date <= p_until)), '{}');
    END IF;
    IF p_types IS NULL OR 'lifestyle' = ANY (p_types) THEN
        lifestyle := coalesce(
            (SELECT array_agg(t ORDER BY t.report_date, t.row_hash)
             FROM lifestyle t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)), '{}');
    END IF;
    IF p_types IS NULL OR 'rx' = ANY (p_types) THEN
        rx := coalesce(
            (SELECT array_agg(t ORDER BY t.rx_date, t.row_hash)
             FROM rx t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.rx_date >= p_since)
               AND (p_until IS NULL OR t.rx_date <= p_until)), '{}');
    END IF;
    IF p_types IS NULL OR 'tests' = ANY (p_types) THEN
        tests := coalesce(
            (SELECT array_agg(t ORDER BY t.report_date, t.row_hash)
             FROM tests t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)), '{}');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION person_document(p_person bigint, p_since date, p_until date, p_types text[])
RETURNS json
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN r.known THEN json_build_object(
        'lifestyle', array_to_json(r.lifestyle),
        'rx', array_to_json(r.rx),
        'conditions', array_to_json(r.conditions),
        'labs', array_to_json(r.labs),
        'tests', array_to_json(r.tests)) END
    FROM person_rows(p_person, p_since, p_until, p_types) r
$$;
