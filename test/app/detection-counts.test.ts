/**
 * Detection from the per-second counts (migration 0010, detectors.ts summarizeWindow) is exactly
 * detection from a full scan of the observations: after random streams with late arrivals written
 * through the service's own insert path as knhk_app, after the migration's backfill, and after the
 * archive job's deletes.
 */
import fc from "fast-check";
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { loadMigrations, migrate } from "../../app/src/db/migrate";
import type { Sql } from "../../app/src/db/types";
import { GENESIS_CONTENT, type KnowledgeContent, type Sector } from "../../app/src/domain";
import type { JsonObject } from "../../app/src/domain/types";
import { detectAll, summarizeWindow, summarizeWindowByScan, windowEndingAt, type Window } from "../../app/src/domain/detectors";
import type { ObservationScope } from "../../app/src/domain/scope";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { withScenario } from "./domain-support";

jest.setTimeout(300_000);

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});

const SCHEMAS = { "sensor.reading": { value_type: "number" as const, metadata: { unit: "string" as const } } };
const contentWith = (baseline: number, lookback: number): KnowledgeContent => ({
  ...GENESIS_CONTENT,
  thresholds: {
    high_frequency: { default: 3, by_event_type: {} },
    error_spike: { min_errors: 1, ratio: 0.2, factor: 1.5, baseline_windows: baseline },
    silence: { lookback_windows: lookback },
    schema_mismatch: { min_ratio: 0.2 },
  },
  schemas: SCHEMAS,
});

/** The counts table and a recount of observations, row for row (as text: microseconds kept). */
async function countsAndRecount(sql: Sql): Promise<[string[], string[]]> {
  const row = "bucket::text || ' ' || event_type || ' ' || sector || ' ' || n || ' ' || errors || ' ' || last_seen::text AS r";
  const counts = await sql.query<{ r: string }>(`SELECT ${row} FROM observation_counts ORDER BY bucket, event_type, sector`);
  const recount = await sql.query<{ r: string }>(
    `SELECT ${row} FROM (SELECT date_trunc('second', observed_at) AS bucket, event_type, sector, count(*) AS n, count(*) FILTER (WHERE is_error) AS errors, max(observed_at) AS last_seen
                         FROM observations GROUP BY 1, 2, 3) t ORDER BY bucket, event_type, sector`,
  );
  return [counts.rows.map((r) => r.r), recount.rows.map((r) => r.r)];
}

async function expectSameDetection(sql: Sql, content: KnowledgeContent, w: Window): Promise<void> {
  const label = `window (${w.start.toISOString()}, ${w.end.toISOString()}] scope ${w.scope ?? "all"}`;
  expect({ label, summary: await summarizeWindow(sql, content, w) }).toEqual({ label, summary: await summarizeWindowByScan(sql, content, w) });
  expect({ label, detection: await detectAll(sql, content, w) }).toEqual({ label, detection: await detectAll(sql, content, w, summarizeWindowByScan) });
}

const EVENT_TYPES = ["api.call", "db.error", "job.failed", "sensor.reading"] as const;
const SECTORS: readonly Sector[] = ["finance", "generic", "healthcare", "logistics"];
const METADATA: readonly JsonObject[] = [{}, { severity: "error" }, { level: "critical" }, { unit: "C" }, { unit: 1 }, { severity: "info", unit: "K" }];
const windowArb = fc.record({
  endMs: fc.oneof(fc.integer({ min: 0, max: 30_000 }), fc.integer({ min: 0, max: 30 }).map((s) => s * 1000)),
  seconds: fc.integer({ min: 1, max: 6 }),
  scope: fc.constantFrom<ObservationScope>(undefined, "finance", "generic"),
});
/**
 * Milliseconds into a run's 30-second span: anywhere, on and next to whole seconds (bucket
 * edges), or within a few milliseconds of a limit of one of the run's windows (the partial seconds).
 */
const offsetMs = (edges: readonly number[]) =>
  fc.oneof(
    fc.integer({ min: -15_000, max: 30_000 }),
    fc.integer({ min: -15, max: 30 }).chain((s) => fc.constantFrom(s * 1000, s * 1000 + 1, s * 1000 + 999)),
    fc.tuple(fc.constantFrom(...edges), fc.integer({ min: -3, max: 3 })).map(([e, d]) => e + d),
  );
const observation = (edges: readonly number[]) =>
  fc.record({
    event_type: fc.constantFrom(...EVENT_TYPES),
    sector: fc.constantFrom(...SECTORS),
    offsetMs: offsetMs(edges),
    /** Microseconds beyond the millisecond (the SQL path only: the API takes milliseconds). */
    micros: fc.integer({ min: 0, max: 999 }),
    metadata: fc.constantFrom(...METADATA),
    value: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constant("20C")),
  });
