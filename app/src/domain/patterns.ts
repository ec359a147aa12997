/**
 * Pattern detection over the window (end - PATTERN_WINDOW_SECONDS, end]: high frequency per event
 * type, error spike per sector, silence, schema mismatch. Thresholds and schemas come from the
 * current knowledge snapshot; every figure is computed by SQL over the stored observations.
 */
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/types";
import { iso, isUuid, nextCursor, pageArgs, receipt, timed, windowSecondsOf, type DomainContext } from "./context";
import { NotFoundError, ValidationError } from "./errors";
import { highFrequencyThreshold } from "./knowledge";
import type { AnalyticsService, PatternService } from "./index";
import type { SnapshotInternals } from "./snapshots";
import {
  PATTERN_KINDS,
  type AnalyticsReport,
  type DetectQuery,
  type DetectionResult,
  type EventSchema,
  type JsonObject,
  type KnowledgeContent,
  type Pattern,
  type PatternKind,
  type PatternListQuery,
  type Page,
  type Sector,
  type Snapshot,
} from "./types";

export interface Window {
  readonly start: Date;
  readonly end: Date;
  readonly seconds: number;
}

export function windowEndingAt(end: Date, seconds: number): Window {
  return { start: new Date(end.getTime() - seconds * 1000), end, seconds };
}

/** SQL boolean: the row conforms to the schema. Pushes its parameters onto params. */
export function conformanceSql(schema: EventSchema, params: unknown[]): string {
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const parts = [`coalesce(jsonb_typeof(value) = ${param(schema.value_type)}, false)`];
  for (const [key, type] of Object.entries(schema.metadata)) {
    parts.push(`coalesce(jsonb_typeof(metadata -> ${param(key)}) = ${param(type)}, false)`);
  }
  return `(${parts.join(" AND ")})`;
}

