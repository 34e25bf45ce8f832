-- Per-person features for ML: every definition, as it runs now, in this one file;
-- docs/features.md explains them. Changing a feature is a diff here, with a new
-- feature_definitions_version() (stored with every computed row). Adding or removing a feature
-- also needs its person_features column (a versioned migration) and its entry in
-- medrec_core::features::FEATURES; tests check the three agree.

-- The version of the feature definitions below; stored with every computed row.
CREATE OR REPLACE FUNCTION feature_definitions_version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '2026-12-02.2';

-- Features at cutoffs, the one definition of every feature. Each input row (a "spine row") is a
-- person and a cutoff: only events on or before the cutoff count (NULL: all events, and rx rows
-- of unknown date too), and windows end at the row's index date, the latest encounter
-- (R__20_events.sql) on or before it. "No data" is NULL, never false or zero; a row with a
-- cutoff and no dated event on or before it has every feature NULL.
--
-- The rows are p_spine's (a table of spine_row, person_id, cutoff: a training set's examples,
-- many per person if need be), or, when p_spine is NULL, one per person of p_persons (NULL:
-- everyone), numbered by person_id, all at p_as_of. p_known_at (NULL: now) reads the tables as
-- they were known at that instant (<table>_known_at, R__20_events.sql) instead of as they are.
--
-- A few persons cost a few persons' rows, not a scan of every table. The planner cannot narrow
-- the encounter view (DISTINCT over a UNION ALL) through a join with the requested persons, and
-- a generic plan cannot drop `p_persons IS NULL OR ...`, so that form read everything: measured
-- at 1M persons, 10,000 persons took 34 s (all 1M: 73 s); at 50k persons one person's as-of
-- request took 0.3 s. So when persons are given, each table is also restricted by
-- `person_id = ANY (persons)` (`__persons__` below), which the planner pushes into the view's
-- arms and answers from the person_id indexes (or, for every person of a run of ids, by that
-- range); for everyone (NULL) the restriction is `true` and the statement is the plain
-- set-based one. The text is chosen before planning, so each case
-- gets the plan for its own shape; so are the sources (`__labs__`: the table, or its known-at
-- function).
--
-- Dropped first: CREATE OR REPLACE cannot change the columns returned, which adding a feature
-- does. Nothing in the database depends on it (plpgsql bodies record no dependencies).
DROP FUNCTION IF EXISTS person_features_as_of(bigint[], date);
DROP FUNCTION IF EXISTS person_features_at(regclass, bigint[], date, timestamptz, boolean);

-- One clean row as an explanation names it: its table, source (file or S3 key), line and run.
CREATE OR REPLACE FUNCTION feature_lineage(p_table text, p_run_id bigint, p_source_line bigint)
RETURNS jsonb
LANGUAGE sql STABLE
AS $body$
    SELECT jsonb_build_object('table', p_table,
                              'source', (SELECT source FROM ingest_run WHERE run_id = p_run_id),
                              'source_line', p_source_line, 'run_id', p_run_id)
$body$;

-- p_explain adds `explanation`: for each feature, the clean rows that decided it (a latest value's
-- row, the alpha-blocker rx rows, the dates counted, ...), computed by the same CTEs as the values
-- (`/*explain*/ ... /*end*/` below is NULL when not asked, so a refresh pays nothing for it).
CREATE FUNCTION person_features_at(
    p_spine regclass, p_persons bigint[], p_as_of date, p_known_at timestamptz,
    p_explain boolean)
