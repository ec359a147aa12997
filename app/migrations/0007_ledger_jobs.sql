-- The scheduled ledger jobs (CronJobs knhk-archive, knhk-verify-chain, knhk-verify-chain-full):
-- their own least-privileged roles, and a record of every run. A CronJob's pod is gone after its
-- run, so the outcome is kept here: the service exports the latest verification outcome from this
-- table (knhk_receipt_chain_verification_failures) and the P0 chain-integrity alert fires when a
-- scheduled verification found a break.

-- NOLOGIN group roles like knhk_service: Vault's dynamic users of the jobs are members of one.
-- The schema owner (the migration identity) may not create roles: the database bootstrap creates
-- them beside knhk_service (infra/render/ledger-jobs.ts ledgerJobBootstrapStatements); a superuser
-- (tests, the embedded database) creates them here.
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['knhk_archiver', 'knhk_verifier'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
        RAISE EXCEPTION 'role % does not exist, and % may not create it', r, current_user
          USING HINT = 'the database bootstrap creates the ledger jobs'' NOLOGIN roles knhk_archiver and knhk_verifier, as it creates knhk_service';
      END IF;
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$$;

-- The bootstrap revokes the public schema from PUBLIC; its owner (who runs this) lets the jobs in.
GRANT USAGE ON SCHEMA public TO knhk_archiver, knhk_verifier;

-- One row per finished run; append-only like the ledger it reports on.
CREATE TABLE ledger_job_runs (
  id          bigserial PRIMARY KEY,
  -- verify-incremental: started after a stored checkpoint; verify-full: from genesis.
  job         text NOT NULL CHECK (job IN ('archive', 'verify-incremental', 'verify-full')),
  ok          boolean NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  -- verify-*: integrity failures found, by kind (knhk_receipt_chain_breaks_total's kinds).
  failures    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(failures) = 'object'),
  -- Counts of the run (archive: objects and records per stream; verify: seq range, verified).
  summary     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(summary) = 'object'),
  CHECK (finished_at >= started_at)
);
CREATE INDEX ledger_job_runs_latest ON ledger_job_runs (job, id DESC);

CREATE TRIGGER ledger_job_runs_append_only BEFORE UPDATE OR DELETE ON ledger_job_runs
  FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification();
CREATE TRIGGER ledger_job_runs_no_truncate BEFORE TRUNCATE ON ledger_job_runs
  FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification();

REVOKE ALL ON ledger_job_runs FROM PUBLIC;
-- The service only reads the outcomes (it exports them); it cannot record a passing verification.
-- Each job records only its own kind of run: the archiver cannot record a clean verification either.
GRANT SELECT ON ledger_job_runs TO knhk_service;
GRANT INSERT ON ledger_job_runs TO knhk_archiver, knhk_verifier;
GRANT USAGE ON SEQUENCE ledger_job_runs_id_seq TO knhk_archiver, knhk_verifier;
ALTER TABLE ledger_job_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY ledger_job_runs_read ON ledger_job_runs FOR SELECT TO knhk_service USING (true);
CREATE POLICY ledger_job_runs_archive ON ledger_job_runs FOR INSERT TO knhk_archiver WITH CHECK (job = 'archive');
CREATE POLICY ledger_job_runs_verify ON ledger_job_runs FOR INSERT TO knhk_verifier WITH CHECK (job IN ('verify-incremental', 'verify-full'));

-- knhk archive run --delete-archived-observations: reads the three streams, keeps its checkpoints,
-- and deletes observations once they are in the data bucket. No INSERT into any ledger table.
GRANT SELECT ON receipts, receipt_signing_keys, audit_log TO knhk_archiver;
GRANT SELECT, DELETE ON observations TO knhk_archiver;
GRANT SELECT, INSERT, UPDATE ON archive_checkpoints TO knhk_archiver;

-- knhk receipts verify-chain: reads the chain and its anchors, stores a checkpoint after a clean run.
GRANT SELECT ON receipts, receipt_signing_keys, receipt_chain_head TO knhk_verifier;
GRANT SELECT, INSERT ON receipt_verification_checkpoints TO knhk_verifier;
GRANT USAGE ON SEQUENCE receipt_verification_checkpoints_id_seq TO knhk_verifier;
