/** Observations: validated, admitted through the hot path (append + guards), persisted, receipted. */
import { randomUUID } from "node:crypto";
import { iso, isUuid, nextCursor, pageArgs, parseTimestamp, receipt, timed, type DomainContext } from "./context";
import { NotFoundError, ValidationError } from "./errors";
import { runGuards } from "./hotpath-port";
import { EVENT_TYPE_PATTERN, guardApplies } from "./knowledge";
import type { ObservationService } from "./index";
import { batchProof, batchRoot, MERKLE_TREE, observationLeaf, type ObservationProof } from "./observation-proof";
import { createObservationWriter, type ObservationRecord } from "./observation-writer";
import type { CompanionWrite } from "./ports";
import type { SnapshotInternals } from "./snapshots";
import {
  SECTORS,
  type EventSchema,
  type Guard,
  type GuardOutcome,
  type JsonObject,
  type JsonValue,
  type KnowledgeContent,
  type Observation,
  type ObservationInput,
  type ObservationListQuery,
  type Page,
  type Sector,
  type Snapshot,
  type BatchItemResult,
  type BatchResult,
  SMOKE_SECTOR,
} from "./types";

/** Future observed_at tolerated for clock skew between producers and the service. */
export const MAX_CLOCK_SKEW_MS = 5_000;
export const MAX_METADATA_KEYS = 64;
export const MAX_JSON_DEPTH = 8;
export const MAX_OBSERVATION_BYTES = 64 * 1024;

function depthOf(value: JsonValue, depth = 0): number {
  if (value === null || typeof value !== "object") return depth;
  const children = Array.isArray(value) ? value : Object.values(value);
  return children.reduce<number>((max, child) => Math.max(max, depthOf(child, depth + 1)), depth + 1);
}

function isJsonValue(value: unknown): value is JsonValue {
  if (value === null || typeof value === "boolean" || typeof value === "string") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJsonValue);
  if (typeof value === "object") return Object.getPrototypeOf(value) === Object.prototype && Object.values(value as object).every(isJsonValue);
  return false;
}

/** Checks an input field by field; throws ValidationError naming the first bad one. */
export function validateObservationInput(input: unknown, now: Date): { event_type: string; value: JsonValue; sector: Sector; metadata: JsonObject; observed_at: Date } {
  if (input === null || typeof input !== "object" || Array.isArray(input)) throw new ValidationError("body", "must be a JSON object");
  const body = input as Record<string, unknown>;
  const allowed = new Set(["event_type", "value", "sector", "metadata", "observed_at"]);
  const unknown = Object.keys(body).find((key) => !allowed.has(key));
  if (unknown !== undefined) throw new ValidationError(unknown, "is not a field of an observation");
  if (typeof body.event_type !== "string" || !EVENT_TYPE_PATTERN.test(body.event_type)) {
    throw new ValidationError("event_type", "must be 1-128 characters of A-Z a-z 0-9 _ . : - starting with a letter or digit");
  }
  if (!("value" in body) || body.value === undefined) throw new ValidationError("value", "is required");
  if (!isJsonValue(body.value)) throw new ValidationError("value", "must be a JSON value (finite numbers only)");
  if (typeof body.sector !== "string" || !(SECTORS as readonly string[]).includes(body.sector)) {
    throw new ValidationError("sector", `must be one of ${SECTORS.join(", ")}`);
  }
  const metadata = body.metadata ?? {};
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata) || !isJsonValue(metadata)) {
    throw new ValidationError("metadata", "must be a JSON object");
  }
  const keys = Object.keys(metadata);
  if (keys.length > MAX_METADATA_KEYS) throw new ValidationError("metadata", `has more than ${MAX_METADATA_KEYS} keys`);
  const badKey = keys.find((key) => !/^[A-Za-z0-9_-]{1,64}$/.test(key));
  if (badKey !== undefined) throw new ValidationError(`metadata.${badKey}`, "keys are 1-64 characters of A-Z a-z 0-9 _ -");
  if (depthOf(body.value) > MAX_JSON_DEPTH) throw new ValidationError("value", `nests deeper than ${MAX_JSON_DEPTH} levels`);
  if (depthOf(metadata) > MAX_JSON_DEPTH + 1) throw new ValidationError("metadata", `nests deeper than ${MAX_JSON_DEPTH} levels`);
  if (Buffer.byteLength(JSON.stringify([body.value, metadata])) > MAX_OBSERVATION_BYTES) {
    throw new ValidationError("value", `value and metadata together exceed ${MAX_OBSERVATION_BYTES} bytes`);
  }
  let observedAt = now;
  if (body.observed_at !== undefined) {
    if (typeof body.observed_at !== "string") throw new ValidationError("observed_at", "must be an ISO-8601 timestamp string");
    observedAt = parseTimestamp("observed_at", body.observed_at);
    if (observedAt.getTime() > now.getTime() + MAX_CLOCK_SKEW_MS) {
      throw new ValidationError("observed_at", `is more than ${MAX_CLOCK_SKEW_MS / 1000} s in the future`);
    }
  }
  return { event_type: body.event_type, value: body.value, sector: body.sector as Sector, metadata: metadata as JsonObject, observed_at: observedAt };
}