RETURNS TABLE (
    spine_row                    bigint,
    person_id                    bigint,
    index_date                   date,
    taking_alpha_blockers        boolean,
    hgb_latest                   double precision,
    hgb_latest_date              date,
    encounters_6m                integer,
    bp_systolic_latest           integer,
    bp_diastolic_latest          integer,
    bp_latest_date               date,
    bmi_latest                   double precision,
    bmi_latest_date              date,
    a1c_latest                   double precision,
    creatinine_latest            double precision,
    ldl_latest                   double precision,
    smoking_status               text,
    active_medications_12m       integer,
    condition_categories         integer,
    abnormal_lab_share_12m       double precision,
    explanation                  jsonb
)
LANGUAGE plpgsql STABLE
-- Measured at 50k persons on 2 cores: the parallel plan for everyone took 3 minutes (workers
-- re-running the shared CTEs), the serial one 0.9 s.
SET max_parallel_workers_per_gather = 0
-- The planner's row estimates for these joins are far too high, so JIT compiled every run: at
-- 50k generated persons it spent 4-6 s of 10-13 s compiling; without it everyone took 7.5 s.
SET jit = off
-- Aggregates by sorting, not hashing: grouping millions of event rows by spine row outgrows
-- work_mem, and PostgreSQL's spilling hash aggregates cost far more than its external sorts.
-- Measured at 1M persons on 2 cores, as this change went in: half of everyone 34.8 s -> 24.1 s,
-- a 200k-row spine 31.8 s -> 25.7 s, 10,000 persons unchanged (1.07-1.10 s).
SET enable_hashagg = off
-- Restored when the function returns; turned off below for a few persons of many.
SET enable_seqscan = on
AS $fn$
DECLARE
    query  text := $q$
