import type { AuditWriter } from "../audit";
import type { Permission } from "../auth/roles";

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
}

/**
 * Token claims are attacker-controlled text: control characters become visible \uXXXX escapes so
 * the decision is still recorded (audit_log refuses raw control characters).
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Writes decisions to audit_log (action "authz.decision") through the audit writer, whose group
 * commit lets concurrent requests share one INSERT and one WAL flush; `record` resolves only once
 * the decision's batch is committed.
 */
export function auditLogSink(writer: Pick<AuditWriter, "record">): AuditSink {
  return {
    async record(d) {
      await writer.record({
        actor: d.subject ? printable(`${d.issuer}:${d.subject}`).slice(0, 256) : "anonymous",
        action: "authz.decision",
        target: printable(`${d.method} ${d.route}`).slice(0, 512),
        outcome: d.decision,
        details: { permission: d.permission, roles: [...d.roles], reason: d.reason, request_id: d.requestId, ip: d.ip },
      });
    },
  };
}