/** The declared schema of an event type as flag guards (a mismatch is data for pattern detection, not a rejection). */
export function schemaGuards(eventType: string, schema: EventSchema | undefined): Guard[] {
  if (!schema) return [];
  return [
    { id: "schema:value", sector: "*", event_type: eventType, check: { op: "datatype", path: "value", datatype: schema.value_type }, action: "flag" },
    ...Object.entries(schema.metadata).map(([key, datatype]): Guard => ({
      id: `schema:metadata.${key}`,
      sector: "*",
      event_type: eventType,
      check: { op: "datatype", path: `metadata.${key}`, datatype },
      action: "flag",
    })),
  ];
}

/** Every guard an observation of (sector, event type) meets under this content: schema guards, then snapshot guards. */
export function guardsFor(content: KnowledgeContent, sector: string, eventType: string): Guard[] {
  return [...schemaGuards(eventType, content.schemas[eventType]), ...content.guards.filter((g) => guardApplies(g, sector, eventType))];
}

interface ObservationRow {
  seq: string | number;
  id: string;
  event_type: string;
  value: JsonValue;
  sector: Sector;
  metadata: JsonObject;
  observed_at: Date;
  created_at: Date;
  snapshot_id: string;
  flagged: boolean;
  guards: GuardOutcome[];
  hot_path_ticks: number;
}

const COLUMNS = "seq, id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks";

function toObservation(row: ObservationRow): Observation {
  return {
    id: row.id,
    seq: Number(row.seq),
    event_type: row.event_type,
    value: row.value,
    sector: row.sector,
    metadata: row.metadata,
    observed_at: iso(row.observed_at),
    created_at: iso(row.created_at),
    snapshot_id: row.snapshot_id,
    flagged: row.flagged,
    guards: row.guards,
    hot_path_ticks: Number(row.hot_path_ticks),
  };
}

/** Most observations one batch request may carry. */
export const MAX_BATCH_ITEMS = 1000;

/**
 * A caller's own check of one batch item before the domain's (the API applies the single POST's
 * request schema and storability rules item by item): a refusal names the field as items.<index>.<field>.
 */
export type BatchPrecheck = (item: unknown, index: number) => { readonly field: string; readonly reason: string } | undefined;

export interface IngestOptions {
  /**
   * Rows committed in the same transaction as the observations and their receipt (the API's
   * audit row of the request); each is marked `committed` when that happens. A request that
   * stores nothing (refused) does not write them.
   */
  readonly alsoCommit?: readonly CompanionWrite[];
}

export interface BatchOptions extends IngestOptions {
  readonly precheck?: BatchPrecheck;
}

/** One admitted observation: guards run, not yet stored. */
interface Admitted {
  readonly record: ObservationRecord;
  readonly failedGuards: readonly string[];
}

