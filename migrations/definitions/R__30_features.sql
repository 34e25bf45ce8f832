-- Per-person features for ML: every definition, as it runs now, in this one file;
-- docs/features.md explains them. Changing a feature is a diff here, with a new
-- feature_definitions_version() (stored with every computed row). Adding or removing a feature
-- also needs its person_features column (a versioned migration) and its entry in
-- medrec_core::features::FEATURES; tests check the three agree.

-- The version of the feature definitions below; stored with every computed row.
CREATE OR REPLACE FUNCTION feature_definitions_version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '2026-12-02.1';

-- Features of the given persons (NULL: everyone) from events on or before p_as_of (NULL: all
-- events). "No data" is NULL, never false or zero. Windows end at the person's index date: the
-- latest encounter (R__20_events.sql) on or before p_as_of.
--
-- A few persons cost a few persons' rows, not a scan of every table. The planner cannot narrow
-- the encounter view (DISTINCT over a UNION ALL) through a join with the requested persons, and
-- a generic plan cannot drop `p_persons IS NULL OR ...`, so that form read everything: measured
-- at 1M persons, 10,000 persons took 34 s (all 1M: 73 s); at 50k persons one person's as-of
-- request took 0.3 s. So when persons are given, each table is also restricted by
-- `person_id = ANY (persons)` (`__persons__` below), which the planner pushes into the view's
-- arms and answers from the person_id indexes; for everyone (NULL) the restriction is `true` and
-- the statement is the plain set-based one. The text is chosen before planning, so each case
-- gets the plan for its own shape.
--
-- Dropped first: CREATE OR REPLACE cannot change the columns returned, which adding a feature
-- does. Nothing in the database depends on it (plpgsql bodies record no dependencies).
DROP FUNCTION IF EXISTS person_features_as_of(bigint[], date);