/** Observations of one event type in (start, end], and how many conform to the schema. */
export async function schemaConformance(
  sql: Sql,
  eventType: string,
  schema: EventSchema,
  start: Date,
  end: Date,
): Promise<{ total: number; conforming: number; mismatched_ids: string[] }> {
  const params: unknown[] = [eventType, start, end];
  const conforms = conformanceSql(schema, params);
  const { rows } = await sql.query<{ total: number; conforming: number; mismatched_ids: string[] | null }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE ${conforms})::int AS conforming,
            (array_agg(id::text ORDER BY seq DESC) FILTER (WHERE NOT ${conforms}))[1:5] AS mismatched_ids
     FROM observations WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3`,
    params,
  );
  return { total: rows[0].total, conforming: rows[0].conforming, mismatched_ids: rows[0].mismatched_ids ?? [] };
}

interface Finding {
  readonly kind: PatternKind;
  readonly event_type: string | null;
  readonly sector: Sector | null;
  readonly score: number;
  readonly evidence: JsonObject;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

export async function highFrequency(sql: Sql, content: KnowledgeContent, w: Window): Promise<Finding[]> {
  const { rows } = await sql.query<{ event_type: string; sector: Sector; n: number }>(
    `SELECT event_type, sector, count(*)::int AS n FROM observations
     WHERE observed_at > $1 AND observed_at <= $2 GROUP BY event_type, sector ORDER BY event_type, sector`,
    [w.start, w.end],
  );
  const byType = new Map<string, Record<string, number>>();
  for (const r of rows) byType.set(r.event_type, { ...byType.get(r.event_type), [r.sector]: r.n });
  const detected = [...byType].filter(([eventType, sectors]) => total(sectors) > highFrequencyThreshold(content, eventType));
  if (detected.length === 0) return [];
  const samples = await sql.query<{ event_type: string; ids: string[] }>(
    `SELECT event_type, array_agg(id ORDER BY rn) AS ids FROM (
       SELECT event_type, id::text AS id, row_number() OVER (PARTITION BY event_type ORDER BY observed_at DESC, seq DESC) AS rn
       FROM observations WHERE event_type = ANY($1::text[]) AND observed_at > $2 AND observed_at <= $3) s
     WHERE rn <= 5 GROUP BY event_type`,
    [detected.map(([t]) => t), w.start, w.end],
  );
  const sampleOf = new Map(samples.rows.map((r) => [r.event_type, r.ids]));
  return detected.map(([eventType, sectors]): Finding => {
    const count = total(sectors);
    const threshold = highFrequencyThreshold(content, eventType);
    const names = Object.keys(sectors);
    return {
      kind: "high_frequency",
      event_type: eventType,
      sector: names.length === 1 ? (names[0] as Sector) : null,
      score: round(count / threshold),
      evidence: { count, threshold, window_seconds: w.seconds, by_sector: sectors, sample_observation_ids: sampleOf.get(eventType) ?? [] },
    };
  });
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

export async function errorSpike(sql: Sql, content: KnowledgeContent, w: Window): Promise<Finding[]> {
  const rule = content.thresholds.error_spike;
  const baselineStart = new Date(w.start.getTime() - rule.baseline_windows * w.seconds * 1000);
  const current = await sql.query<{ sector: Sector; total: number; errors: number; top_error_type: string | null; sample: string[] | null }>(
    `SELECT sector, count(*)::int AS total, count(*) FILTER (WHERE is_error)::int AS errors,
            mode() WITHIN GROUP (ORDER BY event_type) FILTER (WHERE is_error) AS top_error_type,
            (array_agg(id::text ORDER BY seq DESC) FILTER (WHERE is_error))[1:5] AS sample
     FROM observations WHERE observed_at > $1 AND observed_at <= $2 GROUP BY sector ORDER BY sector`,
    [w.start, w.end],
  );
  const baseline = await sql.query<{ sector: Sector; total: number; errors: number }>(
    `SELECT sector, count(*)::int AS total, count(*) FILTER (WHERE is_error)::int AS errors
     FROM observations WHERE observed_at > $1 AND observed_at <= $2 GROUP BY sector`,
    [baselineStart, w.start],
  );
  const base = new Map(baseline.rows.map((r) => [r.sector, r]));
  const rows = current.rows.map((r) => ({ ...r, base_total: base.get(r.sector)?.total ?? 0, base_errors: base.get(r.sector)?.errors ?? 0 }));
  const findings: Finding[] = [];
  for (const r of rows) {
    if (r.total === 0) continue;
    const ratio = r.errors / r.total;
    const baseline = r.base_total === 0 ? 0 : r.base_errors / r.base_total;
    const spiking = r.errors >= rule.min_errors && ratio >= rule.ratio && ratio >= rule.factor * baseline;
    if (!spiking) continue;
    findings.push({
      kind: "error_spike",
      event_type: r.top_error_type,
      sector: r.sector,
      score: round(ratio / rule.ratio),
      evidence: {
        errors: r.errors,
        total: r.total,
        error_ratio: round(ratio),
        baseline_ratio: round(baseline),
        baseline_total: r.base_total,
        thresholds: { min_errors: rule.min_errors, ratio: rule.ratio, factor: rule.factor, baseline_windows: rule.baseline_windows },
        sample_observation_ids: r.sample ?? [],
      },
    });
  }
  return findings;
}

export async function silence(sql: Sql, content: KnowledgeContent, w: Window): Promise<Finding[]> {
  const lookback = content.thresholds.silence.lookback_windows;
  const lookbackStart = new Date(w.start.getTime() - lookback * w.seconds * 1000);
  const silent = await sql.query<{ event_type: string; n: number; last_seen: Date }>(
    `WITH before AS (
       SELECT event_type, count(*)::int AS n, max(observed_at) AS last_seen FROM observations
       WHERE observed_at > $1 AND observed_at <= $2 GROUP BY event_type)
     SELECT * FROM before b
     WHERE NOT EXISTS (SELECT 1 FROM observations w WHERE w.event_type = b.event_type AND w.observed_at > $2 AND w.observed_at <= $3)
     ORDER BY event_type`,
    [lookbackStart, w.start, w.end],
  );
  const rows: { event_type: string; n: number; last_seen: Date; sectors: string[] }[] = [];
  for (const r of silent.rows) {
    const sectors = await sql.query<{ sector: string }>(
      "SELECT DISTINCT sector FROM observations WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3",
      [r.event_type, lookbackStart, w.start],
    );
    rows.push({ ...r, sectors: sectors.rows.map((x) => x.sector) });
  }
  return rows
    .filter((r) => !content.inactive_event_types.includes(r.event_type))
    .map((r) => ({
      kind: "silence",
      event_type: r.event_type,
      sector: r.sectors.length === 1 ? (r.sectors[0] as Sector) : null,
      score: round(r.n / lookback),
      evidence: { count_before_window: r.n, expected_per_window: round(r.n / lookback), last_seen: iso(r.last_seen), lookback_windows: lookback, count_in_window: 0 },
    }));
}

export async function schemaMismatch(sql: Sql, content: KnowledgeContent, w: Window): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const [eventType, schema] of Object.entries(content.schemas).sort(([a], [b]) => a.localeCompare(b))) {
    const c = await schemaConformance(sql, eventType, schema, w.start, w.end);
    if (c.total === 0) continue;
    const ratio = (c.total - c.conforming) / c.total;
    const minRatio = content.thresholds.schema_mismatch.min_ratio;
    if (c.total === c.conforming || ratio < minRatio) continue;
    findings.push({
      kind: "schema_mismatch",
      event_type: eventType,
      sector: null,
      score: round(ratio / minRatio),
      evidence: { total: c.total, mismatched: c.total - c.conforming, mismatch_ratio: round(ratio), min_ratio: minRatio, declared_schema: schema as unknown as JsonObject, sample_observation_ids: c.mismatched_ids },
    });
  }
  return findings;
}

/** Most items a receipt's evidence lists. */
export const EVIDENCE_LIST_LIMIT = 50;

const DETECTORS = [highFrequency, errorSpike, silence, schemaMismatch] as const;

interface PatternRow {
  seq: string | number;
  id: string;
  kind: PatternKind;
  event_type: string | null;
  sector: Sector | null;
  window_start: Date;
  window_end: Date;
  detected_at: Date;
  score: number;
  evidence: JsonObject;
  snapshot_id: string;
}

export const PATTERN_COLUMNS = "seq, id, kind, event_type, sector, window_start, window_end, detected_at, score, evidence, snapshot_id";

export function toPattern(row: PatternRow): Pattern {
  return {
    id: row.id,
    kind: row.kind,
    event_type: row.event_type,
    sector: row.sector,
    window_start: iso(row.window_start),
    window_end: iso(row.window_end),
    detected_at: iso(row.detected_at),
    score: Number(row.score),
    evidence: row.evidence,
    snapshot_id: row.snapshot_id,
  };
}

export async function findPattern(sql: Sql, id: string): Promise<Pattern | undefined> {
  if (!isUuid(id)) return undefined;
  const { rows } = await sql.query<PatternRow>(`SELECT ${PATTERN_COLUMNS} FROM patterns WHERE id = $1`, [id]);
  return rows[0] ? toPattern(rows[0]) : undefined;
}

export interface PatternInternals extends PatternService {
  /** Detection against a given snapshot and window end (the loop pins both for a cycle). */
  detectWith(snapshot: Snapshot, w: Window): Promise<DetectionResult>;
}

export function createPatternService(ctx: DomainContext, snapshots: SnapshotInternals): PatternInternals {
  async function detectWith(snapshot: Snapshot, w: Window): Promise<DetectionResult> {
    ctx.metrics.inc("knhk_pattern_detection_attempts_total");
    const { patterns, observations } = await timed(ctx, "pattern_detection", async () => {
      const counted = await ctx.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM observations WHERE observed_at > $1 AND observed_at <= $2",
        [w.start, w.end],
      );
      const findings: Finding[] = [];
      for (const detector of DETECTORS) findings.push(...(await detector(ctx.db, snapshot.content, w)));
      const detectedAt = ctx.clock.now();
      const records = findings.map((f) => ({ id: randomUUID(), ...f }));
      const { rows } = records.length === 0 ? { rows: [] as PatternRow[] } : await ctx.db.query<PatternRow>(
        `INSERT INTO patterns (id, kind, event_type, sector, window_start, window_end, detected_at, score, evidence, snapshot_id)
         SELECT (r ->> 'id')::uuid, r ->> 'kind', r ->> 'event_type', r ->> 'sector', $1, $2, $3, (r ->> 'score')::float8, r -> 'evidence', $4
         FROM jsonb_array_elements($5::jsonb) r
         RETURNING ${PATTERN_COLUMNS}`,
        [w.start, w.end, detectedAt, snapshot.id, JSON.stringify(records)],
      );
      // One statement: all patterns of a run are stored or none; keep the detectors' order.
      const byId = new Map(rows.map((r) => [r.id, toPattern(r)]));
      const stored = records.map((r) => byId.get(r.id)!);
      return { patterns: stored, observations: counted.rows[0].n };
    });
    ctx.metrics.inc("knhk_pattern_detection_successes_total");
    for (const p of patterns) ctx.metrics.inc("knhk_patterns_detected_total", { kind: p.kind });
    await receipt(ctx, {
      operation: "pattern.detect",
      outcome: "success",
      evidence: {
        window_start: w.start.toISOString(),
        window_end: w.end.toISOString(),
        observations_in_window: observations,
        snapshot_id: snapshot.id,
        patterns_total: patterns.length,
        // Receipt evidence is bounded (64 KiB): the first patterns are listed, all are stored.
        patterns: patterns.slice(0, EVIDENCE_LIST_LIMIT).map((p) => ({ id: p.id, kind: p.kind, event_type: p.event_type, score: p.score })),
      },
      sector: "generic",
    });
    return { window_start: w.start.toISOString(), window_end: w.end.toISOString(), observations_in_window: observations, patterns };
  }

  async function detect(query: DetectQuery = {}): Promise<DetectionResult> {
    const seconds = windowSecondsOf(ctx, query.window_seconds);
    return detectWith(await snapshots.current(), windowEndingAt(ctx.clock.now(), seconds));
  }

  async function list(query: PatternListQuery = {}): Promise<Page<Pattern>> {
    const { limit, before } = pageArgs(query);
    if (query.kind !== undefined && !(PATTERN_KINDS as readonly string[]).includes(query.kind)) {
      throw new ValidationError("kind", `must be one of ${PATTERN_KINDS.join(", ")}`);
    }
    const { rows } = await ctx.db.query<PatternRow>(
      `SELECT ${PATTERN_COLUMNS} FROM patterns WHERE ($1::bigint IS NULL OR seq < $1) AND ($2::text IS NULL OR kind = $2)
       ORDER BY seq DESC LIMIT $3`,
      [before, query.kind ?? null, limit],
    );
    return { items: rows.map(toPattern), next_cursor: nextCursor(rows.map((r) => ({ seq: Number(r.seq) })), limit) };
  }

  async function get(id: string): Promise<Pattern> {
    const pattern = await findPattern(ctx.db, id);
    if (!pattern) throw new NotFoundError("pattern", id);
    return pattern;
  }

  return { detect, detectWith, list, get };
}

export function createAnalyticsService(ctx: DomainContext, snapshots: SnapshotInternals): AnalyticsService {
  return {
    async run(query: DetectQuery = {}): Promise<AnalyticsReport> {
      const w = windowEndingAt(ctx.clock.now(), windowSecondsOf(ctx, query.window_seconds));
      const snapshot = await snapshots.current();
      const byType = await ctx.db.query<{ event_type: string; n: number; errors: number; num_n: number; num_min: number | null; num_max: number | null; num_mean: number | null }>(
        `SELECT event_type, count(*)::int AS n, count(*) FILTER (WHERE is_error)::int AS errors,
                count(*) FILTER (WHERE jsonb_typeof(value) = 'number')::int AS num_n,
                min((value #>> '{}')::float8) FILTER (WHERE jsonb_typeof(value) = 'number') AS num_min,
                max((value #>> '{}')::float8) FILTER (WHERE jsonb_typeof(value) = 'number') AS num_max,
                avg((value #>> '{}')::float8) FILTER (WHERE jsonb_typeof(value) = 'number') AS num_mean
         FROM observations WHERE observed_at > $1 AND observed_at <= $2 GROUP BY event_type ORDER BY count(*) DESC, event_type`,
        [w.start, w.end],
      );
      const bySector = await ctx.db.query<{ sector: Sector; n: number }>(
        "SELECT sector, count(*)::int AS n FROM observations WHERE observed_at > $1 AND observed_at <= $2 GROUP BY sector ORDER BY sector",
        [w.start, w.end],
      );
      const flagged = await ctx.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM observations WHERE observed_at > $1 AND observed_at <= $2 AND flagged",
        [w.start, w.end],
      );
      const total = byType.rows.reduce((s, r) => s + r.n, 0);
      const errors = byType.rows.reduce((s, r) => s + r.errors, 0);
      return {
        window_start: w.start.toISOString(),
        window_end: w.end.toISOString(),
        total_observations: total,
        error_observations: errors,
        error_ratio: total === 0 ? 0 : round(errors / total),
        by_event_type: byType.rows.map((r) => ({
          event_type: r.event_type,
          count: r.n,
          errors: r.errors,
          numeric: r.num_n === 0 ? null : { count: r.num_n, min: Number(r.num_min), max: Number(r.num_max), mean: round(Number(r.num_mean)) },
        })),
        by_sector: bySector.rows.map((r) => ({ sector: r.sector, count: r.n })),
        flagged_observations: flagged.rows[0].n,
        current_snapshot_id: snapshot.id,
      };
    },
  };
}
