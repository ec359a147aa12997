/**
 * Proposal validation. Every check computes its verdict from stored data, inside one read-only
 * REPEATABLE READ transaction (one consistent view), within VALIDATION_TIMEOUT_MS.
 *
 * Static checks (mandatory; a failure stops validation):
 *   S1 change_well_formed     the stored change parses against the change schema
 *   S2 candidate_matches      the candidate snapshot is exactly base + change, child of base
 *   S3 candidate_well_formed  the candidate content parses against the knowledge schema
 *   S4 change_fits_pattern    the change kind and event type answer the pattern it cites
 * Invariants (mandatory):
 *   Q1 no_retrocausation   nothing relied on is newer than the reliance: pattern window end <=
 *                          detected_at <= proposal created_at <= validation start; candidate not
 *                          older than its parent; every observation the evidence cites was
 *                          stored no later than the detection
 *   Q2 sound_against_data  the change agrees with the stored observations: a schema is met by >=
 *                          95% of the event type's observations in the pattern window; a guard's
 *                          type agrees with the declared schema or with >= 95% of the present
 *                          values; a raised threshold is above the recounted rate; an event type
 *                          marked inactive has no observations since the window started
 *   Q3 guard_budget        replaying every guard of the candidate on up to 200 stored
 *                          observations through the hot path kernel parks nothing (no operation
 *                          needs more than 8 ticks)
 *   Q4 chain_intact        candidate -> base -> ... -> genesis: each parent exists, versions step
 *                          by one, every content hash recomputes, no cycle; the base is the
 *                          current snapshot; the pattern was detected under a snapshot of the
 *                          chain; every event type the candidate names was observed at least once
 *   Q5 bounded_change      exactly one entry (threshold, schema, guard, inactive type) differs
 *                          between base and candidate: not a no-op, not a bundle
 * Tick budget (mandatory):
 *   T1 tick_budget         in the same replay, no observation costs more than 64 ticks of append
 *                          and guard evaluation (8 operations of 8 ticks)
 * Doctrine:
 *   D1 evidence_minimum (mandatory)   the pattern rests on >= 5 observations, recounted now
 *   D2 regulated_flag_only (mandatory) a guard reaching finance or healthcare only flags
 *   D3 threshold_step (warning)       a threshold moves by at most 4x
 *   D4 flag_share (advisory)          a new guard flags at most 50% of the replayed observations
 *   D5 evidence_fresh (warning)       the pattern was detected at most 2 windows ago
 */
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/types";
import { iso, receipted, timed, type DomainContext } from "./context";
import { ConflictError, NotFoundError, ValidationError } from "./errors";
import { runGuards } from "./hotpath-port";
import {
  applyChange,
  changedEntries,
  contentHash,
  describeIssue,
  highFrequencyThreshold,
  knowledgeContentSchema,
  proposalChangeSchema,
} from "./knowledge";
import { guardsFor } from "./observations";
import { schemaConformance } from "./detectors";
import { patternScope, scopeCondition } from "./scope";
import { findPattern } from "./patterns";
import { findProposal } from "./proposals";
import { currentSnapshotId, findSnapshot } from "./snapshots";
import type {
  CheckResult,
  CheckStage,
  Enforcement,
  Guard,
  JsonObject,
  JsonValue,
  Pattern,
  Proposal,
  ProposalChange,
  Snapshot,
  ValidationOutcome,
  ValidationReport,
} from "./types";

export const DOCTRINE = {
  minEvidence: 5,
  minConformance: 0.95,
  maxChangeEntries: 1,
  maxTicksPerObservation: 64,
  regulatedSectors: ["finance", "healthcare"] as readonly string[],
  maxThresholdStep: 4,
  maxFlagShare: 0.5,
  staleAfterWindows: 2,
  replaySample: 200,
  maxChainLength: 100_000,
} as const;

export const MAX_TIMEOUT_MS = 600_000;

const PATTERN_CHANGE: Record<Pattern["kind"], ProposalChange["kind"]> = {
  high_frequency: "adjust_threshold",
  error_spike: "add_guard",
  silence: "mark_inactive",
  schema_mismatch: "add_schema",
};

