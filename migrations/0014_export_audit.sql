-- Bulk reads are audited too (docs/features.md, "Training sets"): a training set records one
-- row per distinct person of its spine ('training_set'), a full export one per person written
-- ('export'), under the reader's key id (the export function's, or `medrec-cli`). The
-- export function's database group, medrec_exporter, is created before any migration and
-- granted by the store's GRANTS (functions/store/src/roles.rs), as the other two are.
ALTER TABLE access_audit DROP CONSTRAINT access_audit_route_check;
ALTER TABLE access_audit ADD CONSTRAINT access_audit_route_check
    CHECK (route IN ('person', 'features', 'training_set', 'export'));
