-- A re-delivered S3 event names the same object version (bucket/key and ETag): find its run
-- without reading the object again.
CREATE INDEX ingest_run_source_version ON ingest_run (table_name, source, source_version)
    WHERE status = 'loaded';
