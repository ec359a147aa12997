-- Receipt ledger: one global hash chain of signed receipts (DESIGN.md "Receipts").
-- receipts is append-only in the database itself: a trigger raises on UPDATE, DELETE and TRUNCATE
-- (even for the owner, unless triggers are deliberately disabled), and the service role
-- knhk_service only holds SELECT and INSERT on it.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_service') THEN
    -- NOLOGIN: deployments GRANT knhk_service TO their login user.
    CREATE ROLE knhk_service NOLOGIN;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION knhk_forbid_modification() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'receipts and audit_log are immutable records';
END
$$;

-- Public halves of the signing keys; private keys never live in the database.
CREATE TABLE receipt_signing_keys (
  key_version  integer PRIMARY KEY CHECK (key_version > 0),
  public_key   text NOT NULL UNIQUE,            -- raw 32-byte ed25519 key, base64
  ephemeral    boolean NOT NULL DEFAULT false,  -- generated at start because none was configured
  activated_at timestamptz NOT NULL DEFAULT now(),
  retired_at   timestamptz
);

CREATE TABLE receipts (
  seq         bigint PRIMARY KEY CHECK (seq > 0),
  id          uuid NOT NULL UNIQUE,             -- first 128 bits of hash
  operation   text NOT NULL,
  outcome     text NOT NULL,
  evidence    text NOT NULL,                    -- RFC 8785 canonical JSON, exactly as hashed
  sector      text NOT NULL,
  created_at  timestamptz(3) NOT NULL,          -- millisecond precision, as hashed
  parent_hash text NOT NULL,
  key_version integer NOT NULL REFERENCES receipt_signing_keys (key_version),
  hash        text NOT NULL,                    -- SHA-256 hex of the canonical JSON
  signature   text NOT NULL                     -- ed25519 over the hash bytes, base64
);

CREATE INDEX receipts_created_at ON receipts (created_at);

CREATE TRIGGER receipts_append_only BEFORE UPDATE OR DELETE ON receipts
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER receipts_no_truncate BEFORE TRUNCATE ON receipts
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

-- The chain head: its row lock serialises batches from every process, so there is one chain.
CREATE TABLE receipt_chain_head (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  seq        bigint NOT NULL,
  hash       text NOT NULL,
  created_at timestamptz(3) NOT NULL
);
INSERT INTO receipt_chain_head (singleton, seq, hash, created_at)
VALUES (true, 0, repeat('0', 64), 'epoch');

-- Where the last successful verification ended; incremental verification starts there.
CREATE TABLE receipt_verification_checkpoints (
  id             bigserial PRIMARY KEY,
  seq            bigint NOT NULL,
  hash           text NOT NULL,
  created_at     timestamptz(3) NOT NULL,       -- of the receipt at seq
  verified_count bigint NOT NULL,
  verified_at    timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON receipts, receipt_signing_keys, receipt_chain_head, receipt_verification_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON receipts TO knhk_service;
GRANT SELECT, INSERT ON receipt_signing_keys TO knhk_service;
GRANT UPDATE (retired_at) ON receipt_signing_keys TO knhk_service;
GRANT SELECT, UPDATE ON receipt_chain_head TO knhk_service;
GRANT SELECT, INSERT ON receipt_verification_checkpoints TO knhk_service;
GRANT USAGE ON SEQUENCE receipt_verification_checkpoints_id_seq TO knhk_service;