const chunk = fc.record({ size: fc.integer({ min: 1, max: 40 }), path: fc.constantFrom("batch", "single", "sql") });
const run = fc
  .record({ windows: fc.array(windowArb, { minLength: 2, maxLength: 5 }), baseline: fc.integer({ min: 1, max: 4 }), lookback: fc.integer({ min: 1, max: 4 }) })
  .chain(({ windows, baseline, lookback }) => {
    // Each window's end, start, baseline start and lookback start.
    const edges = windows.flatMap((w) => [0, 1, 1 + baseline, 1 + lookback].map((k) => w.endMs - k * w.seconds * 1000));
    return fc.record({
      windows: fc.constant(windows),
      baseline: fc.constant(baseline),
      lookback: fc.constant(lookback),
      stream: fc.array(observation(edges), { minLength: 20, maxLength: 200 }),
      chunks: fc.array(chunk, { minLength: 1, maxLength: 8 }),
    });
  });
type Obs = ReturnType<typeof observation> extends fc.Arbitrary<infer T> ? T : never;

describe("detection from the counts equals detection from a full scan", () => {
  test("random streams with late arrivals, in random batches through the service's insert paths, for random windows", async () => {
    await withScenario(pg, {}, async (s) => {
      const snapshotId = (await s.domain.snapshots.current()).id;
      // Each run writes into its own hour, long before now: every observation is a late arrival,
      // and in random order within the run, so later writes land in earlier seconds too.
      let runIndex = 0;
      const insertSql = async (items: readonly Obs[], base: number) => {
        // One multi-row INSERT as the service login, with microseconds the API cannot express.
        await s.db.query(
          `INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks)
           SELECT gen_random_uuid(), t, v, sec, m, to_timestamp(at_us / 1e6), now(), $6, false, '[]'::jsonb, 0
           FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::jsonb[], $5::float8[]) AS x(t, v, sec, m, at_us)`,
          [
            items.map((o) => o.event_type),
            items.map((o) => JSON.stringify(o.value)),
            items.map((o) => o.sector),
            items.map((o) => JSON.stringify(o.metadata)),
            items.map((o) => (base + o.offsetMs) * 1000 + o.micros),
            snapshotId,
          ],
        );
      };
      await fc.assert(
        fc.asyncProperty(run, async ({ stream, chunks, windows, baseline, lookback }) => {
          const base = Math.floor(s.clock.now().getTime() / 3_600_000) * 3_600_000 - (++runIndex + 1) * 3_600_000;
          const input = (o: Obs) => ({ event_type: o.event_type, sector: o.sector, value: o.value, metadata: o.metadata, observed_at: new Date(base + o.offsetMs).toISOString() });
          const parts: { items: Obs[]; path: string }[] = [];
          for (let i = 0, c = 0; i < stream.length; c++) {
            const { size, path } = chunks[c % chunks.length];
            parts.push({ items: stream.slice(i, i + size), path });
            i += size;
          }
          // Two writers at a time: concurrent statements upsert the same seconds.
          for (let i = 0; i < parts.length; i += 2) {
            await Promise.all(
              parts.slice(i, i + 2).map(async ({ items, path }) => {
                if (path === "sql") return insertSql(items, base);
                if (path === "batch") {
                  const result = await s.domain.observations.createBatch(items.map(input));
                  expect(result.stored).toBe(items.length);
                  return;
                }
                for (const o of items) await s.domain.observations.create(input(o));
              }),
            );
          }
          const content = contentWith(baseline, lookback);
          for (const w of windows) await expectSameDetection(s.db, content, windowEndingAt(new Date(base + w.endMs), w.seconds, w.scope));
          const [counts, recount] = await countsAndRecount(s.owner);
          expect(counts).toEqual(recount);
        }),
        { seed: 0x15c0de, numRuns: 25 },
      );
    });
  });

  test("one multi-row INSERT of 1,000 observations runs the trigger once", async () => {
    await withScenario(pg, {}, async (s) => {
      const snapshotId = (await s.domain.snapshots.current()).id;
      const calls = await s.owner.transaction(async (tx) => {
        // track_functions is superuser-only: the owner of the test database counts the calls.
        await tx.exec("SET LOCAL track_functions = 'pl'");
        await tx.query(
          `INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks)
           SELECT gen_random_uuid(), 'api.call', to_jsonb(i), 'finance', '{}'::jsonb, now() - i * interval '7 milliseconds', now(), $1, false, '[]'::jsonb, 0
           FROM generate_series(1, 1000) AS i`,
          [snapshotId],
        );
        const { rows } = await tx.query<{ calls: string }>("SELECT pg_stat_get_xact_function_calls('observation_counts_apply'::regproc) AS calls");
        return Number(rows[0].calls);
      });
      expect(calls).toBe(1);
      const { rows } = await s.owner.query<{ n: string; buckets: string }>("SELECT sum(n) AS n, count(*) AS buckets FROM observation_counts");
      expect(Number(rows[0].n)).toBe(1000);
      expect(Number(rows[0].buckets)).toBeGreaterThanOrEqual(7);
      expect(Number(rows[0].buckets)).toBeLessThanOrEqual(8);
    });
  });

  test("the service login reads the counts and cannot write them", async () => {
    await withScenario(pg, {}, async (s) => {
      await expect(s.db.query("SELECT count(*) FROM observation_counts")).resolves.toBeDefined();
      const denied = /permission denied for table observation_counts/;
      await expect(s.db.query("INSERT INTO observation_counts VALUES (date_trunc('second', now()), 'x', 'finance', 1, 0, now())")).rejects.toThrow(denied);
      await expect(s.db.query("UPDATE observation_counts SET n = n + 1")).rejects.toThrow(denied);
      await expect(s.db.query("DELETE FROM observation_counts")).rejects.toThrow(denied);
    });
  });
});

