import { NotFoundError, ValidationError, type Pattern } from "../../app/src/domain";
import { mergeCells, summarizeWindow, summarizeWindowByScan, windowEndingAt, type SummaryCell } from "../../app/src/domain/detectors";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { ago, observe, receiptOperations, withScenario } from "./domain-support";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.destroy();
});


function kinds(patterns: readonly Pattern[]) {
  return patterns.map((p) => `${p.kind}:${p.event_type}`).sort();
}

const thresholds = (hf: number) => ({
  thresholds: {
    high_frequency: { default: hf, by_event_type: {} },
    error_spike: { min_errors: 5, ratio: 0.2, factor: 2, baseline_windows: 10 },
    silence: { lookback_windows: 10 },
    schema_mismatch: { min_ratio: 0.2 },
  },
});

describe("window summary slices", () => {
  const cell = (event_type: string, sector: SummaryCell["sector"], n: number, lastSeen: string | null): SummaryCell => ({
    event_type, sector, window_n: n, window_errors: 1, baseline_n: 2 * n, baseline_errors: 0, lookback_n: n, lookback_last_seen: lastSeen ? new Date(lastSeen) : null,
  });

  test("merging sums every count per type and sector, keeps the latest last_seen, and sorts", () => {
    const merged = mergeCells([
      cell("b", "finance", 1, "2026-01-01T00:00:01.000Z"),
      cell("a", "generic", 2, null),
      cell("b", "finance", 3, null),
      cell("a", "generic", 4, "2026-01-01T00:00:02.000Z"),
      cell("a", "finance", 5, "2026-01-01T00:00:03.000Z"),
      cell("b", "finance", 6, "2026-01-01T00:00:09.000Z"),
    ]);
    expect(merged).toEqual([
      cell("a", "finance", 5, "2026-01-01T00:00:03.000Z"),
      { ...cell("a", "generic", 6, "2026-01-01T00:00:02.000Z"), window_errors: 2, baseline_n: 12 },
      { ...cell("b", "finance", 10, "2026-01-01T00:00:09.000Z"), window_errors: 3, baseline_n: 20 },
    ]);
  });
});

