/** Proposals: a change to the knowledge planned from a pattern, with its candidate snapshot. */
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/types";
import { iso, isUuid, receipted, timed, type DomainContext } from "./context";
import { ConflictError, NotFoundError, ValidationError } from "./errors";
import { applyChange, highFrequencyThreshold } from "./knowledge";
import { findPattern } from "./patterns";
import { scopeCondition } from "./scope";
import { currentSnapshotId, findSnapshot, insertCandidate } from "./snapshots";
import { DATATYPES, type Datatype, type EventSchema, type GenerateQuery, type Pattern, type Proposal, type ProposalChange, type ProposalStatus, type Snapshot } from "./types";

/** Headroom over the observed count when a high-frequency threshold is raised to the new normal. */
export const THRESHOLD_HEADROOM = 1.25;
export const MAX_GENERATE = 100;

interface ProposalRow {
  id: string;
  pattern_id: string;
  change: ProposalChange;
  rationale: string;
  snapshot_id: string;
  base_snapshot_id: string;
  status: ProposalStatus;
  created_at: Date;
}

export const PROPOSAL_COLUMNS = "id, pattern_id, change, rationale, snapshot_id, base_snapshot_id, status, created_at";

export function toProposal(row: ProposalRow): Proposal {
  return { ...row, created_at: iso(row.created_at) };
}

export async function findProposal(sql: Sql, id: string, lock = false): Promise<Proposal | undefined> {
  if (!isUuid(id)) return undefined;
  const { rows } = await sql.query<ProposalRow>(`SELECT ${PROPOSAL_COLUMNS} FROM proposals WHERE id = $1${lock ? " FOR UPDATE" : ""}`, [id]);
  return rows[0] ? toProposal(rows[0]) : undefined;
}

/** The schema the observations of an event type in (start, end] actually have. */
export async function inferSchema(sql: Sql, eventType: string, start: Date, end: Date): Promise<EventSchema | undefined> {
  const value = await sql.query<{ t: Datatype; n: number }>(
    `SELECT jsonb_typeof(value) AS t, count(*)::int AS n FROM observations
     WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`,
    [eventType, start, end],
  );
  if (!value.rows[0]) return undefined;
  const keys = await sql.query<{ k: string; t: Datatype }>(
    `WITH w AS (SELECT metadata FROM observations WHERE event_type = $1 AND observed_at > $2 AND observed_at <= $3),
          total AS (SELECT count(*) AS n FROM w)
     SELECT e.key AS k, jsonb_typeof(e.value) AS t FROM w, jsonb_each(w.metadata) e
     GROUP BY 1, 2 HAVING count(*) = (SELECT n FROM total) ORDER BY 1`,
    [eventType, start, end],
  );
  const metadata: Record<string, Datatype> = {};
  for (const row of keys.rows) if ((DATATYPES as readonly string[]).includes(row.t)) metadata[row.k] = row.t;
  return { value_type: value.rows[0].t, metadata };
}

/** Guard ids are lower case; event types may not be. */
function guardIdPart(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9_.:-]/g, "-");
}

/** The change a pattern calls for, against the base snapshot. */
export async function planChange(sql: Sql, pattern: Pattern, base: Snapshot): Promise<{ change: ProposalChange; rationale: string } | { skip: string }> {
  switch (pattern.kind) {
    case "high_frequency": {
      const eventType = pattern.event_type!;
      const count = Number(pattern.evidence.count);
      const from = highFrequencyThreshold(base.content, eventType);
      const to = Math.ceil(count * THRESHOLD_HEADROOM);
      return {
        change: { kind: "adjust_threshold", event_type: eventType, from, to },
        rationale: `${eventType} ran at ${count} per window against a threshold of ${from}; raise the threshold to ${to} (${THRESHOLD_HEADROOM}x the observed rate) as the new normal`,
      };
    }
    case "error_spike": {
      if (!pattern.event_type || !pattern.sector) return { skip: "error spike without an error event type or sector" };
      return {
        change: {
          kind: "add_guard",
          guard: {
            id: `error-code:${pattern.sector}:${guardIdPart(pattern.event_type)}`,
            sector: pattern.sector,
            event_type: pattern.event_type,
            check: { op: "required", path: "metadata.error_code" },
            action: "flag",
          },
        },
        rationale: `error ratio ${pattern.evidence.error_ratio} in ${pattern.sector} (baseline ${pattern.evidence.baseline_ratio}); flag ${pattern.event_type} observations that carry no error_code so the spike can be triaged`,
      };
    }
    case "silence":
      return {
        change: { kind: "mark_inactive", event_type: pattern.event_type! },
        rationale: `${pattern.event_type} was seen ${pattern.evidence.count_before_window} times in the ${pattern.evidence.lookback_windows} windows before and not at all in the last one; record it as inactive`,
      };
    case "schema_mismatch": {
      const eventType = pattern.event_type!;
      const schema = await inferSchema(sql, eventType, new Date(pattern.window_start), new Date(pattern.window_end));
      if (!schema) return { skip: `no observations of ${eventType} left in the pattern's window` };
      return {
        change: { kind: "add_schema", event_type: eventType, schema },
        rationale: `${pattern.evidence.mismatched} of ${pattern.evidence.total} ${eventType} observations differ from the declared schema; declare the shape they have`,
      };
    }
  }
}

