-- A first load of a table COPYs its rows straight into the clean table (medrec_store::load's
-- bulk path) and inserts their persons afterwards, in the same transaction: each clean table's
-- reference to person may be checked at commit. Still checked at once everywhere else
-- (INITIALLY IMMEDIATE); only the bulk path defers it (SET CONSTRAINTS ... DEFERRED).
ALTER TABLE lifestyle ALTER CONSTRAINT lifestyle_person_id_fkey DEFERRABLE INITIALLY IMMEDIATE;
ALTER TABLE rx ALTER CONSTRAINT rx_person_id_fkey DEFERRABLE INITIALLY IMMEDIATE;
ALTER TABLE conditions ALTER CONSTRAINT conditions_person_id_fkey DEFERRABLE INITIALLY IMMEDIATE;
ALTER TABLE labs ALTER CONSTRAINT labs_person_id_fkey DEFERRABLE INITIALLY IMMEDIATE;
ALTER TABLE tests ALTER CONSTRAINT tests_person_id_fkey DEFERRABLE INITIALLY IMMEDIATE;