WITH s AS MATERIALIZED (
    __spine__
),
enc AS (
    SELECT s.spine_row, e.encounter_date
    FROM __encounter__ e __join_spine__(e)
    WHERE __persons__
      AND (s.cutoff IS NULL OR e.encounter_date <= s.cutoff)
),
-- Each row's index date (its latest encounter) and its encounters in the 6 months up to it, in one
-- pass over its encounters (a window gives the index date, then one group per row).
enc_indexed AS (
    SELECT spine_row, encounter_date, max(encounter_date) OVER (PARTITION BY spine_row) AS index_date
    FROM enc
),
idx AS (
    -- Both ends inclusive; "6 calendar months" as PostgreSQL's interval arithmetic
    -- (2034-08-31 minus 6 months is 2034-02-28).
    SELECT spine_row, max(index_date) AS index_date,
           count(*) FILTER (WHERE encounter_date >= (index_date - interval '6 months')::date)::integer
               AS encounters_6m,
           /*explain*/ jsonb_agg(encounter_date ORDER BY encounter_date)
               FILTER (WHERE encounter_date >= (index_date - interval '6 months')::date) /*end*/ AS encounter_dates
    FROM enc_indexed GROUP BY spine_row
),
-- The rows that get features: without a cutoff every one, with one those with an event on or
-- before it.
kept AS (
    SELECT s.spine_row FROM s LEFT JOIN idx USING (spine_row)
    WHERE s.cutoff IS NULL OR idx.index_date IS NOT NULL
),
-- The per-table CTEs below (rx_p, labs_p, tests_p) are read twice, so PostgreSQL materializes
-- them with every column they select: they select only what their readers use (with `r.*` they
-- wrote 1.3 GB of temporary files at 1M persons).
rx_p AS (
    -- Rows of unknown date count only without a cutoff.
    SELECT s.spine_row, r.drug_class, r.ingredient, r.rx_name_norm, r.rx_date, r.run_id, r.source_line
    FROM __rx__ r __join_spine__(r)
    WHERE __persons__
      AND (s.cutoff IS NULL OR coalesce(r.rx_date, r.start_date) <= s.cutoff)
),
alpha AS (
    -- drug_class comes from the ingredient (RxNorm/DIN/name lookup), falling back to the
    -- rx_type label only for unknown drugs: HYTRIN counts, PROSCAR and alpha-lipoic acid do not.
    SELECT spine_row, coalesce(bool_or(drug_class = 'alpha_1_blocker'), false) AS taking_alpha_blockers,
           /*explain*/ coalesce(jsonb_agg(feature_lineage('rx', run_id, source_line) ORDER BY run_id, source_line)
                                FILTER (WHERE drug_class = 'alpha_1_blocker'), '[]') /*end*/ AS why
    FROM rx_p GROUP BY spine_row
),
meds AS (
    SELECT r.spine_row, count(DISTINCT coalesce(r.ingredient, r.rx_name_norm))::integer AS active_medications_12m,
           /*explain*/ jsonb_agg(feature_lineage('rx', r.run_id, r.source_line) ORDER BY r.run_id, r.source_line) /*end*/ AS why
    FROM rx_p r JOIN idx i USING (spine_row)
    WHERE r.rx_date BETWEEN (i.index_date - interval '12 months')::date AND i.index_date
    GROUP BY r.spine_row
),
labs_p AS (
    SELECT s.spine_row, l.analyte, l.value_num, l.value_operator, l.feature_date, l.flag_calc,
           l.run_id, l.source_line
    FROM __labs__ l __join_spine__(l)
    WHERE __persons__
      AND l.feature_date IS NOT NULL AND (s.cutoff IS NULL OR l.feature_date <= s.cutoff)
),
latest_lab AS (
    -- Latest exact numeric result per analyte; same-day ties go to the later source line. A
    -- censored result (`<30`, `>14`: value_operator set) is a bound, not a value: it is skipped,
    -- and the latest exact one counts.
    SELECT DISTINCT ON (spine_row, analyte) spine_row, analyte, value_num, feature_date,
           /*explain*/ jsonb_build_array(feature_lineage('labs', run_id, source_line)) /*end*/ AS why
    FROM labs_p
    WHERE analyte IN ('hemoglobin', 'a1c', 'creatinine', 'ldl') AND value_num IS NOT NULL
      AND value_operator IS NULL
    ORDER BY spine_row, analyte, feature_date DESC, run_id DESC, source_line DESC
),
lab_share AS (
    SELECT l.spine_row, avg((l.flag_calc <> 'normal')::int)::double precision AS abnormal_lab_share_12m,
           /*explain*/ jsonb_agg(feature_lineage('labs', l.run_id, l.source_line) ORDER BY l.run_id, l.source_line) /*end*/ AS why
    FROM labs_p l JOIN idx i USING (spine_row)
    WHERE l.flag_calc IS NOT NULL
      AND l.feature_date BETWEEN (i.index_date - interval '12 months')::date AND i.index_date
    GROUP BY l.spine_row
),
tests_p AS (
    SELECT s.spine_row, t.systolic, t.diastolic, t.report_date, t.feature, t.value_num,
           t.value_operator, t.value_unit, t.run_id, t.source_line
    FROM __tests__ t __join_spine__(t)
    WHERE __persons__
      AND t.report_date IS NOT NULL AND (s.cutoff IS NULL OR t.report_date <= s.cutoff)
),
bp AS (
    SELECT DISTINCT ON (spine_row) spine_row, systolic, diastolic, report_date,
           /*explain*/ jsonb_build_array(feature_lineage('tests', run_id, source_line)) /*end*/ AS why
    FROM tests_p WHERE systolic IS NOT NULL AND diastolic IS NOT NULL
    ORDER BY spine_row, report_date DESC, run_id DESC, source_line DESC
),
body AS (
    -- Weight in kg, height in m, a recorded BMI in kg/m2, from the unit the tests cleaner
    -- recorded (value_unit); a value without one is in the feed's implied unit (weight lb,
    -- height in, BMI kg/m2: DATA_NOTES.md), and an unknown unit is no value. The plausibility
    -- ranges (weight 50-700 lb, height 48-90 in, BMI 10-80) keep a stray unit out.
    SELECT * FROM (
        SELECT spine_row, report_date, run_id, source_line, kind,
            CASE
                WHEN kind = 'weight' AND unit = 'kg' THEN value_num
                WHEN kind = 'weight' AND unit IN ('lb', 'lbs') THEN value_num * 0.45359237
                WHEN kind = 'height' AND unit = 'm' THEN value_num
                WHEN kind = 'height' AND unit = 'cm' THEN value_num / 100
                WHEN kind = 'height' AND unit = 'in' THEN value_num * 0.0254
                WHEN kind = 'bmi' AND unit = 'kg/m2' THEN value_num
            END AS value_si
        FROM (
            SELECT spine_row, report_date, run_id, source_line, value_num, lower(feature) AS kind,
                   coalesce(lower(value_unit),
                            CASE lower(feature) WHEN 'weight' THEN 'lb' WHEN 'height' THEN 'in'
                                                WHEN 'bmi' THEN 'kg/m2' END) AS unit
            FROM tests_p
            WHERE lower(feature) IN ('weight', 'height', 'bmi')
              AND value_num IS NOT NULL AND value_operator IS NULL
        ) u
    ) b
    WHERE (kind = 'weight' AND value_si BETWEEN 50 * 0.45359237 AND 700 * 0.45359237)
       OR (kind = 'height' AND value_si BETWEEN 48 * 0.0254 AND 90 * 0.0254)
       OR (kind = 'bmi' AND value_si BETWEEN 10 AND 80)
),
weight AS (
    SELECT DISTINCT ON (spine_row) spine_row, value_si AS kg, report_date, run_id, source_line
    FROM body WHERE kind = 'weight'
    ORDER BY spine_row, report_date DESC, run_id DESC, source_line DESC
),
bmi_measured AS (
    -- The latest weight over the square of the height measured nearest to it in time, at most
    -- 3 years (1096 days) apart: an adult's height barely changes, and a far one is not paired.
    SELECT DISTINCT ON (w.spine_row) w.spine_row, w.report_date,
           round((w.kg / h.value_si ^ 2)::numeric, 2)::double precision AS bmi,
           /*explain*/ jsonb_build_array(feature_lineage('tests', w.run_id, w.source_line),
                                         feature_lineage('tests', h.run_id, h.source_line)) /*end*/ AS why
    FROM weight w JOIN body h ON h.spine_row = w.spine_row AND h.kind = 'height'
    WHERE abs(h.report_date - w.report_date) <= 1096
    ORDER BY w.spine_row, abs(h.report_date - w.report_date), h.report_date DESC,
             h.run_id DESC, h.source_line DESC
),
bmi_recorded AS (
    SELECT DISTINCT ON (spine_row) spine_row, value_si AS bmi, report_date,
           /*explain*/ jsonb_build_array(feature_lineage('tests', run_id, source_line)) /*end*/ AS why
    FROM body WHERE kind = 'bmi'
    ORDER BY spine_row, report_date DESC, run_id DESC, source_line DESC
),
bmi AS (
    -- A recorded BMI newer than the measured one wins; on the same day the measured one does.
    SELECT spine_row,
           CASE WHEN m.bmi IS NULL OR r.report_date > m.report_date THEN r.bmi ELSE m.bmi END
               AS bmi_latest,
           CASE WHEN m.bmi IS NULL OR r.report_date > m.report_date THEN r.report_date
                ELSE m.report_date END AS bmi_latest_date,
           CASE WHEN m.bmi IS NULL OR r.report_date > m.report_date THEN r.why ELSE m.why END AS why
    FROM bmi_measured m FULL JOIN bmi_recorded r USING (spine_row)
),
smoking AS (
    -- Controlled vocabulary never / former / current / unknown from the latest smoking row.
    -- The value outranks the impairment label (3597: "Smoker" with "d/c smoking > 20 years").
    SELECT DISTINCT ON (sm.spine_row) sm.spine_row,
        CASE
            WHEN v ~ '(d/c|discontinued|quit|former|ex-smoker|stopped)' THEN 'former'
            WHEN v ~ '(never|non-smoker|nonsmoker|non smoker|denies)' THEN 'never'
            WHEN v ~ '(current|smokes|pack|cigar|daily|yes)' THEN 'current'
            WHEN i ~ '(former)' THEN 'former'
            WHEN i ~ '(never|non-smoker)' THEN 'never'
            WHEN i ~ '^smoker$' THEN 'current'
            ELSE 'unknown'
        END AS smoking_status,
        /*explain*/ jsonb_build_array(feature_lineage('lifestyle', sm.run_id, sm.source_line)) /*end*/ AS why
    FROM (
        SELECT s.spine_row, l.report_date, l.run_id, l.source_line,
               lower(coalesce(l.value, '')) AS v, lower(coalesce(l.impairment, '')) AS i
        FROM __lifestyle__ l __join_spine__(l)
        WHERE __persons__
          AND lower(l.feature) = 'smoking'
          AND (s.cutoff IS NULL OR l.report_date <= s.cutoff)
    ) sm
    ORDER BY sm.spine_row, sm.report_date DESC NULLS LAST, sm.run_id DESC, sm.source_line DESC
),
conditions_p AS (
    -- No valid code among the person's conditions is no data (NULL), not zero categories.
    SELECT s.spine_row, nullif(count(DISTINCT left(c.icd_code, 3)), 0)::integer AS condition_categories,
           /*explain*/ jsonb_agg(feature_lineage('conditions', c.run_id, c.source_line) ORDER BY c.run_id, c.source_line)
                           FILTER (WHERE c.icd_code IS NOT NULL) /*end*/ AS why
    FROM __conditions__ c __join_spine__(c)
    WHERE __persons__
      AND (s.cutoff IS NULL OR c.report_date <= s.cutoff)
    GROUP BY s.spine_row
)
SELECT
    s.spine_row,
    s.person_id,
    idx.index_date,
    alpha.taking_alpha_blockers,
    hgb.value_num, hgb.feature_date,
    idx.encounters_6m,
    bp.systolic, bp.diastolic, bp.report_date,
    bmi.bmi_latest, bmi.bmi_latest_date,
    a1c.value_num,
    creatinine.value_num,
    ldl.value_num,
    smoking.smoking_status,
    -- A person with rx rows but none in the 12-month window takes no active medication.
    CASE WHEN alpha.spine_row IS NOT NULL AND idx.index_date IS NOT NULL
         THEN coalesce(meds.active_medications_12m, 0) END,
    conditions_p.condition_categories,
    lab_share.abnormal_lab_share_12m,
    -- Each feature's deciding rows (a feature with no value has none); windows also say where
    -- they end.
    /*explain*/ CASE WHEN k.spine_row IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
        'index_date', jsonb_build_object('index_date', idx.index_date),
        'taking_alpha_blockers', alpha.why,
        'hgb_latest', hgb.why, 'hgb_latest_date', hgb.why,
        'encounters_6m', jsonb_build_object('index_date', idx.index_date, 'dates', idx.encounter_dates),
        'bp_systolic_latest', bp.why, 'bp_diastolic_latest', bp.why, 'bp_latest_date', bp.why,
        'bmi_latest', bmi.why, 'bmi_latest_date', bmi.why,
        'a1c_latest', a1c.why, 'creatinine_latest', creatinine.why, 'ldl_latest', ldl.why,
        'smoking_status', smoking.why,
        'active_medications_12m', CASE WHEN alpha.spine_row IS NOT NULL AND idx.index_date IS NOT NULL
                                       THEN jsonb_build_object('index_date', idx.index_date,
                                                               'rows', coalesce(meds.why, '[]')) END,
        'condition_categories', conditions_p.why,
        'abnormal_lab_share_12m', CASE WHEN lab_share.spine_row IS NOT NULL
                                       THEN jsonb_build_object('index_date', idx.index_date,
                                                               'rows', lab_share.why) END))
    END /*end*/
