import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { isConnectionFailure } from "../db/errors";
import { ConflictError, NotFoundError, ValidationError } from "../domain/errors";

export interface ErrorBody {
  readonly error: string;
  readonly message: string;
  readonly field?: string;
  readonly reason?: string;
  readonly [key: string]: unknown;
}

interface AjvIssue {
  readonly instancePath?: string;
  readonly keyword?: string;
  readonly message?: string;
  readonly params?: Record<string, unknown>;
}

/** "body.metadata.region" from an ajv issue: the offending field, not just its parent. */
export function fieldOf(context: string | undefined, issue: AjvIssue): string {
  const segments = (issue.instancePath ?? "").split("/").filter(Boolean).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const extra = issue.params?.missingProperty ?? issue.params?.additionalProperty;
  if (typeof extra === "string") segments.push(extra);
  return [context ?? "body", ...segments].join(".");
}

function reasonOf(issue: AjvIssue): string {
  if (issue.keyword === "additionalProperties") return "unknown field";
  if (issue.keyword === "required") return "is required";
  return issue.message ?? "is invalid";
}

/** Connection-level database failures (server down, restarting, pool timeout): 503, not 500. */
export function isDependencyUnavailable(error: unknown): boolean {
  return isConnectionFailure(error);
}

/** The request part a framework client error is about: the body (size, media type, JSON) or the URL (bad percent-encoding). */
function frameworkErrorField(status: number, code: string | undefined): string | undefined {
  if (status === 413 || code?.startsWith("FST_ERR_CTP")) return "body";
  if (code === "FST_ERR_BAD_URL") return "url";
  return undefined;
}

const bad = (reply: FastifyReply, status: number, body: ErrorBody) => reply.status(status).send(body);

/**
 * Maps every failure to a status: schema and domain validation -> 400 naming the field, unknown
 * ids -> 404, state conflicts -> 409, framework client errors keep their 4xx, and only genuine
 * faults become 500 (logged, never echoed).
 */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error.validation && error.validation.length > 0) {
    const issue = error.validation[0] as AjvIssue;
    const field = fieldOf(error.validationContext, issue);
    const reason = reasonOf(issue);
    return bad(reply, 400, { error: "bad_request", field, reason, message: `${field}: ${reason}` });
  }
  if (error instanceof ValidationError) {
    return bad(reply, 400, { error: "bad_request", field: error.field, reason: error.reason, message: error.message });
  }
  if (error instanceof NotFoundError) {
    return bad(reply, 404, { error: "not_found", entity: error.entity, id: error.id, message: error.message });
  }
  if (error instanceof ConflictError) {
    return bad(reply, 409, { error: "conflict", reason: error.reason, message: error.message });
  }
  if (isDependencyUnavailable(error)) {
    request.log.warn({ err: error }, "dependency unavailable");
    return bad(reply, 503, { error: "unavailable", message: "database unavailable, retry later" });
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const field = frameworkErrorField(status, error.code);
    return bad(reply, status, {
      error: error.code ?? "bad_request",
      ...(field ? { field } : {}),
      reason: error.message,
      message: field ? `${field}: ${error.message}` : error.message,
    });
  }
  request.log.error({ err: error }, "request failed");
  const unavailable = status === 503;
  return bad(reply, unavailable ? 503 : 500, {
    error: unavailable ? "unavailable" : "internal_error",
    message: unavailable ? error.message : "internal error",
  });
}