describe("pattern detection (window 60 s)", () => {
  test("high frequency: more than the threshold in the window is detected, at or below it and outside the window is not", async () => {
    await withScenario(pg, { genesis: thresholds(5) }, async (s) => {
      await observe(s, 6, "api.call", "finance", 10);
      await observe(s, 5, "api.quiet", "finance", 10);
      await observe(s, 9, "api.old", "finance", 90); // before the window
      const result = await s.domain.patterns.detect();
      const hf = result.patterns.filter((p) => p.kind === "high_frequency");
      expect(kinds(hf)).toEqual(["high_frequency:api.call"]);
      expect(hf[0]).toMatchObject({ sector: "finance", evidence: { count: 6, threshold: 5 } });
      expect(hf[0].score).toBeCloseTo(1.2);
      expect(result.observations_in_window).toBe(11);
      // persisted, listed, receipted, counted
      expect((await s.domain.patterns.get(hf[0].id)).id).toBe(hf[0].id);
      expect((await s.domain.patterns.list({ kind: "high_frequency" })).items.map((p) => p.id)).toEqual([hf[0].id]);
      expect((await receiptOperations(s.db)).filter((r) => r.operation === "pattern.detect")).toHaveLength(1);
      // The run's receipt (staged in the patterns' transaction) lists every stored pattern; the outbox is empty.
      const listed = await s.owner.query<{ id: string }>(
        "SELECT e ->> 'id' AS id FROM receipts r, jsonb_array_elements(r.evidence::jsonb -> 'patterns') e WHERE r.operation = 'pattern.detect'",
      );
      expect(listed.rows.map((r) => r.id).sort()).toEqual(result.patterns.map((p) => p.id).sort());
      expect((await s.owner.query("SELECT 1 FROM receipt_outbox")).rows).toEqual([]);
      expect(s.metrics.total("knhk_patterns_detected_total", { kind: "high_frequency" })).toBe(1);
      expect(s.metrics.total("knhk_pattern_detection_successes_total")).toBe(1);
    });
  });

  test("high frequency honours a per-event-type threshold and the window override", async () => {
    await withScenario(pg, { genesis: { thresholds: { ...thresholds(5).thresholds, high_frequency: { default: 5, by_event_type: { "api.call": 10 } } } } }, async (s) => {
      await observe(s, 8, "api.call", "finance", 10);
      expect((await s.domain.patterns.detect()).patterns).toEqual([]);
      await observe(s, 4, "api.call", "finance", 100);
      // a 200 s window sees 12 > 10
      expect(kinds((await s.domain.patterns.detect({ window_seconds: 200 })).patterns)).toEqual(["high_frequency:api.call"]);
      await expect(s.domain.patterns.detect({ window_seconds: 0 })).rejects.toMatchObject({ field: "window_seconds" });
    });
  });

  test("error spike: errors jump in one sector against a quiet baseline", async () => {
    await withScenario(pg, { genesis: thresholds(1000) }, async (s) => {
      await observe(s, 20, "payment.ok", "finance", 200); // baseline: no errors
      await observe(s, 6, "payment.error", "finance", 10);
      await observe(s, 4, "payment.ok", "finance", 10);
      await observe(s, 2, "shipment.failed", "logistics", 10); // below min_errors
      await observe(s, 8, "shipment.ok", "logistics", 10);
      const spikes = (await s.domain.patterns.detect()).patterns.filter((p) => p.kind === "error_spike");
      expect(spikes).toHaveLength(1);
      expect(spikes[0]).toMatchObject({ sector: "finance", event_type: "payment.error", evidence: { errors: 6, total: 10, error_ratio: 0.6, baseline_ratio: 0 } });
    });
  });

  test("error spike: no spike when the baseline already had the same error ratio, or severity marks too few errors", async () => {
    await withScenario(pg, { genesis: thresholds(1000) }, async (s) => {
      await observe(s, 12, "payment.error", "finance", 200);
      await observe(s, 8, "payment.ok", "finance", 200); // baseline ratio 0.6
      await observe(s, 6, "payment.error", "finance", 10);
      await observe(s, 4, "payment.ok", "finance", 10); // window ratio 0.6 < 2 x 0.6
      await observe(s, 4, "reading", "healthcare", 10, { metadata: { severity: "error" } }); // 4 < min_errors 5
      await observe(s, 1, "reading", "healthcare", 10);
      expect((await s.domain.patterns.detect()).patterns.filter((p) => p.kind === "error_spike")).toEqual([]);
      // one more severity=error reading reaches 5 errors of 6: a spike
      await observe(s, 1, "reading", "healthcare", 5, { metadata: { severity: "ERROR" } });
      const spikes = (await s.domain.patterns.detect()).patterns.filter((p) => p.kind === "error_spike");
      expect(spikes.map((p) => [p.sector, p.event_type])).toEqual([["healthcare", "reading"]]);
    });
  });

  test("silence: an event type seen in the lookback but absent in the window; not when present, not when inactive", async () => {
    await withScenario(pg, { genesis: { ...thresholds(1000), inactive_event_types: ["legacy.ping"] } }, async (s) => {
      await observe(s, 3, "heartbeat", "generic", 120);
      await observe(s, 3, "telemetry", "generic", 120);
      await observe(s, 1, "telemetry", "generic", 10);
      await observe(s, 2, "legacy.ping", "generic", 120);
      await observe(s, 2, "ancient", "generic", 60 * 12); // beyond 10 lookback windows
      const silent = (await s.domain.patterns.detect()).patterns.filter((p) => p.kind === "silence");
      expect(kinds(silent)).toEqual(["silence:heartbeat"]);
      expect(silent[0].evidence).toMatchObject({ count_before_window: 3, count_in_window: 0 });
    });
  });

  test("error baseline and silence lookback of different lengths are each counted over their own period", async () => {
    const genesis = {
      thresholds: {
        ...thresholds(1000).thresholds,
        error_spike: { min_errors: 5, ratio: 0.2, factor: 2, baseline_windows: 2 },
        silence: { lookback_windows: 5 },
      },
    };
    await withScenario(pg, { genesis }, async (s) => {
      await observe(s, 10, "payment.error", "finance", 200); // before the 2-window baseline (60-180 s ago)
      await observe(s, 5, "payment.ok", "finance", 100); // in the baseline
      await observe(s, 6, "payment.error", "finance", 10);
      await observe(s, 4, "payment.ok", "finance", 10);
      await observe(s, 1, "beacon", "logistics", 300); // in the 5-window lookback (60-360 s ago)
      await observe(s, 1, "beacon", "generic", 250);
      await observe(s, 3, "retired", "generic", 400); // before the lookback
      const patterns = (await s.domain.patterns.detect()).patterns;
      const spike = patterns.filter((p) => p.kind === "error_spike");
      expect(spike.map((p) => [p.sector, p.event_type])).toEqual([["finance", "payment.error"]]);
      expect(spike[0].evidence).toMatchObject({ errors: 6, total: 10, baseline_total: 5, baseline_ratio: 0, thresholds: { baseline_windows: 2 } });
      const silent = patterns.filter((p) => p.kind === "silence");
      expect(kinds(silent)).toEqual(["silence:beacon"]);
      expect(silent[0]).toMatchObject({ sector: null, evidence: { count_before_window: 2, lookback_windows: 5, last_seen: ago(s.clock, 250) } });
      expect(silent[0].score).toBeCloseTo(2 / 5);
    });
  });

  test("the window summary is the same however many time slices the horizon is read in", async () => {
    await withScenario(pg, { genesis: thresholds(1000) }, async (s) => {
      for (const [type, sector, secondsAgo] of [["a.error", "finance", 5], ["a.ok", "finance", 59], ["a.ok", "generic", 61], ["b.ok", "logistics", 300], ["b.ok", "logistics", 599], ["a.error", "finance", 650], ["c.old", "generic", 700]] as const) {
        await observe(s, 2, type, sector, secondsAgo);
      }
      const content = (await s.domain.snapshots.current()).content;
      const w = windowEndingAt(s.clock.now(), 60);
      const one = await summarizeWindowByScan(s.db, content, w, 1);
      expect(one.cells.map((c) => [c.event_type, c.sector, c.window_n, c.window_errors, c.baseline_n, c.baseline_errors, c.lookback_n])).toEqual([
        ["a.error", "finance", 2, 2, 2, 2, 2],
        ["a.ok", "finance", 2, 0, 0, 0, 0],
        ["a.ok", "generic", 0, 0, 2, 0, 2],
        ["b.ok", "logistics", 0, 0, 4, 0, 4],
      ]);
      for (const slices of [2, 3, 7]) expect(await summarizeWindowByScan(s.db, content, w, slices)).toEqual(one);
      expect(await summarizeWindow(s.db, content, w)).toEqual(one);
    });
  });

  test("schema mismatch: observations whose value or metadata differ from the declared schema", async () => {
    const schemas = { "sensor.temp": { value_type: "number" as const, metadata: { unit: "string" as const } } };
    await withScenario(pg, { genesis: { ...thresholds(1000), schemas } }, async (s) => {
      await observe(s, 4, "sensor.temp", "manufacturing", 10, { value: 20, metadata: { unit: "C" } });
      expect((await s.domain.patterns.detect()).patterns).toEqual([]);
      await observe(s, 2, "sensor.temp", "manufacturing", 10, { value: "20C", metadata: { unit: "C" } });
      await observe(s, 1, "sensor.temp", "manufacturing", 10, { value: 20, metadata: { unit: 1 } });
      const found = (await s.domain.patterns.detect()).patterns;
      expect(kinds(found)).toEqual(["schema_mismatch:sensor.temp"]);
      expect(found[0].evidence).toMatchObject({ total: 7, mismatched: 3 });
      expect(found[0].evidence.sample_observation_ids).toHaveLength(3);
    });
  });

  test("schema mismatch below min_ratio is not a pattern", async () => {
    const schemas = { "sensor.temp": { value_type: "number" as const, metadata: {} } };
    await withScenario(pg, { genesis: { ...thresholds(1000), schemas } }, async (s) => {
      await observe(s, 9, "sensor.temp", "manufacturing", 10, { value: 1 });
      await observe(s, 1, "sensor.temp", "manufacturing", 10, { value: "x" }); // 10% < 20%
      expect((await s.domain.patterns.detect()).patterns).toEqual([]);
    });
  });

  test("analytics computes counts, error ratio and numeric statistics over the window", async () => {
    await withScenario(pg, { genesis: thresholds(1000) }, async (s) => {
      await observe(s, 3, "m", "finance", 10); // values 0, 1, 2
      await observe(s, 1, "m.error", "finance", 10, { value: "x" });
      await observe(s, 2, "m", "finance", 500);
      const report = await s.domain.analytics.run();
      expect(report).toMatchObject({ total_observations: 4, error_observations: 1, error_ratio: 0.25, by_sector: [{ sector: "finance", count: 4 }] });
      expect(report.by_event_type[0]).toEqual({ event_type: "m", count: 3, errors: 0, numeric: { count: 3, min: 0, max: 2, mean: 1 } });
      expect(report.by_event_type[1]).toEqual({ event_type: "m.error", count: 1, errors: 1, numeric: null });
    });
  });

  test("many patterns are all stored; the receipt's evidence lists a bounded number", async () => {
    await withScenario(pg, { genesis: thresholds(1) }, async (s) => {
      const genesis = await s.domain.snapshots.current();
      await s.owner.query(
        `INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks)
         SELECT gen_random_uuid(), 'type.' || (i % 60), to_jsonb(i), 'generic', '{}', $2::timestamptz - interval '5 seconds', $2, $1, false, '[]', 1
         FROM generate_series(1, 120) i`,
        [genesis.id, s.clock.now()],
      );
      const result = await s.domain.patterns.detect();
      expect(result.patterns).toHaveLength(60);
      const { rows } = await s.db.query<{ evidence: { patterns_total: number; patterns: unknown[] } }>("SELECT evidence::jsonb AS evidence FROM receipts WHERE operation = 'pattern.detect'");
      expect(rows[0].evidence.patterns_total).toBe(60);
      expect(rows[0].evidence.patterns).toHaveLength(50);
      expect((await s.db.query<{ n: number }>("SELECT count(*)::int AS n FROM patterns")).rows[0].n).toBe(60);
    });
  });

  test("pattern get/list errors", async () => {
    await withScenario(pg, {}, async (s) => {
      await expect(s.domain.patterns.get("00000000-0000-4000-8000-000000000000")).rejects.toBeInstanceOf(NotFoundError);
      await expect(s.domain.patterns.list({ kind: "nope" as never })).rejects.toBeInstanceOf(ValidationError);
    });
  });
});