FROM s
LEFT JOIN kept k ON k.spine_row = s.spine_row
LEFT JOIN idx ON idx.spine_row = k.spine_row
LEFT JOIN alpha ON alpha.spine_row = k.spine_row
LEFT JOIN meds ON meds.spine_row = k.spine_row
LEFT JOIN latest_lab hgb ON hgb.spine_row = k.spine_row AND hgb.analyte = 'hemoglobin'
LEFT JOIN latest_lab a1c ON a1c.spine_row = k.spine_row AND a1c.analyte = 'a1c'
LEFT JOIN latest_lab creatinine ON creatinine.spine_row = k.spine_row AND creatinine.analyte = 'creatinine'
LEFT JOIN latest_lab ldl ON ldl.spine_row = k.spine_row AND ldl.analyte = 'ldl'
LEFT JOIN lab_share ON lab_share.spine_row = k.spine_row
LEFT JOIN bp ON bp.spine_row = k.spine_row
LEFT JOIN bmi ON bmi.spine_row = k.spine_row
LEFT JOIN smoking ON smoking.spine_row = k.spine_row
LEFT JOIN conditions_p ON conditions_p.spine_row = k.spine_row
$q$;
    source text;
    few    boolean := p_persons IS NOT NULL AND cardinality(p_persons) <= greatest(1000,
                          (SELECT reltuples FROM pg_class WHERE oid = 'person'::regclass) / 20);
    persons_filter text := CASE WHEN p_persons IS NULL THEN 'true' ELSE 'person_id = ANY ($1)' END;
    low    bigint;
    high   bigint;
