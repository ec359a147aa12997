/**
 * The four pattern detectors over a window (end - seconds, end]: high frequency per event type,
 * error spike per sector, silence, schema mismatch. Thresholds and schemas come from the
 * knowledge snapshot.
 *
 * Counting is one read: `summarizeWindow` reads the window and the history before it (the error
 * baseline and the silence lookback) from the per-second counts, grouped by event type and sector,
 * so its cost does not grow with the rate of the history. The detectors are
 * pure functions of that summary; only what a finding cites (sample observation ids, the most
 * frequent error type) and the per-schema conformance counts are read afterwards, and only for
 * what was found or declared.
 */
import type { Sql } from "../db/types";
import { iso, round6 } from "./context";
import { highFrequencyThreshold } from "./knowledge";
import { scopeCondition, type ObservationScope } from "./scope";
import type { EventSchema, JsonObject, KnowledgeContent, PatternKind, Sector } from "./types";

export interface Window {
  readonly start: Date;
  readonly end: Date;
  readonly seconds: number;
  /** Whose observations: one sector, or every sector but smoke (scope.ts). */
  readonly scope?: ObservationScope;
}

export function windowEndingAt(end: Date, seconds: number, scope?: ObservationScope): Window {
  return { start: new Date(end.getTime() - seconds * 1000), end, seconds, scope };
}

interface Finding {
  readonly kind: PatternKind;
  readonly event_type: string | null;
  readonly sector: Sector | null;
  readonly score: number;
  readonly evidence: JsonObject;
}

/** Counts of one (event type, sector) pair over the window and the periods before it. */
export interface SummaryCell {
  readonly event_type: string;
  readonly sector: Sector;
  /** In the window (start, end]. */
  readonly window_n: number;
  readonly window_errors: number;
  /** In the error-spike baseline (start - baseline_windows * seconds, start]. */
  readonly baseline_n: number;
  readonly baseline_errors: number;
  /** In the silence lookback (start - lookback_windows * seconds, start]. */
  readonly lookback_n: number;
  readonly lookback_last_seen: Date | null;
}

