/**
 * The audit log: authorization decisions, deploy and operator events. Append-only in the database
 * (migration 0003_audit_log: trigger + INSERT/SELECT-only grants for knhk_service).
 *
 *   await appendAudit(db, { actor: "alice@corp", action: "authz.decision", target: "POST /api/v1/proposals",
 *                           outcome: "allow", details: { permission: "proposals:create", roles: ["proposer"] } });
 */
import { createGroupCommit } from "../db/group-commit";
import { unstorableReason } from "../db/storable-text";
import type { Sql } from "../db/types";

export interface AuditEvent {
  /** Who: a principal (subject, e-mail), "anonymous", or a system actor such as "deploy-script". */
  readonly actor: string;
  /** What: dotted lower-case name, e.g. "authz.decision", "deploy.start", "snapshot.rollback". */
  readonly action: string;
  /** On what: a route, resource id, stack or environment name. */
  readonly target: string;
  /** E.g. "allow", "deny_unauthenticated", "deny_forbidden", "success", "failed". */
  readonly outcome?: string;
  /** Any JSON object with further context (never secrets or tokens). */
  readonly details?: Record<string, unknown>;
}

export interface AuditRecord {
  readonly id: number;
  readonly occurred_at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly outcome: string | null;
  readonly details: Record<string, unknown>;
}

export class AuditInputError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "AuditInputError";
  }
}

const ACTION = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const OUTCOME = /^[a-z][a-z0-9_]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const MAX_DETAILS_BYTES = 16 * 1024;


function checkText(field: string, value: unknown, max: number): string {
  if (typeof value !== "string" || value.length === 0) throw new AuditInputError(field, "must be a non-empty string");
  if (value.length > max) throw new AuditInputError(field, `must be at most ${max} characters`);
  if (CONTROL.test(value)) throw new AuditInputError(field, "must not contain control characters");
  const unstorable = unstorableReason(value);
  if (unstorable) throw new AuditInputError(field, unstorable);
  return value;
}

/** JSON text of details, refusing what jsonb cannot store (NUL, lone surrogates) in any key or string. */
function detailsJson(details: Record<string, unknown>): string {
  const refuse = (what: string, text: string) => {
    const unstorable = unstorableReason(text);
    if (unstorable) throw new AuditInputError("details", `${unstorable} (${what})`);
  };
  let json: string;
  try {
    json = JSON.stringify(details, function (key: string, value: unknown) {
      refuse("in a key", key);
      if (typeof value === "string") refuse("in a value", value);
      return value;
    });
  } catch (error) {
    if (error instanceof AuditInputError) throw error;
    throw new AuditInputError("details", `is not representable as JSON (${(error as Error).message})`);
  }
  return json;
}

interface ValidatedAudit {
  actor: string;
  action: string;
  target: string;
  outcome: string | null;
  details: string;
}

/** Checks an event; throws AuditInputError naming the field. */
export function validateAuditEvent(event: AuditEvent): ValidatedAudit {
  if (event === null || typeof event !== "object") throw new AuditInputError("event", "must be an object");
  const actor = checkText("actor", event.actor, 256);
  const action = checkText("action", event.action, 128);
  if (!ACTION.test(action)) throw new AuditInputError("action", "must be dotted lower-case words, e.g. deploy.start");
  const target = checkText("target", event.target, 512);
  let outcome: string | null = null;
  if (event.outcome !== undefined) {
    if (typeof event.outcome !== "string" || !OUTCOME.test(event.outcome)) {
      throw new AuditInputError("outcome", "must be a lower-case word of 1-64 characters (a-z, 0-9, _)");
    }
    outcome = event.outcome;
  }
  const rawDetails = event.details ?? {};
  if (rawDetails === null || typeof rawDetails !== "object" || Array.isArray(rawDetails)) {
    throw new AuditInputError("details", "must be a JSON object");
  }
  const details = detailsJson(rawDetails as Record<string, unknown>);
  if (Buffer.byteLength(details, "utf8") > MAX_DETAILS_BYTES) {
    throw new AuditInputError("details", `must be at most ${MAX_DETAILS_BYTES} bytes as JSON`);
  }
  return { actor, action, target, outcome, details };
}

interface AuditRow {
  id: string | number;
  occurred_at: Date | string;
  actor: string;
  action: string;
  target: string;
  outcome: string | null;
  details: Record<string, unknown> | string;
}

