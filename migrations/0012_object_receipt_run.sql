-- GET /runs/{id} lists the receipts that name a run: find them without a scan of every receipt.
CREATE INDEX object_receipt_run ON object_receipt (run_id) WHERE run_id IS NOT NULL;