BEGIN
    -- Many persons that are every person of a run of ids (refresh_everyone's parts) are read as
    -- that range: the same rows, without probing the persons' hash with each of millions of
    -- rows (measured at 1M persons, half of everyone: 32.0 s by the list, 24.1 s as a range).
    IF p_persons IS NOT NULL AND NOT few THEN
        SELECT min(p), max(p) INTO low, high FROM unnest(p_persons) p;
        IF NOT EXISTS (SELECT FROM person r WHERE r.person_id BETWEEN low AND high
                       AND NOT coalesce(r.person_id = ANY (p_persons), false)) THEN
            persons_filter := format('person_id BETWEEN %s AND %s', low, high);
        END IF;
    END IF;
    query := replace(query, '__spine__', CASE
        WHEN p_spine IS NULL THEN
            'SELECT person_id AS spine_row, person_id, $2::date AS cutoff FROM person WHERE __persons__'
        ELSE format('SELECT spine_row, person_id, cutoff FROM %s', p_spine) END);
    -- Without a spine each row is its person's, at p_as_of: the tables' rows are not joined to s
    -- (the person foreign keys guarantee the person), which at 1M persons spared probing a
    -- 1M-row hash with each of the 33M event rows.
    query := regexp_replace(query, '__join_spine__\((\w+)\)', CASE
        WHEN p_spine IS NULL THEN 'CROSS JOIN LATERAL (SELECT \1.person_id AS spine_row, $2::date AS cutoff) s'
        ELSE 'JOIN s USING (person_id)' END, 'g');
    query := replace(query, '__persons__', persons_filter);
    IF NOT p_explain THEN
        query := regexp_replace(query, '/\*explain\*/.*?/\*end\*/', 'NULL::jsonb', 'g');
    END IF;
    FOREACH source IN ARRAY ARRAY['lifestyle', 'rx', 'conditions', 'labs', 'tests', 'encounter'] LOOP
        query := replace(query, '__' || source || '__', CASE WHEN p_known_at IS NULL THEN source
            ELSE format('%I($3)', source || '_known_at') END);
    END LOOP;
    -- A few persons of many: each table read by its person_id index, not scanned. The planner
    -- over-estimates the rows of `person_id = ANY (persons)` (237k for 54k at 10,000 of 1M
    -- persons) and scans every table twice (the encounter view, then the features' own reads):
    -- measured at 1M persons, 10,000 persons took 6.5-7.4 s so and 1.3-1.5 s by the indexes.
    -- Up to a twentieth of the persons; beyond, scanning is the cheaper plan.
    IF few THEN
        PERFORM set_config('enable_seqscan', 'off', true);
    END IF;
    RETURN QUERY EXECUTE query USING p_persons, p_as_of, p_known_at, p_explain;
END
$fn$;

-- Features of the given persons (NULL: everyone) from events on or before p_as_of (NULL: all
-- events), as they are now: person_features_at without a spine. Its columns are that
-- function's but spine_row, read from pg_proc, so the feature list is written once.
DO $as_of$
DECLARE
    columns  text;
    selected text;
BEGIN
    SELECT string_agg(format('%I %s', a.name, format_type(a.type, NULL)), ', ' ORDER BY a.n),
           string_agg(format('f.%I', a.name), ', ' ORDER BY a.n)
    INTO columns, selected
    FROM pg_proc p,
         unnest(p.proargnames, p.proallargtypes, p.proargmodes) WITH ORDINALITY AS a(name, type, mode, n)
    WHERE p.oid = 'person_features_at(regclass, bigint[], date, timestamptz, boolean)'::regprocedure
      AND a.mode = 't' AND a.name NOT IN ('spine_row', 'explanation');
    EXECUTE format($f$
CREATE FUNCTION person_features_as_of(p_persons bigint[], p_as_of date)
RETURNS TABLE (%s)
LANGUAGE sql STABLE
AS $body$ SELECT %s FROM person_features_at(NULL, p_persons, p_as_of, NULL, false) f $body$$f$,
        columns, selected);
END
$as_of$;

-- Recomputes the given persons (NULL: everyone) in one set-based statement; returns the number
-- of rows written. The columns are person_features' own, read from the table and matched to the
-- function's by name, so the feature list is not written again here and a column added later
-- (at the table's end) needs no edit.
--
-- One statement, so one snapshot (migrations/0010_features_owed.sql): `version` is each person's
-- latest change that this snapshot sees (their features_owed.seq, else the change their stored
-- row was computed from), the features are computed from the same snapshot, and
-- - the upsert replaces a stored row only with one computed from the same or a later change: a
--   refresh that started before a load cannot overwrite one that started after it;
-- - the owed rows are deleted only up to the change read: a load committed meanwhile stays owed.
-- Rows are written and locked in person order (person_features, then features_owed), as loads
-- lock features_owed, so overlapping refreshes wait for each other instead of deadlocking. The
-- deletes run after the upsert (an unreferenced data-modifying WITH runs after the main query),
-- so a load waits for a refresh's locks only for that short tail.
CREATE OR REPLACE FUNCTION refresh_person_features(p_persons bigint[]) RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
    columns   text;
    selected  text;
    updates   text;
    refreshed bigint;
BEGIN
    SELECT string_agg(format('%I', attname), ', ' ORDER BY attnum),
           string_agg(format('f.%I', attname), ', ' ORDER BY attnum),
           string_agg(format('%1$I = EXCLUDED.%1$I', attname), ', ' ORDER BY attnum)
               FILTER (WHERE attname <> 'person_id')
    INTO columns, selected, updates
    FROM pg_attribute
    WHERE attrelid = 'person_features'::regclass AND attnum > 0 AND NOT attisdropped
      AND attname NOT IN ('definitions_version', 'computed_at', 'computed_seq');
    EXECUTE format($q$
WITH requested AS (
    %s
),
version AS MATERIALIZED (
    SELECT r.person_id, coalesce(o.seq, pf.computed_seq, 0) AS seq
    FROM requested r
    LEFT JOIN features_owed o ON o.person_id = r.person_id
    LEFT JOIN person_features pf ON pf.person_id = r.person_id
),
upserted AS (
    INSERT INTO person_features AS pf (%s, definitions_version, computed_at, computed_seq)
    SELECT %s, feature_definitions_version(), now(), v.seq
    FROM person_features_as_of($1, NULL) f JOIN version v ON v.person_id = f.person_id
    ORDER BY f.person_id
    ON CONFLICT (person_id) DO UPDATE SET
        %s,
        definitions_version = EXCLUDED.definitions_version,
        computed_at = EXCLUDED.computed_at,
        computed_seq = EXCLUDED.computed_seq
    WHERE pf.computed_seq <= EXCLUDED.computed_seq
    RETURNING 1
),
settled AS (
    DELETE FROM features_owed o
    USING (
        SELECT owed.person_id FROM features_owed owed
        JOIN version v ON v.person_id = owed.person_id
        WHERE owed.seq <= v.seq
        ORDER BY owed.person_id
        FOR UPDATE OF owed
    ) s
    WHERE o.person_id = s.person_id
)
SELECT count(*) FROM upserted
    $q$,
        CASE WHEN p_persons IS NULL
             THEN 'SELECT person_id FROM person UNION SELECT person_id FROM features_owed'
             ELSE 'SELECT DISTINCT unnest($1) AS person_id' END,
        columns, selected, updates)
    INTO refreshed
    USING p_persons;
    RETURN refreshed;
END
$fn$;