class DeadlineExceeded extends Error {}

interface Replay {
  readonly observations: number;
  readonly parked: { guard_id: string; observation_id: string; reason: string }[];
  readonly maxOperationTicks: number;
  readonly maxObservationTicks: number;
  readonly heaviestObservation: string | null;
  /** Failures per guard id, and how many observations each guard was evaluated on. */
  readonly failed: Record<string, number>;
  readonly evaluated: Record<string, number>;
}

function changeEventType(change: ProposalChange): string {
  return change.kind === "add_guard" ? change.guard.event_type : change.event_type;
}

/** Runs the checks into `checks`; throws DeadlineExceeded when the deadline passes between checks. */
async function runChecks(ctx: DomainContext, tx: Sql, proposal: Proposal, checks: CheckResult[], startedAt: Date, deadline: number): Promise<void> {
  const add = (stage: CheckStage, id: string, name: string, enforcement: Enforcement, passed: boolean, detail: string, figures?: JsonObject) => {
    checks.push({ stage, id, name, enforcement, passed, detail, ...(figures ? { figures } : {}) });
    if (Date.now() > deadline) throw new DeadlineExceeded();
  };

  const candidate = await findSnapshot(tx, proposal.snapshot_id);
  const base = await findSnapshot(tx, proposal.base_snapshot_id);
  const pattern = await findPattern(tx, proposal.pattern_id);
  if (!candidate || !base || !pattern) {
    add("static", "S0", "references_resolve", "mandatory", false, `missing: ${[!candidate && "candidate snapshot", !base && "base snapshot", !pattern && "pattern"].filter(Boolean).join(", ")}`);
    return;
  }

  // ---- static checks
  const parsedChange = proposalChangeSchema.safeParse(proposal.change);
  add("static", "S1", "change_well_formed", "mandatory", parsedChange.success, parsedChange.success ? `a well-formed ${proposal.change.kind} change` : `malformed change: ${describeIssue(parsedChange.error)}`);
  if (!parsedChange.success) return;
  const change = parsedChange.data as ProposalChange;

  const expected = contentHash(applyChange(base.content, change));
  const matches = expected === contentHash(candidate.content) && candidate.parent_id === base.id;
  add("static", "S2", "candidate_matches", "mandatory", matches,
    matches ? "the candidate is the base snapshot with the change applied" : candidate.parent_id !== base.id
      ? `the candidate's parent ${candidate.parent_id} is not the base ${base.id}`
      : `the candidate content (hash ${contentHash(candidate.content).slice(0, 12)}) differs from base + change (hash ${expected.slice(0, 12)})`);
  const parsedContent = knowledgeContentSchema.safeParse(candidate.content);
  add("static", "S3", "candidate_well_formed", "mandatory", parsedContent.success, parsedContent.success ? "the candidate content is well formed" : `malformed candidate content: ${describeIssue(parsedContent.error)}`);
  const fitsKind = PATTERN_CHANGE[pattern.kind] === change.kind;
  const fitsType = pattern.event_type === null || changeEventType(change) === pattern.event_type;
  add("static", "S4", "change_fits_pattern", "mandatory", fitsKind && fitsType,
    !fitsKind ? `a ${pattern.kind} pattern calls for ${PATTERN_CHANGE[pattern.kind]}, not ${change.kind}`
      : !fitsType ? `the change names ${changeEventType(change)} but the pattern is about ${pattern.event_type}`
      : `${change.kind} answers the ${pattern.kind} pattern on ${pattern.event_type}`);
  if (checks.some((c) => !c.passed)) return;

  // ---- Q1 no retrocausation
  {
    const violations: string[] = [];
    const t = (s: string) => new Date(s).getTime();
    if (t(pattern.window_end) > t(pattern.detected_at)) violations.push(`pattern window ends ${pattern.window_end}, after its detection ${pattern.detected_at}`);
    if (t(pattern.detected_at) > t(proposal.created_at)) violations.push(`pattern detected ${pattern.detected_at}, after the proposal was created ${proposal.created_at}`);
    if (t(proposal.created_at) > startedAt.getTime()) violations.push(`proposal created ${proposal.created_at}, after this validation started ${startedAt.toISOString()}`);
    if (t(candidate.created_at) < t(base.created_at)) violations.push(`candidate created ${candidate.created_at}, before its parent ${base.created_at}`);
    const cited = Array.isArray(pattern.evidence.sample_observation_ids) ? (pattern.evidence.sample_observation_ids as string[]) : [];
    if (cited.length > 0) {
      const { rows } = await tx.query<{ id: string; created_at: Date }>(
        "SELECT id::text AS id, created_at FROM observations WHERE id::text = ANY($1::text[]) AND created_at > $2",
        [cited, new Date(pattern.detected_at)],
      );
      for (const r of rows) violations.push(`evidence cites observation ${r.id}, stored ${iso(r.created_at)}, after the detection`);
    }
    add("invariant", "Q1", "no_retrocausation", "mandatory", violations.length === 0,
      violations.length === 0 ? `time order holds (pattern, proposal, candidate, ${cited.length} cited observations)` : violations.join("; "),
      { violations: violations.length, cited_observations: cited.length });
  }

  // ---- Q2 sound against stored data
  {
    const windowStart = new Date(pattern.window_start);
    const windowEnd = new Date(pattern.window_end);
    let passed: boolean;
    let detail: string;
    let figures: JsonObject = {};
    switch (change.kind) {
      case "add_schema": {
        const c = await schemaConformance(tx, change.event_type, change.schema, windowStart, windowEnd, patternScope(pattern));
        const share = c.total === 0 ? 0 : c.conforming / c.total;
        const clashing = candidate.content.guards.filter((g) => g.event_type === change.event_type && g.check.op === "datatype" && g.check.path === "value" && g.check.datatype !== change.schema.value_type);
        passed = c.total > 0 && share >= DOCTRINE.minConformance && clashing.length === 0;
        detail = c.total === 0 ? `no ${change.event_type} observations in the pattern window to check the schema against`
          : clashing.length > 0 ? `guard ${clashing[0].id} requires the value to be ${(clashing[0].check as { datatype: string }).datatype}, the schema says ${change.schema.value_type}`
          : `${c.conforming} of ${c.total} observations conform (${(share * 100).toFixed(1)}%, need ${DOCTRINE.minConformance * 100}%)`;
        figures = { total: c.total, conforming: c.conforming };
        break;
      }
      case "add_guard": {
        const guard = change.guard;
        const schema = guard.event_type === "*" ? undefined : candidate.content.schemas[guard.event_type];
        const declared = !schema ? undefined : guard.check.path === "value" ? schema.value_type : schema.metadata[guard.check.path.slice("metadata.".length)];
        const wanted = guard.check.op === "datatype" ? guard.check.datatype : guard.check.op === "required" ? undefined : "number";
        if (wanted === undefined) {
          passed = declared !== "null";
          detail = passed ? "a presence check; the field's declared type does not contradict it" : `${guard.check.path} is declared null: requiring it is vacuous`;
        } else if (declared !== undefined) {
          passed = declared === wanted || (wanted === "number" && declared === "array");
          detail = passed ? `${guard.check.path} is declared ${declared}, as the guard expects` : `${guard.check.path} is declared ${declared}, the guard expects ${wanted}`;
        } else {
          const key = guard.check.path === "value" ? null : guard.check.path.slice("metadata.".length);
          const { rows } = await tx.query<{ present: number; typed: number }>(
            `WITH f AS (SELECT CASE WHEN $1::text IS NULL THEN value ELSE metadata -> $1 END AS v FROM observations
                        WHERE ($2 = '*' OR event_type = $2) AND ($3 = '*' OR sector = $3) AND observed_at > $4 AND observed_at <= $5 AND ${scopeCondition(patternScope(pattern))})
             SELECT count(*) FILTER (WHERE v IS NOT NULL)::int AS present,
                    count(*) FILTER (WHERE jsonb_typeof(v) = $6 OR ($6 = 'number' AND jsonb_typeof(v) = 'array'))::int AS typed FROM f`,
            [key, guard.event_type, guard.sector, windowStart, windowEnd, wanted],
          );
          const { present, typed } = rows[0];
          const share = present === 0 ? 0 : typed / present;
          passed = present > 0 && share >= DOCTRINE.minConformance;
          detail = present === 0 ? `no stored observation in the pattern window has ${guard.check.path}: its type is unknown`
            : `${typed} of ${present} stored ${guard.check.path} values are ${wanted} (${(share * 100).toFixed(1)}%, need ${DOCTRINE.minConformance * 100}%)`;
          figures = { present, typed };
        }
        break;
      }
      case "adjust_threshold": {
        const { rows } = await tx.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM observations WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3 AND ${scopeCondition(patternScope(pattern))}`,
          [change.event_type, windowStart, windowEnd],
        );
        passed = rows[0].n <= change.to;
        detail = passed ? `the recounted rate ${rows[0].n} fits under the new threshold ${change.to}` : `the recounted rate ${rows[0].n} still exceeds the new threshold ${change.to}`;
        figures = { recounted: rows[0].n, threshold: change.to };
        break;
      }
      case "mark_inactive": {
        const { rows } = await tx.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM observations WHERE event_type = $1 AND observed_at > $2 AND ${scopeCondition(patternScope(pattern))}`,
          [change.event_type, windowStart],
        );
        passed = rows[0].n === 0;
        detail = passed ? `no ${change.event_type} observation since ${pattern.window_start}` : `${rows[0].n} ${change.event_type} observations arrived since ${pattern.window_start}: it is not inactive`;
        figures = { since_window_start: rows[0].n };
        break;
      }
    }
    add("invariant", "Q2", "sound_against_data", "mandatory", passed, detail, figures);
  }

  // ---- Q3 guard budget + T1 tick budget: replay the candidate's guards through the kernel
  const replay = await replayGuards(ctx, tx, candidate, new Date(pattern.window_end));
  add("invariant", "Q3", "guard_budget", "mandatory", replay.parked.length === 0,
    replay.parked.length === 0
      ? `${replay.observations} observations replayed, every guard operation ran on the hot path (max ${replay.maxOperationTicks} ticks)`
      : `${replay.parked.length} guard evaluations parked, e.g. guard ${replay.parked[0].guard_id} on observation ${replay.parked[0].observation_id} (${replay.parked[0].reason})`,
    { observations: replay.observations, parked: replay.parked.length, max_operation_ticks: replay.maxOperationTicks });

  // ---- Q4 chain intact
  {
    const problems: string[] = [];
    const currentId = await currentSnapshotId(tx);
    if (candidate.parent_id !== proposal.base_snapshot_id) problems.push(`candidate parent ${candidate.parent_id} is not the base ${proposal.base_snapshot_id}`);
    if (proposal.base_snapshot_id !== currentId) problems.push(`base ${proposal.base_snapshot_id} is no longer current (${currentId}): rebase the proposal`);
    const chain: string[] = [];
    let node: Snapshot | undefined = candidate;
    while (node) {
      if (chain.includes(node.id) || chain.length > DOCTRINE.maxChainLength) {
        problems.push(`cycle in the parent chain at ${node.id}`);
        break;
      }
      chain.push(node.id);
      if (contentHash(node.content) !== node.content_hash) problems.push(`snapshot ${node.id}: stored content hash does not match its content`);
      if (node.parent_id === null) {
        if (node.version !== 1) problems.push(`snapshot ${node.id} has no parent but version ${node.version}`);
        break;
      }
      const parent: Snapshot | undefined = await findSnapshot(tx, node.parent_id);
      if (!parent) {
        problems.push(`snapshot ${node.id}: parent ${node.parent_id} is missing`);
        break;
      }
      if (node.version !== parent.version + 1) problems.push(`snapshot ${node.id}: version ${node.version} does not follow its parent's ${parent.version}`);
      node = parent;
    }
    if (!chain.includes(pattern.snapshot_id)) problems.push(`pattern ${pattern.id} was detected under snapshot ${pattern.snapshot_id}, outside the candidate's chain`);
    const named = new Set<string>([
      ...candidate.content.guards.map((g) => g.event_type).filter((t) => t !== "*"),
      ...Object.keys(candidate.content.schemas),
      ...Object.keys(candidate.content.thresholds.high_frequency.by_event_type),
      ...candidate.content.inactive_event_types,
    ]);
    if (named.size > 0) {
      const { rows } = await tx.query<{ event_type: string }>(
        "SELECT t AS event_type FROM unnest($1::text[]) t WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.event_type = t)",
        [[...named]],
      );
      for (const r of rows) problems.push(`the candidate names event type ${r.event_type}, which was never observed (orphaned reference)`);
    }
    add("invariant", "Q4", "chain_intact", "mandatory", problems.length === 0,
      problems.length === 0 ? `chain of ${chain.length} snapshots to genesis is intact; base is current; ${named.size} named event types all observed` : problems.join("; "),
      { chain_length: chain.length, problems: problems.length });
  }

  // ---- Q5 bounded change
  {
    const entries = changedEntries(base.content, candidate.content);
    const passed = entries.length >= 1 && entries.length <= DOCTRINE.maxChangeEntries;
    add("invariant", "Q5", "bounded_change", "mandatory", passed,
      entries.length === 0 ? "the change does not alter the snapshot (no-op)"
        : passed ? `one entry changes: ${entries[0]}` : `${entries.length} entries change (at most ${DOCTRINE.maxChangeEntries}): ${entries.slice(0, 5).join(", ")}`,
      { changed_entries: entries });
  }

  // ---- T1 tick budget
  add("tick_budget", "T1", "tick_budget", "mandatory", replay.maxObservationTicks <= DOCTRINE.maxTicksPerObservation,
    replay.observations === 0
      ? "no stored observations to replay: nothing can exceed the budget"
      : `the costliest observation takes ${replay.maxObservationTicks} ticks of append and guards (budget ${DOCTRINE.maxTicksPerObservation})${replay.heaviestObservation ? ` (${replay.heaviestObservation})` : ""}`,
    { max_observation_ticks: replay.maxObservationTicks, budget: DOCTRINE.maxTicksPerObservation });

  // ---- doctrine
  {
    const n = await evidenceCount(tx, pattern);
    add("doctrine", "D1", "evidence_minimum", "mandatory", n >= DOCTRINE.minEvidence,
      `the ${pattern.kind} pattern rests on ${n} stored observations (need ${DOCTRINE.minEvidence})`, { observations: n });
  }
  {
    const guard = change.kind === "add_guard" ? change.guard : undefined;
    const reaches = guard !== undefined && (guard.sector === "*" || DOCTRINE.regulatedSectors.includes(guard.sector));
    const passed = !(reaches && guard!.action === "reject");
    add("doctrine", "D2", "regulated_flag_only", "mandatory", passed,
      !guard ? "not a guard change" : passed ? `guard ${guard.id} (${guard.sector}) ${guard.action === "flag" ? "only flags" : "stays outside regulated sectors"}`
        : `guard ${guard.id} would reject observations in ${guard.sector === "*" ? "every sector, including finance and healthcare" : guard.sector}: regulated sectors take flag guards only from the loop`);
  }
  if (change.kind === "adjust_threshold") {
    const from = highFrequencyThreshold(base.content, change.event_type);
    const step = change.to >= from ? change.to / from : from / change.to;
    add("doctrine", "D3", "threshold_step", "warning", step <= DOCTRINE.maxThresholdStep,
      `threshold ${from} -> ${change.to} is a ${step.toFixed(2)}x step (warn above ${DOCTRINE.maxThresholdStep}x)`, { from, to: change.to });
  }
  if (change.kind === "add_guard") {
    const evaluated = replay.evaluated[change.guard.id] ?? 0;
    const failed = replay.failed[change.guard.id] ?? 0;
    const share = evaluated === 0 ? 0 : failed / evaluated;
    add("doctrine", "D4", "flag_share", "advisory", share <= DOCTRINE.maxFlagShare,
      `guard ${change.guard.id} fails ${failed} of ${evaluated} replayed observations (${(share * 100).toFixed(1)}%)`, { evaluated, failed });
  }
  {
    const windowMs = new Date(pattern.window_end).getTime() - new Date(pattern.window_start).getTime();
    const age = startedAt.getTime() - new Date(pattern.detected_at).getTime();
    add("doctrine", "D5", "evidence_fresh", "warning", age <= DOCTRINE.staleAfterWindows * windowMs,
      `the pattern was detected ${(age / 1000).toFixed(1)} s ago (warn after ${DOCTRINE.staleAfterWindows} windows of ${windowMs / 1000} s)`);
  }
}

