/** What every domain module shares: dependencies, and small helpers for timing, receipts, paging. */
import type { Database, Sql } from "../db/types";
import { ValidationError } from "./errors";
import type { HotPathKernel } from "./hotpath-port";
import type { DomainMetrics, WarmPathStage } from "./metrics";
import type { Clock, LedgerPort, ReceiptBackLink, ReceiptEntry, SnapshotBroadcaster } from "./ports";
import type { KnowledgeContent, ListQuery } from "./types";

export interface DomainContext {
  readonly db: Database;
  readonly ledger: LedgerPort;
  readonly kernel: HotPathKernel;
  readonly clock: Clock;
  readonly metrics: DomainMetrics;
  readonly broadcaster?: SnapshotBroadcaster;
  readonly replicaId: string;
  readonly windowSeconds: number;
  readonly validationTimeoutMs: number;
  readonly mapeKIntervalMs: number;
  readonly autoPromote: boolean;
  readonly genesisContent: KnowledgeContent;
}

/** Runs fn and records its duration in knhk_warm_path_duration_seconds{stage}. */
export async function timed<T>(ctx: DomainContext, stage: WarmPathStage, fn: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint();
  try {
    return await fn();
  } finally {
    ctx.metrics.observe("knhk_warm_path_duration_seconds", { stage }, Number(process.hrtime.bigint() - started) / 1e9);
  }
}

/** A receipt for a step that stores no row (a rejection, a MAPE-K phase). */
export async function receipt(ctx: DomainContext, entry: ReceiptEntry): Promise<number> {
  const stored = await ctx.ledger.append(entry);
  return Number(stored.seq);
}

/** What a receipted step's transaction returns: its result, its receipt, and the row that links back to it. */
export interface ReceiptedResult<T> {
  readonly value: T;
  /** Absent when the step turned out to write nothing. */
  readonly receipt?: ReceiptEntry;
  readonly link?: ReceiptBackLink;
}

/**
 * Runs a receipted step: `write` stores the step's rows in one transaction, and its receipt goes
 * into the outbox in that same transaction, so no row is ever durable without its receipt. The
 * receipt is appended after the commit (a crash in between: the next start appends it).
 * Resolves with the step's value and the receipt's seq (null when there was no receipt).
 */
export async function receipted<T>(
  ctx: DomainContext,
  write: (tx: Sql) => Promise<ReceiptedResult<T>>,
): Promise<{ value: T; seq: number | null }> {
  const { value, staged } = await ctx.db.transaction(async (tx) => {
    const result = await write(tx);
    return { value: result.value, staged: result.receipt ? await ctx.ledger.stage(tx, result.receipt, result.link) : undefined };
  });
  if (!staged) return { value, seq: null };
  const stored = await ctx.ledger.appendStaged(staged);
  return { value, seq: Number(stored.seq) };
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/** Validated limit and cursor (the seq below which the page starts). */
export function pageArgs(query: ListQuery = {}): { limit: number; before: number | null } {
  const limit = query.limit ?? DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new ValidationError("limit", `must be an integer from 1 to ${MAX_PAGE}`);
  }
  if (query.cursor === undefined) return { limit, before: null };
  if (!/^[1-9][0-9]{0,15}$/.test(query.cursor)) throw new ValidationError("cursor", "is not a cursor returned by this API");
  return { limit, before: Number(query.cursor) };
}

export function nextCursor(rows: readonly { seq: number }[], limit: number): string | null {
  return rows.length === limit ? String(rows[rows.length - 1].seq) : null;
}

/** A ratio or score as reported in evidence: 6 decimal places. */
export const round6 = (n: number): number => Math.round(n * 1e6) / 1e6;

export function iso(value: unknown): string {
  return (value instanceof Date ? value : new Date(String(value))).toISOString();
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** ISO-8601 timestamp with a timezone, or ValidationError naming the field. */
export function parseTimestamp(field: string, value: string): Date {
  if (typeof value !== "string" || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    throw new ValidationError(field, "must be an ISO-8601 timestamp with a timezone, e.g. 2026-01-31T12:00:00Z");
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new ValidationError(field, "is not a valid date");
  return date;
}

export function windowSecondsOf(ctx: DomainContext, override: number | undefined): number {
  const seconds = override ?? ctx.windowSeconds;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) {
    throw new ValidationError("window_seconds", "must be an integer from 1 to 86400");
  }
  return seconds;
}
