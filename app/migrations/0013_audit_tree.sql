-- The audit log's Merkle tree (app/src/audit/tree.ts), the same structure as the receipt tree
-- (0012) with its own checkpoints: an altered, deleted or reordered audit entry changes a root
-- that was signed.
--
-- audit_log ids come from a sequence and commit out of order, so the tree cannot follow the ids
-- the way the receipt tree follows seq. Each row records the transaction that wrote it (xact);
-- the tree writer takes only rows whose transaction is older than every transaction still in
-- progress (xact < the snapshot's xmin), in (xact, id) order after the last row it took. Such a
-- row's transaction has ended, so no row can later appear before the tree's position: the tree
-- never skips an entry, and audit_tree_leaves records the order it chose.

-- The head trigger of 0012, naming whichever head it guards.
CREATE OR REPLACE FUNCTION knhk_tree_head_only_grows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.size < OLD.size THEN
    RAISE EXCEPTION '%: the tree only grows (size % to %)', TG_TABLE_NAME, OLD.size, NEW.size
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;

ALTER TABLE audit_log ADD COLUMN xact xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX audit_log_tree_order ON audit_log (xact, id);

-- Leaf k of the tree is audit entry audit_id.
CREATE TABLE audit_tree_leaves (
  leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
  audit_id   bigint NOT NULL UNIQUE
);
CREATE TRIGGER audit_tree_leaves_append_only BEFORE UPDATE OR DELETE ON audit_tree_leaves
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER audit_tree_leaves_no_truncate BEFORE TRUNCATE ON audit_tree_leaves
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

CREATE TABLE audit_tree_hashes (
  idx  bigint PRIMARY KEY CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE TRIGGER audit_tree_hashes_append_only BEFORE UPDATE OR DELETE ON audit_tree_hashes
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER audit_tree_hashes_no_truncate BEFORE TRUNCATE ON audit_tree_hashes
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

-- Size and root, and the (xact, id) of the last entry the tree took.
CREATE TABLE audit_tree_head (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  size       bigint NOT NULL CHECK (size >= 0),
  root       bytea NOT NULL CHECK (length(root) = 32),
  last_xact  xid8 NOT NULL DEFAULT '0',
  last_id    bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_tree_head (singleton, size, root) VALUES (true, 0, sha256(''::bytea));
CREATE TRIGGER audit_tree_head_only_grows BEFORE UPDATE ON audit_tree_head
  FOR EACH ROW EXECUTE FUNCTION knhk_tree_head_only_grows();
CREATE TRIGGER audit_tree_head_no_delete BEFORE DELETE ON audit_tree_head
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER audit_tree_head_no_truncate BEFORE TRUNCATE ON audit_tree_head
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

CREATE TABLE audit_tree_checkpoints (
  size        bigint PRIMARY KEY CHECK (size > 0),
  root        bytea NOT NULL CHECK (length(root) = 32),
  key_version integer NOT NULL REFERENCES receipt_signing_keys (key_version),
  note        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_tree_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_tree_checkpoints
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER audit_tree_checkpoints_no_truncate BEFORE TRUNCATE ON audit_tree_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

REVOKE ALL ON audit_tree_leaves, audit_tree_hashes, audit_tree_head, audit_tree_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON audit_tree_leaves, audit_tree_hashes, audit_tree_checkpoints TO knhk_service;
GRANT SELECT, UPDATE ON audit_tree_head TO knhk_service;

-- How far the archive job has published the audit log to the ledger bucket (audit/tlog/).
CREATE TABLE audit_tree_publication (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  published_size bigint NOT NULL DEFAULT 0 CHECK (published_size >= 0),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_tree_publication (singleton) VALUES (true);
REVOKE ALL ON audit_tree_publication FROM PUBLIC;
GRANT SELECT ON audit_tree_hashes, audit_tree_checkpoints TO knhk_archiver;
GRANT SELECT, UPDATE ON audit_tree_publication TO knhk_archiver;
