-- Batch ingest (POST /api/v1/observations/batch): one receipt per batch, whose evidence holds the
-- Merkle root (RFC 9162, SHA-256) over the leaf hashes of the batch's observations in order, so
-- each observation is provable on its own with an inclusion proof of log2(n) hashes
-- (app/src/domain/observation-proof.ts). The batch row links its observations to that receipt.
CREATE TABLE observation_batches (
  seq         bigserial PRIMARY KEY,
  id          uuid NOT NULL UNIQUE,
  item_count  integer NOT NULL CHECK (item_count BETWEEN 1 AND 1000),
  merkle_root text NOT NULL CHECK (merkle_root ~ '^[0-9a-f]{64}$'),
  created_at  timestamptz NOT NULL,
  -- Written in the receipt's own transaction (the batch's rows commit with their receipt).
  receipt_seq bigint NOT NULL
);

-- Nullable, no default: a catalogue change only, whatever the size of the table. receipt_seq is
-- the receipt that commits to the row (its own, or its batch's), written in that receipt's
-- transaction; rows stored before this migration have none (their receipt names them in its
-- evidence.observation_id).
ALTER TABLE observations ADD COLUMN batch_id uuid, ADD COLUMN batch_index integer, ADD COLUMN receipt_seq bigint;
-- NOT VALID, then VALIDATE: the check is proven without holding the table's write lock for the scan.
ALTER TABLE observations ADD CONSTRAINT observations_batch_position
  CHECK ((batch_id IS NULL) = (batch_index IS NULL) AND (batch_index IS NULL OR batch_index BETWEEN 0 AND 999)) NOT VALID;
ALTER TABLE observations VALIDATE CONSTRAINT observations_batch_position;
CREATE INDEX observations_batch ON observations (batch_id, batch_index) WHERE batch_id IS NOT NULL;

REVOKE ALL ON observation_batches FROM PUBLIC;
GRANT SELECT, INSERT ON observation_batches TO knhk_service;
GRANT USAGE ON SEQUENCE observation_batches_seq_seq TO knhk_service;
GRANT SELECT ON observation_batches TO knhk_archiver;