function recordFromRow(row: AuditRow): AuditRecord {
  return {
    id: Number(row.id),
    occurred_at: new Date(row.occurred_at).toISOString(),
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    details: typeof row.details === "string" ? (JSON.parse(row.details) as Record<string, unknown>) : row.details,
  };
}

const COLUMNS = "id, occurred_at, actor, action, target, outcome, details";

/** Appends one event and returns it as stored. */
export async function appendAudit(db: Sql, event: AuditEvent): Promise<AuditRecord> {
  const v = validateAuditEvent(event);
  const result = await db.query<AuditRow>(
    `INSERT INTO audit_log (actor, action, target, outcome, details) VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING ${COLUMNS}`,
    [v.actor, v.action, v.target, v.outcome, v.details],
  );
  return recordFromRow(result.rows[0]);
}

/** Appends several events in one statement (one commit); all or none. */
export async function appendAuditBatch(db: Sql, events: readonly AuditEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const columns = auditColumns(events);
  const result = await db.query(`${AUDIT_INSERT} SELECT a, b, c, d, e::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(a, b, c, d, e)`, columns);
  return result.rowCount;
}

/** The INSERT of audit rows, followed by a SELECT of (actor, action, target, outcome, details text). */
export const AUDIT_INSERT = "INSERT INTO audit_log (actor, action, target, outcome, details)";

/**
 * Validated events as the five column arrays of AUDIT_INSERT (actor, action, target, outcome,
 * details as JSON text), for a caller that writes them inside a statement of its own. Throws
 * AuditInputError naming events[i].<field>.
 */
export function auditColumns(events: readonly AuditEvent[]): [string[], string[], string[], (string | null)[], string[]] {
  const validated = events.map((e, i) => {
    try {
      return validateAuditEvent(e);
    } catch (error) {
      if (error instanceof AuditInputError) throw new AuditInputError(`events[${i}].${error.field}`, error.message.slice(error.field.length + 2));
      throw error;
    }
  });
  return [
    validated.map((v) => v.actor),
    validated.map((v) => v.action),
    validated.map((v) => v.target),
    validated.map((v) => v.outcome),
    validated.map((v) => v.details),
  ];
}

export interface AuditQuery {
  readonly actor?: string;
  readonly action?: string;
  /** Only events with id greater than this. */
  readonly afterId?: number;
  /** 1..1000, default 100. */
  readonly limit?: number;
}

export async function listAudit(db: Sql, query: AuditQuery = {}): Promise<AuditRecord[]> {
  const limit = query.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new AuditInputError("limit", "must be an integer from 1 to 1000");
  const afterId = query.afterId ?? 0;
  if (!Number.isSafeInteger(afterId) || afterId < 0) throw new AuditInputError("afterId", "must be a non-negative integer");
  const result = await db.query<AuditRow>(
    `SELECT ${COLUMNS} FROM audit_log WHERE id > $1 AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR action = $3) ORDER BY id LIMIT $4`,
    [afterId, query.actor ?? null, query.action ?? null, limit],
  );
  return result.rows.map(recordFromRow);
}

export interface AuditWriterOptions {
  readonly db: Sql;
  /** Most events per INSERT; default 500. */
  readonly maxBatch?: number;
  /** Called when a batch could not be stored (the events' promises reject too). */
  readonly onError?: (error: Error, events: number) => void;
}

export interface AuditWriter {
  /** Validates now (throws AuditInputError), resolves once the event's batch is committed. */
  record(event: AuditEvent): Promise<void>;
  /** Waits for everything queued. */
  close(): Promise<void>;
}

/**
 * Group commit for high-rate events (one authorization decision per request): concurrent
 * `record` calls share one multi-row INSERT and one commit, like the receipt ledger.
 */
export function createAuditWriter(options: AuditWriterOptions): AuditWriter {
  const maxBatch = options.maxBatch ?? 500;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 10_000) {
    throw new AuditInputError("maxBatch", "must be an integer from 1 to 10000");
  }
  const batches = createGroupCommit<AuditEvent, void>(maxBatch, async (take) => {
    const events = take();
    try {
      await appendAuditBatch(options.db, events);
    } catch (error) {
      options.onError?.(error instanceof Error ? error : new Error(String(error)), events.length);
      throw error;
    }
    return events.map(() => undefined);
  });

  return {
    record(event) {
      validateAuditEvent(event);
      return batches.submit(event);
    },
    close: () => batches.drained(),
  };
}