CREATE FUNCTION person_features_as_of(p_persons bigint[], p_as_of date)
RETURNS TABLE (
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
    a1c_latest                   double precision,
    creatinine_latest            double precision,
    ldl_latest                   double precision,
    smoking_status               text,
    active_medications_12m       integer,
    condition_categories         integer,
    abnormal_lab_share_12m       double precision
)
LANGUAGE plpgsql STABLE
-- Measured at 50k persons on 2 cores: the parallel plan for everyone took 3 minutes (workers
-- re-running the shared CTEs), the serial one 0.9 s.
SET max_parallel_workers_per_gather = 0
AS $fn$
BEGIN
    RETURN QUERY EXECUTE replace($q$
WITH p AS (
    SELECT person_id FROM person
    WHERE __persons__
),
enc AS (
    SELECT e.person_id, e.encounter_date
    FROM encounter e
    WHERE __persons__
      AND ($2 IS NULL OR e.encounter_date <= $2)
),
idx AS (
    SELECT person_id, max(encounter_date) AS index_date FROM enc GROUP BY person_id
),
encounters AS (
    -- Both ends inclusive; "6 calendar months" as PostgreSQL's interval arithmetic
    -- (2034-08-31 minus 6 months is 2034-02-28).
    SELECT i.person_id, count(*)::integer AS encounters_6m
    FROM idx i JOIN enc e USING (person_id)
    WHERE e.encounter_date >= (i.index_date - interval '6 months')::date
    GROUP BY i.person_id
),
rx_p AS (
    -- Rows of unknown date count only when no as-of date is asked for.
    SELECT r.*
    FROM rx r JOIN p USING (person_id)
    WHERE __persons__
      AND ($2 IS NULL OR coalesce(r.rx_date, r.start_date) <= $2)
),
alpha AS (
    -- drug_class comes from the ingredient (RxNorm/DIN/name lookup), falling back to the
    -- rx_type label only for unknown drugs: HYTRIN counts, PROSCAR and alpha-lipoic acid do not.
    SELECT person_id, coalesce(bool_or(drug_class = 'alpha_1_blocker'), false) AS taking_alpha_blockers
    FROM rx_p GROUP BY person_id
),
meds AS (
    SELECT r.person_id, count(DISTINCT coalesce(r.ingredient, r.rx_name_norm))::integer AS active_medications_12m
    FROM rx_p r JOIN idx i USING (person_id)
    WHERE r.rx_date BETWEEN (i.index_date - interval '12 months')::date AND i.index_date
    GROUP BY r.person_id
),
labs_p AS (
    SELECT l.*
    FROM labs l JOIN p USING (person_id)
    WHERE __persons__
      AND l.feature_date IS NOT NULL AND ($2 IS NULL OR l.feature_date <= $2)
),
latest_lab AS (
    -- Latest exact numeric result per analyte; same-day ties go to the later source line. A
    -- censored result (`<30`, `>14`: value_operator set) is a bound, not a value: it is skipped,
    -- and the latest exact one counts.
    SELECT DISTINCT ON (person_id, analyte) person_id, analyte, value_num, feature_date
    FROM labs_p
    WHERE analyte IN ('hemoglobin', 'a1c', 'creatinine', 'ldl') AND value_num IS NOT NULL
      AND value_operator IS NULL
    ORDER BY person_id, analyte, feature_date DESC, run_id DESC, source_line DESC
),
lab_share AS (
    SELECT l.person_id, avg((l.flag_calc <> 'normal')::int)::double precision AS abnormal_lab_share_12m
    FROM labs_p l JOIN idx i USING (person_id)
    WHERE l.flag_calc IS NOT NULL
      AND l.feature_date BETWEEN (i.index_date - interval '12 months')::date AND i.index_date
    GROUP BY l.person_id
),
tests_p AS (
    SELECT t.*
    FROM tests t JOIN p USING (person_id)
    WHERE __persons__
      AND t.report_date IS NOT NULL AND ($2 IS NULL OR t.report_date <= $2)
),
bp AS (
    SELECT DISTINCT ON (person_id) person_id, systolic, diastolic, report_date
    FROM tests_p WHERE systolic IS NOT NULL AND diastolic IS NOT NULL
    ORDER BY person_id, report_date DESC, run_id DESC, source_line DESC
),
body AS (
    -- Weight in pounds and height in inches (the only units in the feed; plausibility ranges
    -- keep a stray unit out); BMI = 703 * lb / in^2.
    SELECT DISTINCT ON (person_id, kind) person_id, kind, value_num
    FROM (
        SELECT person_id, report_date, run_id, source_line, value_num,
               CASE lower(feature) WHEN 'weight' THEN 'weight' WHEN 'height' THEN 'height' WHEN 'bmi' THEN 'bmi' END AS kind
        FROM tests_p
        WHERE value_num IS NOT NULL AND value_operator IS NULL
    ) b
    WHERE (kind = 'weight' AND value_num BETWEEN 50 AND 700)
       OR (kind = 'height' AND value_num BETWEEN 48 AND 90)
       OR (kind = 'bmi' AND value_num BETWEEN 10 AND 80)
    ORDER BY person_id, kind, report_date DESC, run_id DESC, source_line DESC
),
bmi AS (
    SELECT person_id,
           coalesce(
               round((703 * max(value_num) FILTER (WHERE kind = 'weight')
                      / nullif(max(value_num) FILTER (WHERE kind = 'height') ^ 2, 0))::numeric, 2)::double precision,
               max(value_num) FILTER (WHERE kind = 'bmi')) AS bmi_latest
    FROM body GROUP BY person_id
),
smoking AS (
    -- Controlled vocabulary never / former / current / unknown from the latest smoking row.
    -- The value outranks the impairment label (3597: "Smoker" with "d/c smoking > 20 years").
    SELECT DISTINCT ON (s.person_id) s.person_id,
        CASE
            WHEN v ~ '(d/c|discontinued|quit|former|ex-smoker|stopped)' THEN 'former'
            WHEN v ~ '(never|non-smoker|nonsmoker|non smoker|denies)' THEN 'never'
            WHEN v ~ '(current|smokes|pack|cigar|daily|yes)' THEN 'current'
            WHEN i ~ '(former)' THEN 'former'
            WHEN i ~ '(never|non-smoker)' THEN 'never'
            WHEN i ~ '^smoker$' THEN 'current'
            ELSE 'unknown'
        END AS smoking_status
    FROM (
        SELECT l.person_id, l.report_date, l.run_id, l.source_line,
               lower(coalesce(l.value, '')) AS v, lower(coalesce(l.impairment, '')) AS i
        FROM lifestyle l JOIN p USING (person_id)
        WHERE __persons__
          AND lower(l.feature) = 'smoking'
          AND ($2 IS NULL OR l.report_date <= $2)
    ) s
    ORDER BY s.person_id, s.report_date DESC NULLS LAST, s.run_id DESC, s.source_line DESC
),
conditions_p AS (
    -- No valid code among the person's conditions is no data (NULL), not zero categories.
    SELECT c.person_id, nullif(count(DISTINCT left(c.icd_code, 3)), 0)::integer AS condition_categories
    FROM conditions c JOIN p USING (person_id)
    WHERE __persons__
      AND ($2 IS NULL OR c.report_date <= $2)
    GROUP BY c.person_id
)
SELECT
    p.person_id,
    idx.index_date,
    alpha.taking_alpha_blockers,
    hgb.value_num, hgb.feature_date,
    encounters.encounters_6m,
    bp.systolic, bp.diastolic, bp.report_date,
    bmi.bmi_latest,
    a1c.value_num,
    creatinine.value_num,
    ldl.value_num,
    smoking.smoking_status,
    -- A person with rx rows but none in the 12-month window takes no active medication.
    CASE WHEN alpha.person_id IS NOT NULL AND idx.index_date IS NOT NULL
         THEN coalesce(meds.active_medications_12m, 0) END,
    conditions_p.condition_categories,
    lab_share.abnormal_lab_share_12m
FROM p
LEFT JOIN idx ON idx.person_id = p.person_id
LEFT JOIN encounters ON encounters.person_id = p.person_id
LEFT JOIN alpha ON alpha.person_id = p.person_id
LEFT JOIN meds ON meds.person_id = p.person_id
LEFT JOIN latest_lab hgb ON hgb.person_id = p.person_id AND hgb.analyte = 'hemoglobin'
LEFT JOIN latest_lab a1c ON a1c.person_id = p.person_id AND a1c.analyte = 'a1c'
LEFT JOIN latest_lab creatinine ON creatinine.person_id = p.person_id AND creatinine.analyte = 'creatinine'
LEFT JOIN latest_lab ldl ON ldl.person_id = p.person_id AND ldl.analyte = 'ldl'
LEFT JOIN lab_share ON lab_share.person_id = p.person_id
LEFT JOIN bp ON bp.person_id = p.person_id
LEFT JOIN bmi ON bmi.person_id = p.person_id
LEFT JOIN smoking ON smoking.person_id = p.person_id
LEFT JOIN conditions_p ON conditions_p.person_id = p.person_id
    $q$, '__persons__',
        CASE WHEN p_persons IS NULL THEN 'true' ELSE 'person_id = ANY ($1)' END)
    USING p_persons, p_as_of;
END
$fn$;

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
