-- Compliance archive progress (knhk archive run): one row per archived stream.
-- last_position: everything up to this position (receipts.seq, audit_log.id, observations.seq) is
-- in object storage. pending_*: the batch being uploaded, recorded BEFORE the upload so a run
-- interrupted between upload and checkpoint re-reads exactly those rows, finds the object by its
-- key and checksum, and uploads nothing twice. The archive never deletes database rows.
CREATE TABLE archive_checkpoints (
  stream           text PRIMARY KEY CHECK (stream IN ('receipts', 'audit', 'observations')),
  last_position    bigint NOT NULL DEFAULT 0 CHECK (last_position >= 0),
  last_key         text,
  archived_records bigint NOT NULL DEFAULT 0 CHECK (archived_records >= 0),
  archived_objects bigint NOT NULL DEFAULT 0 CHECK (archived_objects >= 0),
  pending_first    bigint,
  pending_last     bigint,
  pending_key      text,
  pending_sha256   text CHECK (pending_sha256 ~ '^[0-9a-f]{64}$'),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (
    (pending_first IS NULL AND pending_last IS NULL AND pending_key IS NULL AND pending_sha256 IS NULL)
    OR (pending_first > last_position AND pending_last >= pending_first AND pending_key IS NOT NULL AND pending_sha256 IS NOT NULL)
  )
);

REVOKE ALL ON archive_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON archive_checkpoints TO knhk_service;
