/**
 * Pattern detection runs (detectors.ts finds, this module stores the patterns and stages the
 * run's receipt in the same transaction), pattern queries, and the analytics report over a window.
 */
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/types";
import { iso, isUuid, nextCursor, pageArgs, receipted, round6, timed, windowSecondsOf, type DomainContext } from "./context";
import { NotFoundError, ValidationError } from "./errors";
import { detectAll, type Window, windowEndingAt } from "./detectors";
import { receiptSector, scopeCondition } from "./scope";
import type { AnalyticsService, PatternService } from "./index";
import type { SnapshotInternals } from "./snapshots";
import {
  PATTERN_KINDS,
  type AnalyticsReport,
  type DetectQuery,
  type DetectionResult,
  type JsonObject,
  type Pattern,
  type PatternKind,
  type PatternListQuery,
  type Page,
  type Sector,
  type Snapshot,
} from "./types";

/** Most items a receipt's evidence lists. */
export const EVIDENCE_LIST_LIMIT = 50;

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
      const { findings, observations } = await detectAll(ctx.db, snapshot.content, w);
      const detectedAt = ctx.clock.now();
      // A run scoped to one sector marks all its patterns with it (schema findings carry none of their own).
      const records = findings.map((f) => ({ id: randomUUID(), ...f, sector: f.sector ?? w.scope ?? null }));
      // The run's patterns and its receipt commit together (the receipt is staged in the outbox).
      const { value: stored } = await receipted(ctx, async (tx) => {
        // One statement: all patterns of a run are stored or none; keep the detectors' order.
        const { rows } = records.length === 0 ? { rows: [] as PatternRow[] } : await tx.query<PatternRow>(
          `INSERT INTO patterns (id, kind, event_type, sector, window_start, window_end, detected_at, score, evidence, snapshot_id)
           SELECT (r ->> 'id')::uuid, r ->> 'kind', r ->> 'event_type', r ->> 'sector', $1, $2, $3, (r ->> 'score')::float8, r -> 'evidence', $4
           FROM jsonb_array_elements($5::jsonb) r
           RETURNING ${PATTERN_COLUMNS}`,
          [w.start, w.end, detectedAt, snapshot.id, JSON.stringify(records)],
        );
        const byId = new Map(rows.map((r) => [r.id, toPattern(r)]));
        const patterns = records.map((r) => byId.get(r.id)!);
        return {
          value: patterns,
          receipt: {
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
            sector: receiptSector(w.scope),
          },
        };
      });
      return { patterns: stored, observations };
    });
    ctx.metrics.inc("knhk_pattern_detection_successes_total");
    for (const p of patterns) ctx.metrics.inc("knhk_patterns_detected_total", { kind: p.kind });
    return { window_start: w.start.toISOString(), window_end: w.end.toISOString(), observations_in_window: observations, patterns };
  }

  async function detect(query: DetectQuery = {}): Promise<DetectionResult> {
    const seconds = windowSecondsOf(ctx, query.window_seconds);
    return detectWith(await snapshots.current(), windowEndingAt(ctx.clock.now(), seconds, query.sector));
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

/** A numeric aggregate as a JSON number: values stored beyond float8's range (only by direct SQL) are clamped to it. */
function asDouble(numeric: string | null): number {
  const n = Number(numeric);
  return Number.isFinite(n) ? n : Math.sign(n) * Number.MAX_VALUE;
}

/** round6 where six decimals exist: beyond 1e9, n * 1e6 loses them anyway and can overflow to Infinity. */
const round6Finite = (n: number): number => (Math.abs(n) < 1e9 ? round6(n) : n);

export function createAnalyticsService(ctx: DomainContext, snapshots: SnapshotInternals): AnalyticsService {
  return {
    async run(query: DetectQuery = {}): Promise<AnalyticsReport> {
      const w = windowEndingAt(ctx.clock.now(), windowSecondsOf(ctx, query.window_seconds), query.sector);
      const scope = scopeCondition(w.scope);
      const snapshot = await snapshots.current();
      // numeric, not float8: a sum of stored values near 1.8e308 overflows float8 (22003) and would
      // fail every report over a window holding them; numeric sums cannot overflow.
      const byType = await ctx.db.query<{ event_type: string; n: number; errors: number; num_n: number; num_min: string | null; num_max: string | null; num_mean: string | null }>(
        `SELECT event_type, count(*)::int AS n, count(*) FILTER (WHERE is_error)::int AS errors,
                count(*) FILTER (WHERE jsonb_typeof(value) = 'number')::int AS num_n,
                min((value #>> '{}')::numeric) FILTER (WHERE jsonb_typeof(value) = 'number') AS num_min,
                max((value #>> '{}')::numeric) FILTER (WHERE jsonb_typeof(value) = 'number') AS num_max,
                avg((value #>> '{}')::numeric) FILTER (WHERE jsonb_typeof(value) = 'number') AS num_mean
         FROM observations WHERE observed_at > $1 AND observed_at <= $2 AND ${scope} GROUP BY event_type ORDER BY count(*) DESC, event_type`,
        [w.start, w.end],
      );
      const bySector = await ctx.db.query<{ sector: Sector; n: number }>(
        `SELECT sector, count(*)::int AS n FROM observations WHERE observed_at > $1 AND observed_at <= $2 AND ${scope} GROUP BY sector ORDER BY sector`,
        [w.start, w.end],
      );
      const flagged = await ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM observations WHERE observed_at > $1 AND observed_at <= $2 AND flagged AND ${scope}`,
        [w.start, w.end],
      );
      const total = byType.rows.reduce((s, r) => s + r.n, 0);
      const errors = byType.rows.reduce((s, r) => s + r.errors, 0);
      return {
        window_start: w.start.toISOString(),
        window_end: w.end.toISOString(),
        total_observations: total,
        error_observations: errors,
        error_ratio: total === 0 ? 0 : round6(errors / total),
        by_event_type: byType.rows.map((r) => ({
          event_type: r.event_type,
          count: r.n,
          errors: r.errors,
          numeric: r.num_n === 0 ? null : { count: r.num_n, min: asDouble(r.num_min), max: asDouble(r.num_max), mean: round6Finite(asDouble(r.num_mean)) },
        })),
        by_sector: bySector.rows.map((r) => ({ sector: r.sector, count: r.n })),
        flagged_observations: flagged.rows[0].n,
        current_snapshot_id: snapshot.id,
      };
    },
  };
}
