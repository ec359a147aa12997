/**
 * The MAPE-K loop: Monitor (observations in the window), Analyze (pattern rules), Plan
 * (proposals), Execute (validate, promote when allowed), Knowledge (record the outcome). Each
 * phase appends a receipt. With several replicas only the holder of a PostgreSQL advisory lock,
 * taken on a dedicated session, runs the scheduled loop. A leadership gate (blue-green: the
 * active colour) decides which replicas may compete at all; on-demand cycles obey it too, since an
 * idle colour is reached only on purpose (its own Service) and may run a version that has not
 * passed its smoke test, which must not promote snapshots.
 */
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/types";
import { iso, isUuid, receipt, type DomainContext } from "./context";
import { ConflictError, NotFoundError } from "./errors";
import type { LeadershipGate, LeadershipState, MapeKService } from "./index";
import { windowEndingAt } from "./detectors";
import { scopeCondition } from "./scope";
import { EVIDENCE_LIST_LIMIT, type PatternInternals } from "./patterns";
import { MAX_GENERATE, type createProposalCore } from "./proposals";
import type { SnapshotInternals } from "./snapshots";
import type { JsonObject, MapeKCycle, MapeKOutcome, MapeKPhase, MapeKPhaseResult, MapeKTrigger, Snapshot } from "./types";
import type { createValidationService } from "./validation";

/** Key of the leader lock: pg_try_advisory_lock(hashtext(LEADER_LOCK)). */
export const LEADER_LOCK = "knhk.mape_k.leader";
/** Serialises cycles across replicas (an on-demand cycle on a follower waits for the leader's). */
export const CYCLE_LOCK = "knhk.mape_k.cycle";

interface Services {
  readonly snapshots: SnapshotInternals;
  readonly patterns: PatternInternals;
  readonly proposals: ReturnType<typeof createProposalCore>;
  readonly validation: ReturnType<typeof createValidationService>;
}

interface PhaseOutput {
  readonly ok: boolean;
  readonly detail: JsonObject;
  /** The receipt's outcome when it is not simply success / partial_success by `ok`. */
  readonly outcome?: MapeKOutcome;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolves after ms, or at once when any signal aborts. */
function sleep(ms: number, ...signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (signals.some((s) => s.aborted)) return resolve();
    const timer = setTimeout(done, ms);
    for (const s of signals) s.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener("abort", done);
      resolve();
    }
  });
}

const ALWAYS: LeadershipState = { eligible: true };

/** Refusal of a cycle on a replica the leadership gate excludes (HTTP 409). */
function ineligible(state: LeadershipState & { eligible: false }): ConflictError {
  return new ConflictError(`MAPE-K cycles run only on the active colour: ${state.reason}`, "inactive_color");
}