export interface WindowSummary {
  readonly window: Window;
  readonly cells: readonly SummaryCell[];
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const earlier = (w: Window, windows: number) => new Date(w.start.getTime() - windows * w.seconds * 1000);

/** The limits of the error-spike baseline and the silence lookback before the window. */
function horizonOf(content: KnowledgeContent, w: Window) {
  const baselineStart = earlier(w, content.thresholds.error_spike.baseline_windows);
  const lookbackStart = earlier(w, content.thresholds.silence.lookback_windows);
  return { baselineStart, lookbackStart, from: baselineStart < lookbackStart ? baselineStart : lookbackStart };
}

const SECOND_MS = 1000;
const floorSecond = (ms: number) => Math.floor(ms / SECOND_MS) * SECOND_MS;

interface SegmentCounts {
  readonly seg: number;
  readonly event_type: string;
  readonly sector: Sector;
  readonly n: number;
  readonly errors: number;
  readonly last_seen: Date | null;
}

/**
 * One read of (min(baseline, lookback) start, window end], whatever the history holds: the
 * horizon is cut at the baseline, lookback and window starts into segments (a, b]; the whole
 * seconds of each segment come from observation_counts (one row per second, event type and
 * sector, maintained at every write by migration 0010's trigger), and only the partial seconds at
 * a segment's ends from the observations themselves. Exactly what summarizeWindowByScan counts.
 */
export async function summarizeWindow(sql: Sql, content: KnowledgeContent, w: Window): Promise<WindowSummary> {
  const { baselineStart, lookbackStart, from } = horizonOf(content, w);
  const cuts = [...new Set([from, baselineStart, lookbackStart, w.start, w.end].map((d) => d.getTime()))].sort((a, b) => a - b);
  const params: unknown[] = [];
  const param = (ms: number) => {
    params.push(new Date(ms));
    return `$${params.length}`;
  };
  const whole: string[] = [];
  const partial: string[] = [];
  const segOfBucket: string[] = [];
  const segOfRow: string[] = [];
  cuts.slice(1).forEach((b, seg) => {
    const a = cuts[seg];
    const lo = floorSecond(a) + SECOND_MS; // first whole second inside (a, b]
    const hi = floorSecond(b); // the whole seconds end before hi
    segOfRow.push(`WHEN observed_at <= ${param(b)} THEN ${seg}`);
    if (lo < hi) {
      const [pLo, pHi] = [param(lo), param(hi)];
      whole.push(`(bucket >= ${pLo} AND bucket < ${pHi})`);
      segOfBucket.push(`WHEN bucket < ${pHi} THEN ${seg}`);
      partial.push(`(observed_at > ${param(a)} AND observed_at < ${pLo})`, `(observed_at >= ${pHi} AND observed_at <= ${param(b)})`);
    } else {
      partial.push(`(observed_at > ${param(a)} AND observed_at <= ${param(b)})`);
    }
  });
  const parts = [
    `SELECT CASE ${segOfRow.join(" ")} END AS seg, event_type, sector, count(*)::float8 AS n, count(*) FILTER (WHERE is_error)::float8 AS errors, max(observed_at) AS last_seen
     FROM observations WHERE (${partial.join(" OR ")}) AND ${scopeCondition(w.scope)} GROUP BY 1, 2, 3`,
  ];
  if (whole.length > 0) {
    parts.push(
      `SELECT CASE ${segOfBucket.join(" ")} END AS seg, event_type, sector, sum(n)::float8 AS n, sum(errors)::float8 AS errors, max(last_seen) AS last_seen
       FROM observation_counts WHERE (${whole.join(" OR ")}) AND n > 0 AND ${scopeCondition(w.scope)} GROUP BY 1, 2, 3`,
    );
  }
  const { rows } = await sql.query<SegmentCounts>(parts.join(" UNION ALL "), params);
  const segEnds = cuts.slice(1);
  const within = (seg: number, start: Date, end: Date) => segEnds[seg] > start.getTime() && segEnds[seg] <= end.getTime();
  const cells: SummaryCell[] = rows.map((r) => {
    const inWindow = within(r.seg, w.start, w.end);
    const inBaseline = within(r.seg, baselineStart, w.start);
    const inLookback = within(r.seg, lookbackStart, w.start);
    return {
      event_type: r.event_type,
      sector: r.sector,
      window_n: inWindow ? r.n : 0,
      window_errors: inWindow ? r.errors : 0,
      baseline_n: inBaseline ? r.n : 0,
      baseline_errors: inBaseline ? r.errors : 0,
      lookback_n: inLookback ? r.n : 0,
      lookback_last_seen: inLookback ? r.last_seen : null,
    };
  });
  return { window: w, cells: mergeCells(cells) };
}

/**
 * The horizon is read in this many consecutive time slices, issued together: on a pool each slice
 * runs on its own connection and backend, and the counts are summed. On one connection (PGlite) they queue.
 */
const SUMMARY_SLICES = 2;

/**
 * The reference summarizeWindow is held to: one scan of every observation of
 * (min(baseline, lookback) start, window end], grouped by event type and sector. Its cost grows
 * with the history; tests and the detect-history benchmark compare against it.
 */
export async function summarizeWindowByScan(sql: Sql, content: KnowledgeContent, w: Window, slices = SUMMARY_SLICES): Promise<WindowSummary> {
  const { baselineStart, lookbackStart, from } = horizonOf(content, w);
  const span = w.end.getTime() - from.getTime();
  const bounds = Array.from({ length: slices + 1 }, (_, i) =>
    i === 0 ? from : i === slices ? w.end : new Date(from.getTime() + Math.round((span * i) / slices)),
  );
  const parts = await Promise.all(
    bounds.slice(1).map((to, i) =>
      sql.query<SummaryCell>(
        `SELECT event_type, sector,
                count(*) FILTER (WHERE observed_at > $3)::int AS window_n,
                count(*) FILTER (WHERE observed_at > $3 AND is_error)::int AS window_errors,
                count(*) FILTER (WHERE observed_at > $1 AND observed_at <= $3)::int AS baseline_n,
                count(*) FILTER (WHERE observed_at > $1 AND observed_at <= $3 AND is_error)::int AS baseline_errors,
                count(*) FILTER (WHERE observed_at > $2 AND observed_at <= $3)::int AS lookback_n,
                max(observed_at) FILTER (WHERE observed_at > $2 AND observed_at <= $3) AS lookback_last_seen
         FROM observations WHERE observed_at > $4 AND observed_at <= $5 AND ${scopeCondition(w.scope)}
         GROUP BY event_type, sector`,
        [baselineStart, lookbackStart, w.start, bounds[i], to],
      ),
    ),
  );
  return { window: w, cells: mergeCells(parts.flatMap((p) => p.rows)) };
}

/** Sums the slices' counts per (event type, sector), latest last_seen; sorted by type, then sector. */
export function mergeCells(rows: readonly SummaryCell[]): SummaryCell[] {
  const merged = new Map<string, SummaryCell>();
  for (const r of rows) {
    const key = `${r.event_type}\u0000${r.sector}`;
    const m = merged.get(key);
    if (!m) {
      merged.set(key, { ...r });
      continue;
    }
    const lastSeen = [m.lookback_last_seen, r.lookback_last_seen].filter((d): d is Date => d !== null).map((d) => new Date(d));
    merged.set(key, {
      event_type: r.event_type,
      sector: r.sector,
      window_n: m.window_n + r.window_n,
      window_errors: m.window_errors + r.window_errors,
      baseline_n: m.baseline_n + r.baseline_n,
      baseline_errors: m.baseline_errors + r.baseline_errors,
      lookback_n: m.lookback_n + r.lookback_n,
      lookback_last_seen: lastSeen.length ? new Date(Math.max(...lastSeen.map((d) => d.getTime()))) : null,
    });
  }
  return [...merged.values()].sort((a, b) => byText(a.event_type, b.event_type) || byText(a.sector, b.sector));
}

function observationsInWindow(summary: WindowSummary): number {
  return summary.cells.reduce((n, c) => n + c.window_n, 0);
}

/** Groups cells by a key, in the cells' (sorted) order. */
function groupBy(cells: readonly SummaryCell[], key: (c: SummaryCell) => string): Map<string, SummaryCell[]> {
  const groups = new Map<string, SummaryCell[]>();
  for (const c of cells) {
    const k = key(c);
    const group = groups.get(k);
    if (group) group.push(c);
    else groups.set(k, [c]);
  }
  return groups;
}

const sum = (cells: readonly SummaryCell[], field: "window_n" | "window_errors" | "baseline_n" | "baseline_errors" | "lookback_n") =>
  cells.reduce((n, c) => n + c[field], 0);

/** Up to five most recent observation ids per event type in the window (backward index scans). */
async function recentIdsByType(sql: Sql, eventTypes: readonly string[], w: Window): Promise<Map<string, string[]>> {
  const { rows } = await sql.query<{ event_type: string; ids: string[] }>(
    `SELECT t.event_type, ARRAY(
       SELECT o.id::text FROM observations o
       WHERE o.event_type = t.event_type AND o.observed_at > $2 AND o.observed_at <= $3 AND ${scopeCondition(w.scope, "o.sector")}
       ORDER BY o.observed_at DESC, o.seq DESC LIMIT 5) AS ids
     FROM unnest($1::text[]) AS t(event_type)`,
    [eventTypes, w.start, w.end],
  );
  return new Map(rows.map((r) => [r.event_type, r.ids]));
}

async function highFrequency(sql: Sql, content: KnowledgeContent, summary: WindowSummary): Promise<Finding[]> {
  const w = summary.window;
  const detected = [...groupBy(summary.cells.filter((c) => c.window_n > 0), (c) => c.event_type)].filter(
    ([eventType, cells]) => sum(cells, "window_n") > highFrequencyThreshold(content, eventType),
  );
  if (detected.length === 0) return [];
  const samples = await recentIdsByType(sql, detected.map(([t]) => t), w);
  return detected.map(([eventType, cells]): Finding => {
    const count = sum(cells, "window_n");
    const threshold = highFrequencyThreshold(content, eventType);
    const bySector = Object.fromEntries(cells.map((c) => [c.sector, c.window_n]));
    return {
      kind: "high_frequency",
      event_type: eventType,
      sector: cells.length === 1 ? cells[0].sector : null,
      score: round6(count / threshold),
      evidence: { count, threshold, window_seconds: w.seconds, by_sector: bySector, sample_observation_ids: samples.get(eventType) ?? [] },
    };
  });
}

async function errorSpike(sql: Sql, content: KnowledgeContent, summary: WindowSummary): Promise<Finding[]> {
  const rule = content.thresholds.error_spike;
  const w = summary.window;
  const spiking = [...groupBy(summary.cells, (c) => c.sector)]
    .map(([sector, cells]) => {
      const total = sum(cells, "window_n");
      const errors = sum(cells, "window_errors");
      const baseTotal = sum(cells, "baseline_n");
      const baseErrors = sum(cells, "baseline_errors");
      return { sector: sector as Sector, total, errors, baseTotal, baseErrors, ratio: total === 0 ? 0 : errors / total, baseline: baseTotal === 0 ? 0 : baseErrors / baseTotal };
    })
    .filter((s) => s.total > 0 && s.errors >= rule.min_errors && s.ratio >= rule.ratio && s.ratio >= rule.factor * s.baseline);
  if (spiking.length === 0) return [];
  // The most frequent error type (ties: the first in the database's order, as mode() defines) and samples.
  const { rows } = await sql.query<{ sector: Sector; top_error_type: string | null; sample: string[] | null }>(
    `SELECT sector, mode() WITHIN GROUP (ORDER BY event_type) AS top_error_type,
            (array_agg(id::text ORDER BY seq DESC))[1:5] AS sample
     FROM observations WHERE observed_at > $1 AND observed_at <= $2 AND is_error AND sector = ANY($3::text[]) AND ${scopeCondition(w.scope)} GROUP BY sector`,
    [w.start, w.end, spiking.map((s) => s.sector)],
  );
  const cited = new Map(rows.map((r) => [r.sector, r]));
  return spiking.map((s): Finding => ({
    kind: "error_spike",
    event_type: cited.get(s.sector)?.top_error_type ?? null,
    sector: s.sector,
    score: round6(s.ratio / rule.ratio),
    evidence: {
      errors: s.errors,
      total: s.total,
      error_ratio: round6(s.ratio),
      baseline_ratio: round6(s.baseline),
      baseline_total: s.baseTotal,
      thresholds: { min_errors: rule.min_errors, ratio: rule.ratio, factor: rule.factor, baseline_windows: rule.baseline_windows },
      sample_observation_ids: cited.get(s.sector)?.sample ?? [],
    },
  }));
}

function silence(content: KnowledgeContent, summary: WindowSummary): Finding[] {
  const lookback = content.thresholds.silence.lookback_windows;
  const findings: Finding[] = [];
  for (const [eventType, cells] of groupBy(summary.cells, (c) => c.event_type)) {
    const seenBefore = cells.filter((c) => c.lookback_n > 0);
    if (seenBefore.length === 0 || sum(cells, "window_n") > 0) continue;
    if (content.inactive_event_types.includes(eventType)) continue;
    const n = sum(seenBefore, "lookback_n");
    const lastSeen = seenBefore.reduce((latest, c) => (c.lookback_last_seen && new Date(c.lookback_last_seen) > latest ? new Date(c.lookback_last_seen) : latest), new Date(0));
    findings.push({
      kind: "silence",
      event_type: eventType,
      sector: seenBefore.length === 1 ? seenBefore[0].sector : null,
      score: round6(n / lookback),
      evidence: { count_before_window: n, expected_per_window: round6(n / lookback), last_seen: iso(lastSeen), lookback_windows: lookback, count_in_window: 0 },
    });
  }
  return findings;
}

/** SQL boolean: the row conforms to the schema. Pushes its parameters onto params. */
function conformanceSql(schema: EventSchema, params: unknown[]): string {
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
  scope?: ObservationScope,
): Promise<{ total: number; conforming: number; mismatched_ids: string[] }> {
  const params: unknown[] = [eventType, start, end];
  const conforms = conformanceSql(schema, params);
  const { rows } = await sql.query<{ total: number; conforming: number; mismatched_ids: string[] | null }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE ${conforms})::int AS conforming,
            (array_agg(id::text ORDER BY seq DESC) FILTER (WHERE NOT ${conforms}))[1:5] AS mismatched_ids
     FROM observations WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3 AND ${scopeCondition(scope)}`,
    params,
  );
  return { total: rows[0].total, conforming: rows[0].conforming, mismatched_ids: rows[0].mismatched_ids ?? [] };
}

async function schemaMismatch(sql: Sql, content: KnowledgeContent, summary: WindowSummary): Promise<Finding[]> {
  const w = summary.window;
  const seen = new Set(summary.cells.filter((c) => c.window_n > 0).map((c) => c.event_type));
  // Declared types with no observation in the window cannot mismatch: no query for them.
  const schemas = Object.entries(content.schemas)
    .filter(([eventType]) => seen.has(eventType))
    .sort(([a], [b]) => byText(a, b));
  const counts = await Promise.all(schemas.map(([eventType, schema]) => schemaConformance(sql, eventType, schema, w.start, w.end, w.scope)));
  const minRatio = content.thresholds.schema_mismatch.min_ratio;
  const findings: Finding[] = [];
  schemas.forEach(([eventType, schema], i) => {
    const c = counts[i];
    if (c.total === 0 || c.total === c.conforming) return;
    const ratio = (c.total - c.conforming) / c.total;
    if (ratio < minRatio) return;
    findings.push({
      kind: "schema_mismatch",
      event_type: eventType,
      sector: null,
      score: round6(ratio / minRatio),
      evidence: { total: c.total, mismatched: c.total - c.conforming, mismatch_ratio: round6(ratio), min_ratio: minRatio, declared_schema: schema as unknown as JsonObject, sample_observation_ids: c.mismatched_ids },
    });
  });
  return findings;
}

/** All four detectors over one summary, findings in detector order (summarize: tests pass the full scan to compare). */
export async function detectAll(
  sql: Sql,
  content: KnowledgeContent,
  w: Window,
  summarize: (sql: Sql, content: KnowledgeContent, w: Window) => Promise<WindowSummary> = summarizeWindow,
): Promise<{ findings: Finding[]; observations: number }> {
  const summary = await summarize(sql, content, w);
  const [hf, es, sm] = await Promise.all([highFrequency(sql, content, summary), errorSpike(sql, content, summary), schemaMismatch(sql, content, summary)]);
  return { findings: [...hf, ...es, ...silence(content, summary), ...sm], observations: observationsInWindow(summary) };
}