/** Observations the pattern rests on, recounted from the database. */
async function evidenceCount(tx: Sql, pattern: Pattern): Promise<number> {
  const start = new Date(pattern.window_start);
  const end = new Date(pattern.window_end);
  const q = async (text: string, params: unknown[]) => (await tx.query<{ n: number }>(text, params)).rows[0].n;
  switch (pattern.kind) {
    case "high_frequency":
    case "schema_mismatch":
      return q("SELECT count(*)::int AS n FROM observations WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3", [pattern.event_type, start, end]);
    case "error_spike":
      return q("SELECT count(*)::int AS n FROM observations WHERE sector = $1 AND is_error AND observed_at > $2 AND observed_at <= $3", [pattern.sector, start, end]);
    case "silence": {
      const lookback = Number(pattern.evidence.lookback_windows) || 1;
      const before = new Date(start.getTime() - lookback * (end.getTime() - start.getTime()));
      return q("SELECT count(*)::int AS n FROM observations WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3", [pattern.event_type, before, start]);
    }
  }
}

/** Replays the candidate's guards on the latest stored observations up to `until` through the kernel. */
async function replayGuards(ctx: DomainContext, tx: Sql, candidate: Snapshot, until: Date): Promise<Replay> {
  const { rows } = await tx.query<{ id: string; event_type: string; sector: string; value: JsonValue; metadata: Record<string, JsonValue> }>(
    "SELECT id::text AS id, event_type, sector, value, metadata FROM observations WHERE observed_at <= $1 ORDER BY observed_at DESC, seq DESC LIMIT $2",
    [until, DOCTRINE.replaySample],
  );
  const parked: Replay["parked"] = [];
  const failed: Record<string, number> = {};
  const evaluated: Record<string, number> = {};
  let maxOperationTicks = 0;
  let maxObservationTicks = 0;
  let heaviest: string | null = null;
  for (const row of rows) {
    const guards: Guard[] = guardsFor(candidate.content, row.sector, row.event_type);
    const run = runGuards(ctx.kernel, guards, row.value, row.metadata);
    const total = run.appendTicks + run.evaluationTicks;
    if (total > maxObservationTicks) {
      maxObservationTicks = total;
      heaviest = `observation ${row.id}, ${guards.length} guards`;
    }
    for (const outcome of run.outcomes) {
      evaluated[outcome.guard_id] = (evaluated[outcome.guard_id] ?? 0) + 1;
      if (!outcome.passed) failed[outcome.guard_id] = (failed[outcome.guard_id] ?? 0) + 1;
      maxOperationTicks = Math.max(maxOperationTicks, outcome.ticks);
      if (outcome.path === "warm") parked.push({ guard_id: outcome.guard_id, observation_id: row.id, reason: outcome.parked_reason ?? "unknown" });
    }
  }
  return { observations: rows.length, parked, maxOperationTicks, maxObservationTicks, heaviestObservation: heaviest, failed, evaluated };
}

