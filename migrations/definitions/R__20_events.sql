-- Events and encounters: the dates the feature windows count (R__30_features.sql). The person
-- document (R__40_person_document.sql) filters each table by the same date column.
-- CREATE OR REPLACE VIEW keeps each view's columns (it may only append new ones): renaming or
-- retyping a column needs DROP VIEW IF EXISTS first (encounter before event_date).

-- Every dated clinical event of a person. rx counts by rx_date (the date the prescription was
-- documented); start and end dates are not encounters. Placeholder dates are NULL in the clean
-- tables, so they never count.
CREATE OR REPLACE VIEW event_date AS
    SELECT person_id, report_date AS event_date, 'conditions'::text AS source_table
    FROM conditions WHERE report_date IS NOT NULL
    UNION ALL
    SELECT person_id, feature_date, 'labs' FROM labs WHERE feature_date IS NOT NULL
    UNION ALL
    SELECT person_id, report_date, 'lifestyle' FROM lifestyle WHERE report_date IS NOT NULL
    UNION ALL
    SELECT person_id, report_date, 'tests' FROM tests WHERE report_date IS NOT NULL
    UNION ALL
    SELECT person_id, rx_date, 'rx' FROM rx WHERE rx_date IS NOT NULL;

-- An encounter is a distinct (person, event date) across all five tables.
CREATE OR REPLACE VIEW encounter AS
    SELECT DISTINCT person_id, event_date AS encounter_date FROM event_date;
