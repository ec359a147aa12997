-- Per-second counts of observations, maintained by the database at every write of observations,
-- so pattern detection reads one row per (second, event type, sector) of its history instead of
-- every observation (app/src/domain/detectors.ts). A bucket is keyed by observed_at, not by the
-- time of the write: an observation that arrives late lands in its own second, and the counts
-- stay exactly what a recount of the table gives.
CREATE TABLE observation_counts (
  bucket     timestamptz NOT NULL CHECK (bucket = date_trunc('second', bucket)),
  event_type text NOT NULL,
  sector     text NOT NULL,
  n          bigint NOT NULL CHECK (n >= 0),
  errors     bigint NOT NULL CHECK (errors >= 0 AND errors <= n),
  -- Latest observed_at in the bucket (the silence detector's last_seen).
  last_seen  timestamptz,
  PRIMARY KEY (bucket, event_type, sector)
);

-- One statement-level trigger per kind of write, each a single grouped upsert over the statement's
-- transition table: a 1,000-row INSERT costs one statement here, not 1,000. Rows are upserted in
-- key order, so two statements touching the same buckets lock them in the same order. Deletes
-- (the archive job removes archived observations) subtract, and a bucket whose rows are all gone
-- is removed. SECURITY DEFINER: the writers (knhk_service, knhk_archiver) hold no privilege on
-- the counts beyond SELECT for the service; search_path is pinned so nothing shadows what it names.
CREATE FUNCTION observation_counts_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM public.observation_counts;
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    -- last_seen of a bucket that keeps rows is recomputed from them (bounded to that second); an
    -- emptied bucket is removed, and an UPDATE's new rows are then added as an INSERT's are.
    UPDATE public.observation_counts c
    SET n = c.n - g.n, errors = c.errors - g.errors,
        last_seen = (SELECT max(o.observed_at) FROM public.observations o
                     WHERE o.event_type = c.event_type AND o.sector = c.sector
                       AND o.observed_at >= c.bucket AND o.observed_at < c.bucket + interval '1 second')
    FROM (SELECT date_trunc('second', observed_at) AS bucket, event_type, sector, count(*) AS n, count(*) FILTER (WHERE is_error) AS errors
          FROM old_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3) g
    WHERE c.bucket = g.bucket AND c.event_type = g.event_type AND c.sector = g.sector;
    DELETE FROM public.observation_counts c
    USING (SELECT DISTINCT date_trunc('second', observed_at) AS bucket, event_type, sector FROM old_rows) g
    WHERE c.bucket = g.bucket AND c.event_type = g.event_type AND c.sector = g.sector AND c.n = 0;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO public.observation_counts AS c (bucket, event_type, sector, n, errors, last_seen)
    SELECT date_trunc('second', observed_at), event_type, sector, count(*), count(*) FILTER (WHERE is_error), max(observed_at)
    FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (bucket, event_type, sector) DO UPDATE
      SET n = c.n + EXCLUDED.n, errors = c.errors + EXCLUDED.errors, last_seen = greatest(c.last_seen, EXCLUDED.last_seen);
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION observation_counts_apply() FROM PUBLIC;

-- The triggers first: CREATE TRIGGER locks observations against writes until this migration
-- commits, so no row lands between the backfill's snapshot and the triggers.
CREATE TRIGGER observation_counts_insert AFTER INSERT ON observations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION observation_counts_apply();
CREATE TRIGGER observation_counts_update AFTER UPDATE ON observations
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION observation_counts_apply();
CREATE TRIGGER observation_counts_delete AFTER DELETE ON observations
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION observation_counts_apply();
CREATE TRIGGER observation_counts_truncate AFTER TRUNCATE ON observations
  FOR EACH STATEMENT EXECUTE FUNCTION observation_counts_apply();

-- The observations stored before this migration.
INSERT INTO observation_counts (bucket, event_type, sector, n, errors, last_seen)
SELECT date_trunc('second', observed_at), event_type, sector, count(*), count(*) FILTER (WHERE is_error), max(observed_at)
FROM observations GROUP BY 1, 2, 3;

REVOKE ALL ON observation_counts FROM PUBLIC;
GRANT SELECT ON observation_counts TO knhk_service;
