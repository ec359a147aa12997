-- The receipt log's Merkle tree (app/src/receipts/tlog): leaf k (0-based) is the receipt with
-- seq k + 1, its leaf data that receipt's 32-byte SHA-256 hash (the hex `hash` column decoded,
-- which commits to every hashed field), its leaf hash SHA-256(0x00 || data). The tree writer
-- (tlog/store.ts) appends the stored hashes in seq order, after the receipts commit; the tree is
-- rebuildable from the receipts at any time and never skips or reorders one.

-- Stored hashes by index (tlog/tree.ts): a leaf's hash and one per subtree it completes. Never changed.
CREATE TABLE receipt_tree_hashes (
  idx  bigint PRIMARY KEY CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE TRIGGER receipt_tree_hashes_append_only BEFORE UPDATE OR DELETE ON receipt_tree_hashes
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER receipt_tree_hashes_no_truncate BEFORE TRUNCATE ON receipt_tree_hashes
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

-- How many receipts the tree covers and its root; its row lock serialises tree writers.
CREATE TABLE receipt_tree_head (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  size       bigint NOT NULL CHECK (size >= 0),
  root       bytea NOT NULL CHECK (length(root) = 32),
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO receipt_tree_head (singleton, size, root) VALUES (true, 0, sha256(''::bytea));

CREATE OR REPLACE FUNCTION knhk_tree_head_only_grows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.size < OLD.size THEN
    RAISE EXCEPTION 'receipt_tree_head: the tree only grows (size % to %)', OLD.size, NEW.size
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER receipt_tree_head_only_grows BEFORE UPDATE ON receipt_tree_head
  FOR EACH ROW EXECUTE FUNCTION knhk_tree_head_only_grows();
CREATE TRIGGER receipt_tree_head_no_delete BEFORE DELETE ON receipt_tree_head
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER receipt_tree_head_no_truncate BEFORE TRUNCATE ON receipt_tree_head
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

-- Signed checkpoints of the tree (C2SP tlog-checkpoint notes, tlog/checkpoint.ts), one per size:
-- the primary key makes a second, different checkpoint for a size impossible.
CREATE TABLE receipt_tree_checkpoints (
  size        bigint PRIMARY KEY CHECK (size > 0),
  root        bytea NOT NULL CHECK (length(root) = 32),
  key_version integer NOT NULL REFERENCES receipt_signing_keys (key_version),
  note        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER receipt_tree_checkpoints_append_only BEFORE UPDATE OR DELETE ON receipt_tree_checkpoints
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER receipt_tree_checkpoints_no_truncate BEFORE TRUNCATE ON receipt_tree_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

-- How far the archive job has published the log to the ledger bucket (receipts/tlog/): every
-- checkpoint up to this size, with its tiles (app/src/archive/receipt-log.ts).
CREATE TABLE receipt_tree_publication (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  published_size bigint NOT NULL DEFAULT 0 CHECK (published_size >= 0),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO receipt_tree_publication (singleton) VALUES (true);

REVOKE ALL ON receipt_tree_hashes, receipt_tree_head, receipt_tree_checkpoints, receipt_tree_publication FROM PUBLIC;
GRANT SELECT, INSERT ON receipt_tree_hashes, receipt_tree_checkpoints TO knhk_service;
GRANT SELECT, UPDATE ON receipt_tree_head TO knhk_service;
GRANT SELECT ON receipt_tree_hashes, receipt_tree_head, receipt_tree_checkpoints TO knhk_archiver;
GRANT SELECT, UPDATE ON receipt_tree_publication TO knhk_archiver;
