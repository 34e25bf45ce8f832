-- Quality flags counted per run while loading, for the quality report (`medrec report`,
-- GET /report): each flag with the source column it was raised on, over the rows the cleaner kept
-- from the file (rows later found to be duplicates included: a defect of the file either way).
-- The report sums these few rows instead of scanning every clean row, so it renders in seconds
-- at a million persons, and can say which column of which source got worse.
ALTER TABLE ingest_run
    -- Rows the cleaner kept (loaded, duplicate, or later quarantined as a conflicting key).
    ADD COLUMN cleaned_rows bigint CHECK (cleaned_rows >= 0),
    -- Of those, rows with at least one flag.
    ADD COLUMN flagged_rows bigint CHECK (flagged_rows >= 0);

CREATE TABLE ingest_run_flag (
    run_id      bigint NOT NULL REFERENCES ingest_run ON DELETE CASCADE,
    -- The source column; NULL for runs loaded before this migration (their rows do not say).
    column_name text,
    flag        text NOT NULL REFERENCES quality_flag,
    rows        bigint NOT NULL CHECK (rows > 0)
);
CREATE UNIQUE INDEX ingest_run_flag_key ON ingest_run_flag (run_id, coalesce(column_name, ''), flag);

-- Runs loaded before: their flags as the rows still hold them, the column unknown; cleaned
-- rows are their loaded and duplicate rows (a row quarantined as a conflict was not counted).
CREATE TEMPORARY TABLE run_flag_backfill ON COMMIT DROP AS
SELECT run_id, flag, count(*) AS rows
FROM (
    SELECT run_id, unnest(flags) AS flag FROM lifestyle WHERE flags <> '{}'
    UNION ALL SELECT run_id, unnest(flags) FROM rx WHERE flags <> '{}'
    UNION ALL SELECT run_id, unnest(flags) FROM conditions WHERE flags <> '{}'
    UNION ALL SELECT run_id, unnest(flags) FROM labs WHERE flags <> '{}'
    UNION ALL SELECT run_id, unnest(flags) FROM tests WHERE flags <> '{}'
) flagged
GROUP BY run_id, flag;
-- A database older than the vocabulary's sync (migrate() adds every flag after the
-- migrations) may lack some of the flags its rows hold.
INSERT INTO quality_flag (flag) SELECT DISTINCT flag FROM run_flag_backfill ON CONFLICT DO NOTHING;
INSERT INTO ingest_run_flag (run_id, column_name, flag, rows)
SELECT run_id, NULL, flag, rows FROM run_flag_backfill;
UPDATE ingest_run
SET cleaned_rows = coalesce(loaded_rows, 0) + coalesce(duplicate_rows, 0), flagged_rows = 0
WHERE status = 'loaded';
UPDATE ingest_run i
SET flagged_rows = f.rows
FROM (
    SELECT run_id, count(*) AS rows FROM (
        SELECT run_id FROM lifestyle WHERE flags <> '{}'
        UNION ALL SELECT run_id FROM rx WHERE flags <> '{}'
        UNION ALL SELECT run_id FROM conditions WHERE flags <> '{}'
        UNION ALL SELECT run_id FROM labs WHERE flags <> '{}'
        UNION ALL SELECT run_id FROM tests WHERE flags <> '{}'
    ) r GROUP BY run_id
) f
WHERE f.run_id = i.run_id AND i.status = 'loaded';