export function createMapeK(ctx: DomainContext, services: Services, gate?: LeadershipGate): MapeKService {
  const eligibility = (): LeadershipState => gate?.state() ?? ALWAYS;
  let queue: Promise<unknown> = Promise.resolve();
  let leader = false;
  let stopper: AbortController | undefined;
  let running: Promise<void> | undefined;

  async function cycle(trigger: MapeKTrigger): Promise<MapeKCycle> {
    const id = randomUUID();
    const startedAt = ctx.clock.now();
    const phases: MapeKPhaseResult[] = [];
    let broken = false;

    async function phase(name: MapeKPhase, fn: () => Promise<PhaseOutput>): Promise<PhaseOutput | undefined> {
      if (broken && name !== "knowledge") return undefined;
      const t0 = process.hrtime.bigint();
      let output: PhaseOutput | undefined;
      let error: string | undefined;
      try {
        output = await fn();
      } catch (e) {
        error = message(e);
        broken = true;
      }
      ctx.metrics.observe("knhk_mape_k_phase_duration_seconds", { phase: name }, Number(process.hrtime.bigint() - t0) / 1e9);
      const detail = output?.detail ?? {};
      let seq: number | null = null;
      try {
        seq = await receipt(ctx, {
          operation: `mape_k.${name}`,
          outcome: error ? "failed" : (output!.outcome ?? (output!.ok ? "success" : "partial_success")),
          evidence: { cycle_id: id, trigger, ...detail, ...(error ? { error } : {}) },
          sector: "generic",
        });
      } catch (e) {
        error = `${error ? `${error}; ` : ""}receipt not appended: ${message(e)}`;
        broken = true;
      }
      phases.push({ phase: name, ok: !error && output!.ok, detail, ...(error ? { error } : {}), receipt_seq: seq });
      return error ? undefined : output;
    }

    let snapshot: Snapshot | undefined;
    const w = windowEndingAt(ctx.clock.now(), ctx.windowSeconds);
    let patternIds: string[] = [];
    let proposalIds: string[] = [];

    await phase("monitor", async () => {
      snapshot = await services.snapshots.current();
      const { rows } = await ctx.db.query<{ event_type: string; n: number; errors: number }>(
        `SELECT event_type, count(*)::int AS n, count(*) FILTER (WHERE is_error)::int AS errors FROM observations
         WHERE observed_at > $1 AND observed_at <= $2 AND ${scopeCondition(w.scope)} GROUP BY event_type ORDER BY event_type`,
        [w.start, w.end],
      );
      return {
        ok: true,
        detail: {
          window_start: w.start.toISOString(),
          window_end: w.end.toISOString(),
          snapshot_id: snapshot.id,
          observations: rows.reduce((s, r) => s + r.n, 0),
          errors: rows.reduce((s, r) => s + r.errors, 0),
          event_types: rows.length,
        },
      };
    });

    await phase("analyze", async () => {
      const result = await services.patterns.detectWith(snapshot!, w);
      patternIds = result.patterns.map((p) => p.id);
      const listed = result.patterns.slice(0, EVIDENCE_LIST_LIMIT).map((p) => ({ id: p.id, kind: p.kind, event_type: p.event_type, score: p.score }));
      const detail: JsonObject = result.patterns.length > EVIDENCE_LIST_LIMIT ? { patterns_total: result.patterns.length, patterns: listed } : { patterns: listed };
      return { ok: true, detail };
    });

    await phase("plan", async () => {
      const proposals: JsonObject[] = [];
      const skipped: JsonObject[] = [];
      for (let i = 0; i < patternIds.length; i += MAX_GENERATE) {
        const result = await services.proposals.generateDetailed({ pattern_ids: patternIds.slice(i, i + MAX_GENERATE) });
        proposalIds.push(...result.proposals.map((p) => p.id));
        proposals.push(...result.proposals.map((p) => ({ id: p.id, kind: p.change.kind, pattern_id: p.pattern_id })));
        skipped.push(...result.skipped);
      }
      return {
        ok: skipped.length === 0,
        detail: { proposals_total: proposals.length, proposals: proposals.slice(0, EVIDENCE_LIST_LIMIT), skipped: skipped.slice(0, EVIDENCE_LIST_LIMIT) },
      };
    });

    await phase("execute", async () => {
      const results: JsonObject[] = [];
      let allPromoted = true;
      for (const proposalId of proposalIds) {
        const proposal = await services.proposals.rebase(proposalId);
        const report = await services.validation.validate(proposal.id);
        let promoted = false;
        let refusal: string | undefined;
        if (report.outcome === "passed" && ctx.autoPromote) {
          try {
            await services.snapshots.promote(proposal.snapshot_id);
            promoted = true;
          } catch (e) {
            if (!(e instanceof ConflictError)) throw e;
            refusal = e.message;
          }
        }
        if (!promoted) allPromoted = false;
        results.push({
          proposal_id: proposal.id,
          kind: proposal.change.kind,
          validation: report.outcome,
          report_id: report.id,
          failures: [...report.failures],
          warnings: [...report.warnings],
          promoted,
          snapshot_id: proposal.snapshot_id,
          ...(refusal ? { refusal } : {}),
        });
      }
      return { ok: allPromoted, detail: { auto_promote: ctx.autoPromote, results_total: results.length, results: results.slice(0, EVIDENCE_LIST_LIMIT) } };
    });

    const executePhase = phases.find((p) => p.phase === "execute");
    const outcome: MapeKOutcome = broken ? "failed" : executePhase && !executePhase.ok ? "partial_success" : "success";

    await phase("knowledge", async () => {
      const current = await services.snapshots.current();
      // The Knowledge phase records the cycle: its receipt carries the cycle's outcome.
      return {
        ok: true,
        outcome,
        detail: { outcome, current_snapshot_id: current.id, current_version: current.version, phases_ok: phases.filter((p) => p.ok).map((p) => p.phase) },
      };
    });

    const finishedAt = ctx.clock.now();
    const record: MapeKCycle = { id, trigger, outcome, replica_id: ctx.replicaId, phases, started_at: startedAt.toISOString(), finished_at: finishedAt.toISOString() };
    await ctx.db.query(
      "INSERT INTO mape_k_cycles (id, trigger, outcome, replica_id, phases, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
      [id, trigger, outcome, ctx.replicaId, JSON.stringify(phases), startedAt, finishedAt],
    );
    ctx.metrics.inc("knhk_mape_k_cycles_total", { outcome, trigger });
    return record;
  }

  /**
   * Cycles run one at a time: in this process by a queue, across replicas by a session-level
   * advisory lock held for the cycle (the cycle's own queries use other pool connections).
   */
  function execute(options: { readonly trigger?: MapeKTrigger } = {}): Promise<MapeKCycle> {
    const before = eligibility();
    if (!before.eligible) return Promise.reject(ineligible(before));
    const next = queue.then(() =>
      ctx.db.session(async (session) => {
        await session.query("SELECT pg_advisory_lock(hashtext($1))", [CYCLE_LOCK]);
        try {
          // Eligibility may have changed while this cycle waited for another's.
          const now = eligibility();
          if (!now.eligible) throw ineligible(now);
          return await cycle(options.trigger ?? "on_demand");
        } finally {
          await session.query("SELECT pg_advisory_unlock(hashtext($1))", [CYCLE_LOCK]).catch(() => undefined);
        }
      }),
    );
    queue = next.catch(() => undefined);
    return next;
  }

  async function getCycle(id: string): Promise<MapeKCycle> {
    if (!isUuid(id)) throw new NotFoundError("mape_k_cycle", id);
    const { rows } = await ctx.db.query<{ id: string; trigger: MapeKTrigger; outcome: MapeKOutcome; replica_id: string; phases: MapeKPhaseResult[]; started_at: Date; finished_at: Date }>(
      "SELECT id, trigger, outcome, replica_id, phases, started_at, finished_at FROM mape_k_cycles WHERE id = $1",
      [id],
    );
    if (!rows[0]) throw new NotFoundError("mape_k_cycle", id);
    return { ...rows[0], started_at: iso(rows[0].started_at), finished_at: iso(rows[0].finished_at) };
  }

  function setLeader(value: boolean) {
    leader = value;
    ctx.metrics.set("knhk_mape_k_leader", {}, value ? 1 : 0);
  }

  /** Aborts when the gate turns ineligible (step down) and, separately, when it turns eligible (wake up). */
  function watchGate(): { readonly lost: AbortSignal; readonly gained: AbortSignal; stop(): void } {
    const lost = new AbortController();
    const gained = new AbortController();
    const stop = gate?.onChange((eligible) => (eligible ? gained : lost).abort()) ?? (() => undefined);
    return { lost: lost.signal, gained: gained.signal, stop };
  }

  /** Holds the leader lock on `session` and runs cycles until stopped, the session is lost or the gate says step down. */
  async function lead(session: Sql, signal: AbortSignal): Promise<void> {
    const { rows } = await session.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtext($1)) AS ok", [LEADER_LOCK]);
    if (!rows[0]?.ok) return;
    const gateWatch = watchGate();
    try {
      if (!eligibility().eligible) return;
      setLeader(true);
      while (!signal.aborted && !gateWatch.lost.aborted && eligibility().eligible) {
        // A session-level lock lives exactly as long as its session: while this query
        // succeeds the lock is still ours. A lost session throws here and we compete again.
        await session.query("SELECT 1");
        await execute({ trigger: "scheduled" }).catch(() => undefined); // the cycle records its own failure
        await sleep(ctx.mapeKIntervalMs, signal, gateWatch.lost);
      }
    } finally {
      gateWatch.stop();
      setLeader(false);
      await session.query("SELECT pg_advisory_unlock(hashtext($1))", [LEADER_LOCK]).catch(() => undefined);
    }
  }

  async function schedulerLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const gateWatch = watchGate();
      try {
        if (eligibility().eligible) await ctx.db.session((session) => lead(session, signal));
      } catch {
        setLeader(false);
      } finally {
        gateWatch.stop();
      }
      // An ineligible replica wakes as soon as the gate lets it compete.
      await sleep(ctx.mapeKIntervalMs, signal, gateWatch.gained);
    }
  }

  return {
    execute,
    getCycle,
    isLeader: () => leader,
    startScheduler() {
      if (running) return;
      stopper = new AbortController();
      setLeader(false);
      running = schedulerLoop(stopper.signal);
    },
    async stopScheduler() {
      if (!running) return;
      stopper!.abort();
      await running;
      running = undefined;
      stopper = undefined;
    },
  };
}
