/** Observations: validated, admitted through the hot path (append + guards), persisted, receipted. */
import { randomUUID } from "node:crypto";
import { iso, isUuid, nextCursor, pageArgs, parseTimestamp, receipt, timed, type DomainContext } from "./context";
import { NotFoundError, ValidationError } from "./errors";
import { runGuards } from "./hotpath-port";
import { EVENT_TYPE_PATTERN, guardApplies } from "./knowledge";
import type { ObservationService } from "./index";
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

export function createObservationService(ctx: DomainContext, snapshots: SnapshotInternals): ObservationService {
  async function create(input: ObservationInput): Promise<Observation> {
    const now = ctx.clock.now();
    const obs = validateObservationInput(input, now);
    const snapshot = await snapshots.current();
    const guards = guardsFor(snapshot.content, obs.sector, obs.event_type);
    const run = runGuards(ctx.kernel, guards, obs.value, obs.metadata, { metrics: ctx.metrics });
    const rejected = run.outcomes.find((o) => !o.passed && o.action === "reject");
    if (rejected) {
      const guard = guards.find((g) => g.id === rejected.guard_id)!;
      await receipt(ctx, {
        operation: "observation.create",
        outcome: "rejected",
        evidence: { event_type: obs.event_type, guard_id: guard.id, check: guard.check.op, path: guard.check.path, snapshot_id: snapshot.id },
        sector: obs.sector,
      });
      throw new ValidationError(guard.check.path, `rejected by guard ${guard.id} (${guard.check.op}) of snapshot ${snapshot.version}`);
    }
    const flagged = run.outcomes.some((o) => !o.passed);
    const id = randomUUID();
    const hotPathTicks = run.appendTicks + run.evaluationTicks;
    // The receipt goes into the outbox in the same statement as the row (one round trip, one
    // commit): the observation is never durable without it. The ledger appends it next.
    const staging = await ctx.ledger.stagingStatement(
      {
        operation: "observation.create",
        outcome: flagged ? "flagged" : "success",
        evidence: { observation_id: id, event_type: obs.event_type, snapshot_id: snapshot.id, hot_path_ticks: hotPathTicks, failed_guards: run.outcomes.filter((o) => !o.passed).map((o) => o.guard_id) },
        sector: obs.sector,
      },
      12,
    );
    const row = await timed(ctx, "persistence", async () => {
      const { rows } = await ctx.db.query<ObservationRow>(
        `WITH staged AS (${staging.sql})
         INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${COLUMNS}`,
        [
          id,
          obs.event_type,
          JSON.stringify(obs.value),
          obs.sector,
          JSON.stringify(obs.metadata),
          obs.observed_at,
          now,
          snapshot.id,
          flagged,
          JSON.stringify(run.outcomes),
          hotPathTicks,
          ...staging.params,
        ],
      );
      return rows[0];
    });
    const observation = toObservation(row);
    await ctx.ledger.appendStaged(staging.staged);
    return observation;
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

  return { create, get, list };
}
