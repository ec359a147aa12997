/**
 * What a database error says about the database, decided by its codes: the SQLSTATE (PostgreSQL's
 * appendix "Error Codes"), the severity, Node's socket error codes. node-postgres and pg-pool raise
 * a few connection errors with no code at all; those are recognised by their exact text, listed
 * below, so no other message (a constraint, a user-supplied value quoted in an error) can match.
 */

/** The errors node-postgres (pg 8) and pg-pool raise without a code, all about the connection. */
export const CODELESS_DRIVER_CONNECTION_ERRORS: ReadonlySet<string> = new Set([
  "Connection terminated",
  "Connection terminated unexpectedly",
  "Connection terminated due to connection timeout",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
  "timeout exceeded when trying to connect",
]);

/**
 * - `connection`: the connection is gone or cannot be had (server down, restarting, failing over,
 *   the pool timed out): the statement may succeed on another connection; the one used is unusable.
 * - `server`: the server refuses for its own reasons (out of resources, shutting down, an internal
 *   error): not caused by the statement's data.
 * - `statement`: the statement itself failed (a constraint, a read-only transaction, bad input).
 */
export type DatabaseFailure = "connection" | "server" | "statement";

/** SQLSTATE classes about the server, not the data: insufficient resources, operator intervention, system and internal errors. */
const SERVER_CLASSES = /^(53|57|58|XX)/;
/** Operator intervention codes that end the session: admin_shutdown, crash_shutdown, cannot_connect_now. */
const SESSION_ENDING = new Set(["57P01", "57P02", "57P03"]);
/** Node's errno names (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ENOTFOUND, ...). */
const SOCKET_ERROR = /^E[A-Z]+$/;

/** Any thrown object is read for its fields (errors crossing a worker or a driver boundary are not always `Error`s). */
export function classifyDatabaseError(error: unknown): DatabaseFailure {
  if (typeof error !== "object" || error === null) return "statement";
  const { severity, code, message } = error as { severity?: unknown; code?: unknown; message?: unknown };
  if (severity === "FATAL" || severity === "PANIC") return "connection";
  if (typeof code === "string") {
    if (code.startsWith("08") || SESSION_ENDING.has(code) || SOCKET_ERROR.test(code)) return "connection";
    return SERVER_CLASSES.test(code) ? "server" : "statement";
  }
  return typeof message === "string" && CODELESS_DRIVER_CONNECTION_ERRORS.has(message) ? "connection" : "statement";
}

/** Whether a failed query leaves its connection unusable (the pool must destroy it). */
export const breaksConnection = (error: unknown): boolean => classifyDatabaseError(error) === "connection";

/** Connection-level failures (server down or restarting, pool timeout): not caused by any item of a batch. */
export const isConnectionFailure = (error: unknown): boolean => classifyDatabaseError(error) === "connection";

/** Server conditions (resources, shutdown, internal errors): not caused by any item of a batch either. */
export const isServerCondition = (error: unknown): boolean => classifyDatabaseError(error) === "server";