interface ReportRow {
  id: string;
  proposal_id: string;
  snapshot_id: string;
  outcome: ValidationOutcome;
  checks: CheckResult[];
  failures: string[];
  warnings: string[];
  timeout_ms: number;
  started_at: Date;
  finished_at: Date;
  receipt_seq: string | number | null;
}

const REPORT_COLUMNS = "id, proposal_id, snapshot_id, outcome, checks, failures, warnings, timeout_ms, started_at, finished_at, receipt_seq";

function toReport(row: ReportRow): ValidationReport {
  return {
    ...row,
    timeout_ms: Number(row.timeout_ms),
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
    receipt_seq: row.receipt_seq === null ? null : Number(row.receipt_seq),
  };
}

function isStatementTimeout(error: unknown): boolean {
  return (error as { code?: string })?.code === "57014";
}

export function createValidationService(ctx: DomainContext) {
  async function validate(id: string, options: { readonly timeoutMs?: number } = {}): Promise<ValidationReport> {
    const timeoutMs = options.timeoutMs ?? ctx.validationTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new ValidationError("timeout_ms", `must be an integer from 1 to ${MAX_TIMEOUT_MS}`);
    }
    const proposal = await findProposal(ctx.db, id);
    if (!proposal) throw new NotFoundError("proposal", id);
    if (proposal.status === "promoted") {
      const current = await currentSnapshotId(ctx.db);
      if (current === proposal.snapshot_id) throw new ConflictError(`proposal ${id} is promoted and current`, "already_promoted");
    }
    return timed(ctx, "proposal_validation", async () => {
      const startedAt = ctx.clock.now();
      const deadline = Date.now() + timeoutMs;
      const checks: CheckResult[] = [];
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const work = ctx.db
        .transaction(async (tx) => {
          await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
          // The server cancels a statement that would outlive the deadline (e.g. blocked on a lock).
          await tx.query(`SET LOCAL statement_timeout = ${Math.max(1, deadline - Date.now())}`);
          await runChecks(ctx, tx, proposal, checks, startedAt, deadline);
          return "done" as const;
        })
        .catch((error: unknown) => {
          if (error instanceof DeadlineExceeded || isStatementTimeout(error)) return "timeout" as const;
          throw error;
        });
      let result: "done" | "timeout";
      try {
        result = await Promise.race([work, expired]);
      } finally {
        clearTimeout(timer);
      }
      if (result === "timeout") work.catch(() => undefined); // settles on its own once cancelled
      const snapshot = checks.slice(); // a late check must not change the stored report
      const failures = snapshot.filter((c) => !c.passed && c.enforcement === "mandatory").map((c) => c.id);
      const warnings = snapshot.filter((c) => !c.passed && c.enforcement !== "mandatory").map((c) => c.id);
      const outcome: ValidationOutcome = result === "timeout" ? "timeout" : failures.length > 0 ? "failed" : "passed";
      const finishedAt = ctx.clock.now();
      const reportId = randomUUID();
      // The report, the proposal's status and the receipt (staged in the outbox, linked back to the
      // report's receipt_seq) commit together.
      const { value: stored, seq } = await receipted(ctx, async (tx) => {
        const { rows } = await tx.query<ReportRow & { seq: string | number }>(
          `INSERT INTO validation_reports (id, proposal_id, snapshot_id, outcome, checks, failures, warnings, timeout_ms, started_at, finished_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq, ${REPORT_COLUMNS}`,
          [reportId, proposal.id, proposal.snapshot_id, outcome, JSON.stringify(snapshot), JSON.stringify(failures), JSON.stringify(warnings), timeoutMs, startedAt, finishedAt],
        );
        await tx.query("UPDATE proposals SET status = $2 WHERE id = $1 AND status <> 'promoted'", [proposal.id, outcome]);
        const { seq: rowSeq, ...report } = rows[0];
        return {
          value: report,
          receipt: {
            operation: "proposal.validate",
            outcome,
            evidence: {
              proposal_id: proposal.id,
              report_id: reportId,
              snapshot_id: proposal.snapshot_id,
              failures,
              warnings,
              checks: snapshot.map((c) => ({ id: c.id, passed: c.passed })),
              timeout_ms: timeoutMs,
            },
            sector: "generic",
          },
          link: { table: "validation_reports", seq: Number(rowSeq) },
        };
      });
      ctx.metrics.inc("knhk_proposal_validations_total", { outcome });
      return toReport({ ...stored, receipt_seq: seq });
    });
  }

  async function validationReport(id: string): Promise<ValidationReport> {
    const proposal = await findProposal(ctx.db, id);
    if (!proposal) throw new NotFoundError("proposal", id);
    const { rows } = await ctx.db.query<ReportRow>(`SELECT ${REPORT_COLUMNS} FROM validation_reports WHERE proposal_id = $1 ORDER BY seq DESC LIMIT 1`, [id]);
    if (!rows[0]) throw new NotFoundError("validation_report", id);
    return toReport(rows[0]);
  }

  return { validate, validationReport };
}