describe("the migration's backfill and the archive's deletes", () => {
  const seed = (snapshotId: string, from: string, count: number) =>
    `INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks)
     SELECT gen_random_uuid(), (ARRAY['api.call','api.error','sensor.reading'])[1 + i % 3], to_jsonb(i % 7),
            (ARRAY['finance','generic','healthcare','smoke'])[1 + (i / 3) % 4],
            CASE WHEN i % 11 = 0 THEN '{"severity":"critical"}'::jsonb ELSE '{}'::jsonb END,
            ${from} + (i * 37) % 600000 * interval '1 millisecond' + (i % 1000) * interval '1 microsecond', now() - interval '400 days', '${snapshotId}', false, '[]'::jsonb, 0
     FROM generate_series(1, ${count}) AS i`;

  test("detection after the backfill of existing observations equals the full scan", async () => {
    const database = `knhk_counts_backfill_${process.pid}`;
    await pg.createDatabase(database);
    const owner = createPostgresDatabase({ connectionString: pg.url(database), max: 2 });
    try {
      const all = loadMigrations();
      expect(all.map((m) => m.version)).toContain(10);
      await migrate(owner, all.filter((m) => m.version < 10));
      const snapshotId = "00000000-0000-4000-8000-000000000001";
      await owner.query(
        "INSERT INTO knowledge_snapshots (id, version, content, content_hash, status, created_at) VALUES ($1, 1, $2, $3, 'current', now())",
        [snapshotId, JSON.stringify(GENESIS_CONTENT), "0".repeat(64)],
      );
      await owner.exec(seed(snapshotId, "now() - interval '10 minutes'", 5000));
      expect(await migrate(owner)).toEqual(all.filter((m) => m.version >= 10).map((m) => m.version));
      const [counts, recount] = await countsAndRecount(owner);
      expect(counts.length).toBeGreaterThan(100);
      expect(counts).toEqual(recount);
      const now = Date.now();
      const content = contentWith(3, 4);
      for (const [endAgoMs, seconds, scope] of [[0, 60, undefined], [123_457, 45, undefined], [301_001, 17, "smoke"], [2_500, 1, "finance"]] as const) {
        await expectSameDetection(owner, content, windowEndingAt(new Date(now - endAgoMs), seconds, scope));
      }
    } finally {
      await owner.close();
    }
  });

  test("the archive job's deletes (as a member of knhk_archiver) keep the counts exact, last_seen included", async () => {
    await withScenario(pg, {}, async (s) => {
      const snapshotId = (await s.domain.snapshots.current()).id;
      await s.owner.exec(seed(snapshotId, "now() - interval '20 minutes'", 3000));
      await pg.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_counts_archiver') THEN CREATE ROLE knhk_counts_archiver LOGIN; END IF; END $$; GRANT knhk_archiver TO knhk_counts_archiver;",
        s.database,
      );
      const archiver = createPostgresDatabase({ connectionString: pg.url(s.database, "knhk_counts_archiver"), max: 1 });
      try {
        // As the archive deletes: batches by position; some buckets lose every row, some only their latest.
        for (const [lo, hi] of [[1, 400], [900, 950], [1200, 2100]]) {
          await archiver.query("DELETE FROM observations WHERE seq BETWEEN $1 AND $2", [lo, hi]);
          const [counts, recount] = await countsAndRecount(s.owner);
          expect(counts).toEqual(recount);
        }
        await archiver.query(
          "DELETE FROM observations o USING (SELECT DISTINCT ON (date_trunc('second', observed_at)) seq FROM observations ORDER BY date_trunc('second', observed_at), observed_at DESC) l WHERE o.seq = l.seq",
        );
        const [counts, recount] = await countsAndRecount(s.owner);
        expect(counts).toEqual(recount);
        const content = contentWith(2, 5);
        await expectSameDetection(s.db, content, windowEndingAt(new Date(), 90));
        await expectSameDetection(s.db, content, windowEndingAt(new Date(Date.now() - 700_321), 33, "smoke"));
      } finally {
        await archiver.close();
      }
    });
  });
});
