-- Stored tree hashes in runs: a row holds the 240 stored hashes of indexes [first_idx,
-- first_idx + 240) concatenated (32 bytes each), first_idx a multiple of 240, instead of a row per
-- hash. At thousands of entries a second the per-row cost of a hash table (a tuple and an index
-- entry for every hash, two per leaf) was a tenth of the ledger's append throughput. A run of
-- 7,680 bytes stays in its heap page, uncompressed (STORAGE PLAIN), so reading one hash costs one
-- index lookup and one page, as before, and a reader knows a hash's run from its index alone.
-- Every advance appends the stored hashes of the next indexes (tlog/tree.ts numbers them so), so
-- only the last run is ever partial: an advance completes it, then adds new runs. The triggers
-- make that the only possible change, for the owner too: a new run only directly after a full
-- one, a run only grows (its stored hashes kept as they were), nothing deleted or truncated.

CREATE OR REPLACE FUNCTION knhk_tree_run_appends() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  previous integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.first_idx > 0 THEN
      EXECUTE format('SELECT length(hashes) FROM %I WHERE first_idx = $1', TG_TABLE_NAME) INTO previous USING NEW.first_idx - 240;
      IF previous IS DISTINCT FROM 240 * 32 THEN
        RAISE EXCEPTION '%: a run starts only after a full run of 240 hashes; the run at % %', TG_TABLE_NAME, NEW.first_idx - 240,
          CASE WHEN previous IS NULL THEN 'is missing' ELSE 'holds ' || previous / 32 || ' hashes' END USING ERRCODE = 'check_violation';
      END IF;
    END IF;
  ELSIF NEW.first_idx <> OLD.first_idx OR length(NEW.hashes) <= length(OLD.hashes) OR substring(NEW.hashes FOR length(OLD.hashes)) <> OLD.hashes THEN
    RAISE EXCEPTION '%: a run only grows; its stored hashes never change (run at %)', TG_TABLE_NAME, OLD.first_idx
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TABLE receipt_tree_hash_runs (
  first_idx bigint PRIMARY KEY CHECK (first_idx >= 0 AND first_idx % 240 = 0),
  hashes    bytea NOT NULL CHECK (length(hashes) BETWEEN 32 AND 240 * 32 AND length(hashes) % 32 = 0)
);
CREATE TABLE audit_tree_hash_runs (LIKE receipt_tree_hash_runs INCLUDING ALL);

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['receipt_tree', 'audit_tree'] LOOP
    EXECUTE format('ALTER TABLE %I ALTER COLUMN hashes SET STORAGE PLAIN', t || '_hash_runs');
    -- The hashes stored so far (indexes 0..n-1 without a gap), in runs of 240.
    EXECUTE format('INSERT INTO %I (first_idx, hashes) SELECT idx / 240 * 240, string_agg(hash, ''''::bytea ORDER BY idx) FROM %I GROUP BY idx / 240 ORDER BY 1', t || '_hash_runs', t || '_hashes');
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION knhk_tree_run_appends()', t || '_hash_runs_append', t || '_hash_runs');
    EXECUTE format('CREATE TRIGGER %I BEFORE DELETE ON %I FOR EACH ROW EXECUTE FUNCTION knhk_forbid_modification()', t || '_hash_runs_no_delete', t || '_hash_runs');
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION knhk_forbid_modification()', t || '_hash_runs_no_truncate', t || '_hash_runs');
    EXECUTE format('DROP TABLE %I', t || '_hashes');
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', t || '_hash_runs');
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO knhk_service', t || '_hash_runs');
    EXECUTE format('GRANT SELECT ON %I TO knhk_archiver', t || '_hash_runs');
  END LOOP;
END $$;
