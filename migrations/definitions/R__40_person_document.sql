-- The API's view of one person: every clean row, grouped by table, as typed JSON: dates as ISO
-- strings, numbers as numbers, raw_values and extras as objects. The rows are whole (json_agg of
-- the row, several times cheaper than building jsonb per row); medrec_store::person shapes each
-- item (drops person_id, turns row_hash into the hex `row_id`, stable across reloads) and drops
-- the tables p_types leaves out (JSON nulls here). Lineage: `run_id`, `source_line`.
-- The event date filtered by p_since/p_until is the one the `event_date` view uses: report_date,
-- feature_date for labs, rx_date for rx; rows without it are left out when a date filter is given.
-- NULL when the person is unknown. p_types NULL: every table.
-- CREATE OR REPLACE keeps the signature and return type; changing either needs DROP FUNCTION
-- IF EXISTS first.

CREATE OR REPLACE FUNCTION person_document(p_person bigint, p_since date, p_until date, p_types text[])
RETURNS json
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- plpgsql, not sql: its statements' plans are cached per connection.
    PERFORM 1 FROM person WHERE person_id = p_person;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN json_build_object(
        'lifestyle', CASE WHEN p_types IS NULL OR 'lifestyle' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.report_date, t.row_hash), '[]'::json)
             FROM lifestyle t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END,
        'rx', CASE WHEN p_types IS NULL OR 'rx' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.rx_date, t.row_hash), '[]'::json)
             FROM rx t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.rx_date >= p_since)
               AND (p_until IS NULL OR t.rx_date <= p_until)) END,
        'conditions', CASE WHEN p_types IS NULL OR 'conditions' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.report_date, t.id), '[]'::json)
             FROM conditions t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END,
        'labs', CASE WHEN p_types IS NULL OR 'labs' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.feature_date, t.row_hash), '[]'::json)
             FROM labs t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.feature_date >= p_since)
               AND (p_until IS NULL OR t.feature_date <= p_until)) END,
        'tests', CASE WHEN p_types IS NULL OR 'tests' = ANY (p_types) THEN
            (SELECT coalesce(json_agg(t ORDER BY t.report_date, t.row_hash), '[]'::json)
             FROM tests t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END);
END
$$;
