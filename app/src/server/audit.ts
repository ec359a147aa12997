import { AUDIT_INSERT, auditColumns, type AuditEvent, type AuditWriter } from "../audit";
import type { CompanionWrite, CompanionWriter } from "../domain/ports";
import type { Permission } from "../auth/roles";
import { storableText } from "./storable";

export type AuthDecision = "allow" | "deny_unauthenticated" | "deny_forbidden";

/** One authorization decision, as written to audit_log. */
export interface AuthDecisionRecord {
  readonly decision: AuthDecision;
  readonly method: string;
  /** Route template, e.g. /api/v1/snapshots/:id/promote. */
  readonly route: string;
  readonly permission: Permission | null;
  readonly subject: string | null;
  readonly issuer: string | null;
  readonly roles: readonly string[];
  readonly reason: string;
  readonly requestId: string;
  readonly ip: string;
}

/** Where decisions go (audit_log in the service; the sink must throw when it cannot persist). */
export interface AuditSink {
  record(decision: AuthDecisionRecord): Promise<void>;
  /**
   * The decision as rows the request's own write commits (a route with `auditWithWrite`): the
   * decision is then durable exactly with what it allowed. Absent: every decision is recorded
   * before the handler.
   */
  deferred?(decision: AuthDecisionRecord): DeferredAudit;
}

/** An allow decision waiting to be committed with the request's write (or recorded before the response). */
export interface DeferredAudit extends CompanionWrite {
  readonly decision: AuthDecisionRecord;
}

/**
 * Token claims are attacker-controlled text: control characters and lone UTF-16 surrogates become
 * visible \uXXXX escapes so the decision is still recorded (audit_log refuses raw control
 * characters; PostgreSQL cannot store NUL or lone surrogates at all).
 */
export function printable(text: string): string {
  return storableText(text, Number.MAX_SAFE_INTEGER);
}

/** Most characters of a decision's reason kept (a reason may quote an unverified claim). */
export const MAX_REASON = 512;

/**
 * Writes decisions to audit_log (action "authz.decision") through the audit writer, whose group
 * commit lets concurrent requests share one INSERT and one WAL flush; `record` resolves only once
 * the decision's batch is committed.
 */
export function auditLogSink(writer: Pick<AuditWriter, "record">): AuditSink {
  return {
    record: (d) => writer.record(auditEventOf(d)),
    deferred: (d) => ({ decision: d, writer: AUDIT_ROWS, value: auditEventOf(d) }),
  };
}

/** The decision as an audit_log event (action "authz.decision"). */
export function auditEventOf(d: AuthDecisionRecord): AuditEvent {
  return {
    actor: d.subject ? storableText(`${d.issuer}:${d.subject}`, 256) : "anonymous",
    action: "authz.decision",
    target: storableText(`${d.method} ${d.route}`, 512),
    outcome: d.decision,
    details: {
      permission: d.permission,
      roles: d.roles.map((r) => storableText(r, 64)),
      reason: storableText(d.reason, MAX_REASON),
      request_id: storableText(d.requestId, 128),
      ip: storableText(d.ip, 64),
    },
  };
}

/** audit_log rows in the statement of another module's write: one multi-row INSERT for the batch's decisions. */
const AUDIT_ROWS: CompanionWriter<AuditEvent, undefined> = {
  rows: () => 1,
  statement(events, _receipts, prefix, param) {
    const [a, b, c, d, e] = auditColumns(events).map((column) => param(column));
    return {
      ctes: `${prefix}audit AS (${AUDIT_INSERT} SELECT a, b, c, d, e::jsonb FROM unnest(${a}::text[], ${b}::text[], ${c}::text[], ${d}::text[], ${e}::text[]) AS t(a, b, c, d, e) RETURNING 1)`,
      result: `(SELECT count(*) FROM ${prefix}audit)::int`,
    };
  },
  results(stored, events) {
    if (Number(stored) !== events.length) throw new Error(`audit rows: stored ${String(stored)} of ${events.length}`);
    return events.map(() => undefined);
  },
};
