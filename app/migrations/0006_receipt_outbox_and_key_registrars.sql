-- 1. Signing keys are registered only by the owner (or a superuser), never by the service role.
--    0002 let knhk_service INSERT keys: a compromised service could register its own key and sign
--    forged receipts with it. Every key row now records the role that inserted it (a trigger sets
--    it; the inserter cannot choose it) and verification trusts only keys registered by the owner
--    of this table, a member of it, or a superuser. Keys already present when this migration runs
--    are attributed to the role running it: it cannot tell which of them the service inserted.
REVOKE INSERT, UPDATE ON receipt_signing_keys FROM knhk_service;
REVOKE UPDATE (retired_at) ON receipt_signing_keys FROM knhk_service;

ALTER TABLE receipt_signing_keys ADD COLUMN registered_by name NOT NULL DEFAULT current_user;

CREATE OR REPLACE FUNCTION knhk_signing_key_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.registered_by := current_user;
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF NEW.key_version IS DISTINCT FROM OLD.key_version OR NEW.public_key IS DISTINCT FROM OLD.public_key
       OR NEW.ephemeral IS DISTINCT FROM OLD.ephemeral OR NEW.activated_at IS DISTINCT FROM OLD.activated_at
       OR NEW.registered_by IS DISTINCT FROM OLD.registered_by THEN
      RAISE EXCEPTION 'receipt_signing_keys: only retired_at may change'
        USING ERRCODE = 'insufficient_privilege', HINT = 'rotate by registering a new key_version';
    END IF;
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'receipt_signing_keys: % is not allowed (receipts signed with the key must stay verifiable)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER receipt_signing_keys_guard BEFORE INSERT OR UPDATE OR DELETE ON receipt_signing_keys
  FOR EACH ROW EXECUTE FUNCTION knhk_signing_key_guard();
CREATE TRIGGER receipt_signing_keys_no_truncate BEFORE TRUNCATE ON receipt_signing_keys
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

-- 2. The receipt outbox: a receipted step stores its receipt here IN THE SAME TRANSACTION as its
--    domain rows; the ledger's batch transaction deletes the entry in the statement that inserts
--    the receipt. An entry left behind by a process that died in between is appended by the next
--    process that starts (before it serves). `owner` is the ledger instance that staged the entry;
--    it holds a session advisory lock on it while it lives, so only entries of dead owners are
--    adopted.
CREATE TABLE receipt_outbox (
  id         uuid PRIMARY KEY,
  owner      uuid NOT NULL,
  operation  text NOT NULL,
  outcome    text NOT NULL,
  evidence   text NOT NULL,                    -- RFC 8785 canonical JSON, exactly as it will be hashed
  sector     text NOT NULL,
  -- Optional back-link filled with the receipt's seq once appended (recovery fills it too).
  link_table text CHECK (link_table IN ('snapshot_transitions', 'validation_reports')),
  link_seq   bigint,
  staged_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((link_table IS NULL) = (link_seq IS NULL))
);
CREATE INDEX receipt_outbox_owner ON receipt_outbox (owner);

REVOKE ALL ON receipt_outbox FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON receipt_outbox TO knhk_service;
