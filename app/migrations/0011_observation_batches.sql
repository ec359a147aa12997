-- Batch ingest (POST /api/v1/observations/batch): one receipt per batch, whose evidence holds the
-- Merkle root (RFC 9162, SHA-256) over the leaf hashes of the batch's observations in order, so
-- each observation is provable on its own with an inclusion proof of log2(n) hashes
-- (app/src/domain/observation-proof.ts). The batch row links an observation to its receipt.
CREATE TABLE observation_batches (
  seq         bigserial PRIMARY KEY,
  id          uuid NOT NULL UNIQUE,
  item_count  integer NOT NULL CHECK (item_count BETWEEN 1 AND 1000),
  merkle_root text NOT NULL CHECK (merkle_root ~ '^[0-9a-f]{64}$'),
  created_at  timestamptz NOT NULL,
  receipt_seq bigint
);

-- Nullable, no default: a catalogue change only, whatever the size of the table.
ALTER TABLE observations ADD COLUMN batch_id uuid, ADD COLUMN batch_index integer;
ALTER TABLE observations ADD CONSTRAINT observations_batch_position
  CHECK ((batch_id IS NULL) = (batch_index IS NULL) AND (batch_index IS NULL OR batch_index BETWEEN 0 AND 999));
CREATE INDEX observations_batch ON observations (batch_id, batch_index) WHERE batch_id IS NOT NULL;

ALTER TABLE receipt_outbox DROP CONSTRAINT receipt_outbox_link_table_check;
ALTER TABLE receipt_outbox ADD CONSTRAINT receipt_outbox_link_table_check
  CHECK (link_table IN ('snapshot_transitions', 'validation_reports', 'observation_batches'));

REVOKE ALL ON observation_batches FROM PUBLIC;
GRANT SELECT, INSERT ON observation_batches TO knhk_service;
GRANT UPDATE (receipt_seq) ON observation_batches TO knhk_service;
GRANT USAGE ON SEQUENCE observation_batches_seq_seq TO knhk_service;
GRANT SELECT ON observation_batches TO knhk_archiver;