/** Stores a proposal and its candidate snapshot (base + change) in one transaction. */
export async function insertProposal(tx: Sql, pattern: Pattern, change: ProposalChange, rationale: string, base: Snapshot, at: Date): Promise<Proposal> {
  const id = randomUUID();
  const candidate = await insertCandidate(tx, base, applyChange(base.content, change), id, at);
  const { rows } = await tx.query<ProposalRow>(
    `INSERT INTO proposals (id, pattern_id, change, rationale, snapshot_id, base_snapshot_id, status, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) RETURNING ${PROPOSAL_COLUMNS}`,
    [id, pattern.id, JSON.stringify(change), rationale, candidate.id, base.id, at],
  );
  return toProposal(rows[0]);
}

export interface GenerateResult {
  readonly proposals: Proposal[];
  readonly skipped: { pattern_id: string; reason: string }[];
}

export function createProposalCore(ctx: DomainContext) {
  async function generateDetailed(query: GenerateQuery = {}): Promise<GenerateResult> {
    return timed(ctx, "proposal_generation", async () => {
      let patterns: Pattern[];
      if (query.pattern_ids !== undefined) {
        if (!Array.isArray(query.pattern_ids) || query.pattern_ids.length > MAX_GENERATE) {
          throw new ValidationError("pattern_ids", `must be an array of at most ${MAX_GENERATE} pattern ids`);
        }
        patterns = [];
        for (const [i, id] of query.pattern_ids.entries()) {
          if (typeof id !== "string" || !isUuid(id)) throw new ValidationError(`pattern_ids.${i}`, "must be a UUID");
          const pattern = await findPattern(ctx.db, id);
          if (!pattern) throw new NotFoundError("pattern", id);
          patterns.push(pattern);
        }
      } else {
        const { rows } = await ctx.db.query<{ id: string }>(
          `SELECT id FROM patterns p WHERE NOT EXISTS (SELECT 1 FROM proposals q WHERE q.pattern_id = p.id) AND (p.sector IS NULL OR ${scopeCondition(undefined, "p.sector")}) ORDER BY seq LIMIT ${MAX_GENERATE}`,
        );
        patterns = [];
        for (const row of rows) patterns.push((await findPattern(ctx.db, row.id))!);
      }
      const { value: result } = await receipted(ctx, async (tx) => {
        const baseId = await currentSnapshotId(tx);
        const base = (await findSnapshot(tx, baseId))!;
        const proposals: Proposal[] = [];
        const skipped: { pattern_id: string; reason: string }[] = [];
        for (const pattern of patterns) {
          const existing = await tx.query<{ id: string }>("SELECT id FROM proposals WHERE pattern_id = $1 LIMIT 1", [pattern.id]);
          if (existing.rows[0]) {
            if (query.pattern_ids) throw new ConflictError(`pattern ${pattern.id} already has proposal ${existing.rows[0].id}`, "already_planned");
            continue;
          }
          const plan = await planChange(tx, pattern, base);
          if ("skip" in plan) {
            skipped.push({ pattern_id: pattern.id, reason: plan.skip });
            continue;
          }
          proposals.push(await insertProposal(tx, pattern, plan.change, plan.rationale, base, ctx.clock.now()));
        }
        return {
          value: { proposals, skipped },
          receipt: {
            operation: "proposal.generate",
            outcome: "success",
            evidence: {
              proposals: proposals.map((p) => ({ id: p.id, pattern_id: p.pattern_id, kind: p.change.kind, snapshot_id: p.snapshot_id, base_snapshot_id: p.base_snapshot_id })),
              skipped,
            },
            sector: "generic",
          },
        };
      });
      ctx.metrics.inc("knhk_proposals_generated_total", {}, result.proposals.length);
      return result;
    });
  }

  async function get(id: string): Promise<Proposal> {
    const proposal = await findProposal(ctx.db, id);
    if (!proposal) throw new NotFoundError("proposal", id);
    return proposal;
  }

  async function rebase(id: string): Promise<Proposal> {
    const { value: rebased } = await receipted(ctx, async (tx) => {
      const proposal = await findProposal(tx, id, true);
      if (!proposal) throw new NotFoundError("proposal", id);
      const baseId = await currentSnapshotId(tx);
      // Already on the current base: nothing written, nothing to receipt.
      if (proposal.base_snapshot_id === baseId) return { value: proposal };
      if (proposal.status === "promoted") throw new ConflictError(`proposal ${id} was promoted; plan a new one`, "already_promoted");
      const base = (await findSnapshot(tx, baseId))!;
      const change: ProposalChange =
        proposal.change.kind === "adjust_threshold"
          ? { ...proposal.change, from: highFrequencyThreshold(base.content, proposal.change.event_type) }
          : proposal.change;
      const candidate = await insertCandidate(tx, base, applyChange(base.content, change), id, ctx.clock.now());
      const { rows } = await tx.query<ProposalRow>(
        `UPDATE proposals SET change = $2, snapshot_id = $3, base_snapshot_id = $4, status = 'pending' WHERE id = $1 RETURNING ${PROPOSAL_COLUMNS}`,
        [id, JSON.stringify(change), candidate.id, base.id],
      );
      const stored = toProposal(rows[0]);
      return {
        value: stored,
        receipt: {
          operation: "proposal.rebase",
          outcome: "success",
          evidence: { proposal_id: id, snapshot_id: stored.snapshot_id, base_snapshot_id: stored.base_snapshot_id, previous_snapshot_id: proposal.snapshot_id },
          sector: "generic",
        },
      };
    });
    return rebased;
  }

  return { generateDetailed, get, rebase };
}
