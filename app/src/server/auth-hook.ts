import type { FastifyReply, FastifyRequest } from "fastify";
import type { Principal } from "../auth/claims";
import { ROLE_PERMISSIONS, type Permission } from "../auth/roles";
import type { TokenVerifier } from "../auth/verifier";
import type { RateLimiter } from "../redis/rate-limit";
import type { ServiceMetrics } from "../telemetry/metrics";
import type { AuditSink, AuthDecision, AuthDecisionRecord, DeferredAudit } from "./audit";

export interface AuthHookDeps {
  readonly verifier: TokenVerifier;
  readonly audit: AuditSink;
  readonly rateLimiter: RateLimiter;
  readonly metrics: ServiceMetrics;
}

/** Every Authorization header as sent: Node keeps only the first in `headers`, silently. */
function authorizationHeaders(rawHeaders: readonly string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === "authorization") values.push(rawHeaders[i + 1]);
  }
  return values;
}

/**
 * onRequest hook for /api/v1: authenticate (401), rate-limit per principal (429), check the
 * route's permission (403), and write every allow/deny decision to the audit log: before the
 * handler runs, or for a read (GET, HEAD) while it runs, its answer held until the decision is
 * committed. Runs before body parsing, so an unauthorised caller learns nothing from schemas.
 * An allow that cannot be audited is refused (503): no unaudited access.
 */
export function createAuthHook(deps: AuthHookDeps) {
  function recordOf(
    request: FastifyRequest,
    decision: AuthDecision,
    permission: Permission | null,
    principal: Principal | undefined,
    reason: string,
  ): AuthDecisionRecord {
    deps.metrics.inc("knhk_auth_decisions_total", { decision });
    return {
      decision,
      method: request.method,
      route: request.routeOptions.url ?? request.url.split("?")[0],
      permission,
      subject: principal?.subject ?? null,
      issuer: principal?.issuerName ?? null,
      roles: principal?.roles ?? [],
      reason,
      requestId: request.id,
      ip: request.ip,
    };
  }

  async function decide(
    request: FastifyRequest,
    decision: AuthDecision,
    permission: Permission | null,
    principal: Principal | undefined,
    reason: string,
  ): Promise<boolean> {
    const record = recordOf(request, decision, permission, principal, reason);
    try {
      await deps.audit.record(record);
      return true;
    } catch (error) {
      request.log.error({ err: error, decision }, "audit log write failed");
      return false;
    }
  }

  async function limited(request: FastifyRequest, reply: FastifyReply, key: string): Promise<boolean> {
    const rate = await deps.rateLimiter.consume(key);
    reply.header("x-ratelimit-limit", rate.limit).header("x-ratelimit-remaining", rate.remaining);
    if (rate.allowed) return false;
    deps.metrics.inc("knhk_rate_limited_total");
    reply.header("retry-after", rate.resetSeconds).status(429).send({ error: "rate_limited", message: `rate limit of ${rate.limit} requests per window exceeded`, retry_after_seconds: rate.resetSeconds });
    return true;
  }

  return async function authHook(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const permission = request.routeOptions.config?.permission ?? null;
    const auth = await deps.verifier.verify(authorizationHeaders(request.raw.rawHeaders));
    if (!auth.ok) {
      if (await limited(request, reply, `ip:${request.ip}`)) return;
      await decide(request, "deny_unauthenticated", permission, undefined, auth.reason);
      reply.header("www-authenticate", 'Bearer realm="knhk"');
      return reply.status(auth.status).send({ error: auth.status === 401 ? "unauthorized" : "unavailable", message: auth.reason });
    }
    const principal = auth.principal;
    if (await limited(request, reply, `sub:${principal.issuerName}:${principal.subject}`)) return;
    if (!permission || !principal.permissions.has(permission)) {
      const reason = permission ? forbiddenReason(principal, permission) : "route declares no permission";
      await decide(request, "deny_forbidden", permission, principal, reason);
      return reply.status(403).send({ error: "forbidden", message: reason, permission });
    }
    request.principal = principal;
    const reasonAllowed = `granted by ${permission}`;
    if (request.routeOptions.config?.auditWithWrite && deps.audit.deferred) {
      // Committed with the request's write; if the request writes nothing, recorded before its response (auditBeforeResponse).
      request.pendingAudit = deps.audit.deferred(recordOf(request, "allow", permission, principal, reasonAllowed));
      return;
    }
    if (SAFE_METHODS.has(request.method)) {
      // A read changes nothing, so it runs while its decision commits; its answer waits in
      // auditBeforeResponse until the decision is durable (or becomes a 503 if it cannot be).
      request.auditWrite = deps.audit.record(recordOf(request, "allow", permission, principal, reasonAllowed)).then(
        () => undefined,
        (error: unknown) => error ?? new Error("audit write failed"),
      );
      return;
    }
    if (!(await decide(request, "allow", permission, principal, reasonAllowed))) {
      request.principal = undefined;
      return reply.status(503).send(AUDIT_UNAVAILABLE);
    }
  };
}

/** Why a principal lacks a permission; names the missing factor when a withheld role would grant it. */
export function forbiddenReason(principal: Principal, permission: Permission): string {
  const lacking = `roles [${principal.roles.join(", ")}] lack ${permission}`;
  const withheld = principal.withheldRoles.filter((role) => ROLE_PERMISSIONS[role].includes(permission));
  if (withheld.length === 0 || principal.mfa.proven) return lacking;
  return `${lacking}; roles [${withheld.join(", ")}] would grant it but need ${principal.mfa.missing}`;
}

/** Methods whose handlers only read (RFC 9110 safe methods the API serves). */
const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD"]);

const AUDIT_UNAVAILABLE = { error: "unavailable", message: "audit log unavailable; request refused" } as const;

/**
 * onSend hook for /api/v1: a read's decision, written while the read ran, must be committed
 * before the answer leaves; a deferred allow decision that the request's write did not commit
 * (the request was refused, failed, or wrote nothing) is recorded now. If either cannot be, the
 * response becomes a 503. So every decision is durable before its caller learns anything, and a
 * write is never durable without its decision.
 */
export function auditBeforeResponse(audit: AuditSink, log: (error: unknown) => void) {
  const unavailable = (reply: FastifyReply, error: unknown) => {
    log(error);
    reply.code(503).type("application/json; charset=utf-8");
    return JSON.stringify(AUDIT_UNAVAILABLE);
  };
  return async function onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    if (request.auditWrite) {
      const failed = await request.auditWrite;
      return failed === undefined ? payload : unavailable(reply, failed);
    }
    const pending: DeferredAudit | undefined = request.pendingAudit;
    if (!pending || pending.committed) return payload;
    try {
      await audit.record(pending.decision);
      return payload;
    } catch (error) {
      return unavailable(reply, error);
    }
  };
}