type Admission = { readonly ok: true; readonly admitted: Admitted } | { readonly ok: false; readonly guard: Guard; readonly snapshot: Snapshot; readonly error: ValidationError };

export function createObservationService(ctx: DomainContext, snapshots: SnapshotInternals): ObservationService {
  const writer = createObservationWriter({ onCommit: (n) => ctx.metrics.observe("knhk_observation_commit_size", {}, n) });

  /** Validation already done: run the snapshot's guards on the hot path. */
  function admit(obs: ReturnType<typeof validateObservationInput>, snapshot: Snapshot, now: Date): Admission {
    const guards = guardsFor(snapshot.content, obs.sector, obs.event_type);
    const run = runGuards(ctx.kernel, guards, obs.value, obs.metadata, { metrics: ctx.metrics });
    const rejected = run.outcomes.find((o) => !o.passed && o.action === "reject");
    if (rejected) {
      const guard = guards.find((g) => g.id === rejected.guard_id)!;
      return { ok: false, guard, snapshot, error: new ValidationError(guard.check.path, `rejected by guard ${guard.id} (${guard.check.op}) of snapshot ${snapshot.version}`) };
    }
    const failedGuards = run.outcomes.filter((o) => !o.passed).map((o) => o.guard_id);
    return {
      ok: true,
      admitted: {
        failedGuards,
        record: {
          id: randomUUID(),
          event_type: obs.event_type,
          value: obs.value,
          sector: obs.sector,
          metadata: obs.metadata,
          observed_at: obs.observed_at,
          created_at: now,
          snapshot_id: snapshot.id,
          flagged: failedGuards.length > 0,
          guards: run.outcomes,
          hot_path_ticks: run.appendTicks + run.evaluationTicks,
        },
      },
    };
  }

  const leafOf = (r: ObservationRecord) => observationLeaf({ ...r, observed_at: r.observed_at.toISOString() });

  async function create(input: ObservationInput, options: IngestOptions = {}): Promise<Observation> {
    const now = ctx.clock.now();
    const obs = validateObservationInput(input, now);
    const snapshot = await snapshots.current();
    const admission = admit(obs, snapshot, now);
    if (!admission.ok) {
      const { guard } = admission;
      ctx.metrics.inc("knhk_observations_ingested_total", { path: "single", outcome: "rejected" });
      await receipt(ctx, {
        operation: "observation.create",
        outcome: "rejected",
        evidence: { event_type: obs.event_type, guard_id: guard.id, check: guard.check.op, path: guard.check.path, snapshot_id: snapshot.id },
        sector: obs.sector,
      });
      throw admission.error;
    }
    const { record, failedGuards } = admission.admitted;
    // The row commits in the receipt's own batch transaction (never one without the other),
    // shared with concurrent ingest requests.
    const stored = await timed(ctx, "persistence", () =>
      ctx.ledger.appendWith(
        {
          operation: "observation.create",
          outcome: record.flagged ? "flagged" : "success",
          evidence: {
            observation_id: record.id,
            observation_hash: leafOf(record).toString("hex"),
            event_type: record.event_type,
            snapshot_id: snapshot.id,
            hot_path_ticks: record.hot_path_ticks,
            failed_guards: [...failedGuards],
          },
          sector: record.sector,
        },
        writer,
        { records: [record] },
        options.alsoCommit,
      ),
    );
    ctx.metrics.inc("knhk_observations_ingested_total", { path: "single", outcome: record.flagged ? "flagged" : "stored" });
    return toObservation({ ...record, seq: stored.result[0], guards: [...record.guards] });
  }

  async function createBatch(items: readonly unknown[], options: BatchOptions = {}): Promise<BatchResult> {
    const { precheck } = options;
    if (!Array.isArray(items) || items.length === 0) throw new ValidationError("items", "must be a non-empty array of observations");
    if (items.length > MAX_BATCH_ITEMS) throw new ValidationError("items", `must hold at most ${MAX_BATCH_ITEMS} observations, got ${items.length}`);
    const now = ctx.clock.now();
    const snapshot = await snapshots.current();
    const results: BatchItemResult[] = new Array(items.length);
    const accepted: { index: number; admitted: Admitted }[] = [];
    const rejectedByGuard: Record<string, number[]> = {};
    items.forEach((item, index) => {
      const refused = precheck?.(item, index);
      if (refused) {
        results[index] = { index, status: "invalid", field: refused.field, reason: refused.reason };
        return;
      }
      let obs: ReturnType<typeof validateObservationInput>;
      try {
        obs = validateObservationInput(item, now);
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        results[index] = { index, status: "invalid", field: `items.${index}.${error.field}`, reason: error.reason };
        return;
      }
      const admission = admit(obs, snapshot, now);
      if (!admission.ok) {
        (rejectedByGuard[admission.guard.id] ??= []).push(index);
        results[index] = { index, status: "rejected", guard_id: admission.guard.id, field: `items.${index}.${admission.error.field}`, reason: admission.error.reason };
        return;
      }
      accepted.push({ index, admitted: admission.admitted });
    });
    const sectors = new Set(accepted.map((a) => a.admitted.record.sector));
    if (sectors.has(SMOKE_SECTOR) && sectors.size > 1) {
      throw new ValidationError("items", `observations of sector ${SMOKE_SECTOR} cannot share a batch with other sectors (their receipt is marked ${SMOKE_SECTOR})`);
    }
    const invalid = results.filter((r) => r?.status === "invalid").length;
    const rejected = results.filter((r) => r?.status === "rejected").length;
    const count = (outcome: "stored" | "flagged" | "rejected" | "invalid", n: number) => {
      if (n > 0) ctx.metrics.inc("knhk_observations_ingested_total", { path: "batch", outcome }, n);
    };
    ctx.metrics.observe("knhk_observation_batch_size", {}, items.length);
    count("invalid", invalid);
    count("rejected", rejected);
    const sector: Sector = sectors.size === 1 ? [...sectors][0] : "generic";
    if (accepted.length === 0) {
      // Nothing stored; guard rejections are still receipted, as a single rejection is.
      const receiptSeq = rejected > 0
        ? await receipt(ctx, { operation: "observation.batch", outcome: "rejected", evidence: { items: items.length, stored: 0, invalid, rejected_by_guard: rejectedByGuard, snapshot_id: snapshot.id }, sector })
        : null;
      return { batch_id: null, stored: 0, invalid, rejected, merkle_root: null, receipt_seq: receiptSeq, items: results };
    }
    const records = accepted.map((a) => a.admitted.record);
    const leaves = records.map(leafOf);
    const merkleRoot = batchRoot(leaves);
    const batchId = randomUUID();
    const flagged = records.filter((r) => r.flagged).length;
    const bySector: Record<string, number> = {};
    for (const r of records) bySector[r.sector] = (bySector[r.sector] ?? 0) + 1;
    const stored = await timed(ctx, "persistence", () =>
      ctx.ledger.appendWith(
        {
          operation: "observation.batch",
          outcome: flagged > 0 ? "flagged" : "success",
          evidence: {
            batch_id: batchId,
            merkle_root: merkleRoot,
            tree: MERKLE_TREE,
            stored: records.length,
            first_observation_id: records[0].id,
            flagged,
            invalid,
            rejected_by_guard: rejectedByGuard,
            by_sector: bySector,
            snapshot_id: snapshot.id,
          },
          sector,
        },
        writer,
        { records, batch: { id: batchId, merkleRoot, createdAt: now } },
        options.alsoCommit,
      ),
    );
    count("stored", records.length - flagged);
    count("flagged", flagged);
    accepted.forEach((a, i) => {
      results[a.index] = { index: a.index, status: "stored", id: a.admitted.record.id, seq: stored.result[i], flagged: a.admitted.record.flagged };
    });
    return { batch_id: batchId, stored: records.length, invalid, rejected, merkle_root: merkleRoot, receipt_seq: Number(stored.receipt.seq), items: results };
  }

  async function proof(id: string): Promise<ObservationProof> {
    const observation = await get(id);
    const leaf = observationLeaf(observation);
    const { rows } = await ctx.db.query<{ batch_id: string | null; batch_index: number | null; receipt_seq: string | null }>(
      "SELECT batch_id::text AS batch_id, batch_index, receipt_seq FROM observations WHERE id = $1",
      [id],
    );
    const position = rows[0];
    if (!position?.batch_id) {
      // Rows stored before migration 0011 carry no receipt_seq: their receipt names them in its evidence.
      const seq =
        position?.receipt_seq ??
        (await ctx.db.query<{ seq: string }>("SELECT seq FROM receipts WHERE operation = 'observation.create' AND evidence::jsonb->>'observation_id' = $1 ORDER BY seq LIMIT 1", [id])).rows[0]?.seq;
      return { observation, leaf_hash: leaf.toString("hex"), tree: MERKLE_TREE, receipt_seq: seq == null ? null : Number(seq) };
    }
    const batch = await ctx.db.query<{ merkle_root: string; item_count: number }>("SELECT merkle_root, item_count FROM observation_batches WHERE id = $1", [position.batch_id]);
    const members = await ctx.db.query<ObservationRow>(`SELECT ${COLUMNS} FROM observations WHERE batch_id = $1 ORDER BY batch_index`, [position.batch_id]);
    const leaves = members.rows.map((row) => observationLeaf(toObservation(row)));
    return {
      observation,
      leaf_hash: leaf.toString("hex"),
      tree: MERKLE_TREE,
      batch: {
        id: position.batch_id,
        index: position.batch_index!,
        // From the batch row, not recounted: an archived or missing member makes the proof fail, never shrink.
        size: batch.rows[0]?.item_count ?? leaves.length,
        merkle_root: batch.rows[0]?.merkle_root ?? batchRoot(leaves),
        inclusion_proof: batchProof(leaves, position.batch_index!),
      },
      receipt_seq: position.receipt_seq == null ? null : Number(position.receipt_seq),
    };
  }

  async function get(id: string): Promise<Observation> {
    if (!isUuid(id)) throw new NotFoundError("observation", id);
    const { rows } = await ctx.db.query<ObservationRow>(`SELECT ${COLUMNS} FROM observations WHERE id = $1`, [id]);
    if (!rows[0]) throw new NotFoundError("observation", id);
    return toObservation(rows[0]);
  }

  async function list(query: ObservationListQuery = {}): Promise<Page<Observation>> {
    const { limit, before } = pageArgs(query);
    if (query.event_type !== undefined && !EVENT_TYPE_PATTERN.test(query.event_type)) {
      throw new ValidationError("event_type", "must be 1-128 characters of A-Z a-z 0-9 _ . : -");
    }
    if (query.sector !== undefined && !(SECTORS as readonly string[]).includes(query.sector)) {
      throw new ValidationError("sector", `must be one of ${SECTORS.join(", ")}`);
    }
    const since = query.since === undefined ? null : parseTimestamp("since", query.since);
    const until = query.until === undefined ? null : parseTimestamp("until", query.until);
    const { rows } = await ctx.db.query<ObservationRow>(
      `SELECT ${COLUMNS} FROM observations
       WHERE ($1::bigint IS NULL OR seq < $1) AND ($2::text IS NULL OR event_type = $2) AND ($3::text IS NULL OR sector = $3)
         AND ($4::timestamptz IS NULL OR observed_at >= $4) AND ($5::timestamptz IS NULL OR observed_at < $5)
       ORDER BY seq DESC LIMIT $6`,
      [before, query.event_type ?? null, query.sector ?? null, since, until, limit],
    );
    const items = rows.map(toObservation);
    return { items, next_cursor: nextCursor(items, limit) };
  }

  return { create, createBatch, proof, get, list };
}
