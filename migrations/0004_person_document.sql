-- The API's view of one person: every clean row, grouped by table, as typed JSON.
-- Each item is the row's columns (dates as ISO strings, numbers as numbers, raw_values and extras
-- as objects) without person_id, plus `row_id` (hex of row_hash, stable across reloads) and its
-- lineage (`run_id`, `source_line`). The event date filtered by p_since/p_until is the one the
-- `event_date` view uses: report_date, feature_date for labs, rx_date for rx; rows without it are
-- left out when a date filter is given.
-- NULL when the person is unknown. p_types NULL: every table; else only those tables' keys.

CREATE FUNCTION person_document(p_person bigint, p_since date, p_until date, p_types text[])
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    data jsonb;
BEGIN
    -- plpgsql, not sql: its statements' plans are cached per connection.
    PERFORM 1 FROM person WHERE person_id = p_person;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT jsonb_build_object(
        'lifestyle', CASE WHEN p_types IS NULL OR 'lifestyle' = ANY (p_types) THEN
            (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'person_id' - 'row_hash'
                                       || jsonb_build_object('row_id', encode(t.row_hash, 'hex'))
                                       ORDER BY t.report_date, t.row_hash), '[]')
             FROM lifestyle t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END,
        'rx', CASE WHEN p_types IS NULL OR 'rx' = ANY (p_types) THEN
            (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'person_id' - 'row_hash'
                                       || jsonb_build_object('row_id', encode(t.row_hash, 'hex'))
                                       ORDER BY t.rx_date, t.row_hash), '[]')
             FROM rx t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.rx_date >= p_since)
               AND (p_until IS NULL OR t.rx_date <= p_until)) END,
        'conditions', CASE WHEN p_types IS NULL OR 'conditions' = ANY (p_types) THEN
            (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'person_id' - 'row_hash'
                                       || jsonb_build_object('row_id', encode(t.row_hash, 'hex'))
                                       ORDER BY t.report_date, t.id), '[]')
             FROM conditions t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END,
        'labs', CASE WHEN p_types IS NULL OR 'labs' = ANY (p_types) THEN
            (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'person_id' - 'row_hash'
                                       || jsonb_build_object('row_id', encode(t.row_hash, 'hex'))
                                       ORDER BY t.feature_date, t.row_hash), '[]')
             FROM labs t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.feature_date >= p_since)
               AND (p_until IS NULL OR t.feature_date <= p_until)) END,
        'tests', CASE WHEN p_types IS NULL OR 'tests' = ANY (p_types) THEN
            (SELECT coalesce(jsonb_agg(to_jsonb(t) - 'person_id' - 'row_hash'
                                       || jsonb_build_object('row_id', encode(t.row_hash, 'hex'))
                                       ORDER BY t.report_date, t.row_hash), '[]')
             FROM tests t
             WHERE t.person_id = p_person
               AND (p_since IS NULL OR t.report_date >= p_since)
               AND (p_until IS NULL OR t.report_date <= p_until)) END)
    INTO data;
    -- Tables left out by p_types are JSON nulls here; drop those keys (only at this level).
    RETURN jsonb_build_object('person_id', p_person, 'data',
        (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(data)
         WHERE value <> 'null'));
END
$$;
