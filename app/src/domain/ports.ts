/** What the domain needs from its neighbours (receipt ledger, broadcaster, clock). */
import type { Sql } from "../db/types";
import type { JsonObject, SnapshotChangeEvent } from "./types";

/** One receipt to append; H-ledger's `ledger.append` accepts exactly this. */
export interface ReceiptEntry {
  readonly operation: string;
  readonly outcome: string;
  readonly evidence: JsonObject;
  readonly sector: string;
}

/** A domain row that records its receipt's seq (`receipt_seq`), filled when the receipt is appended. */
export interface ReceiptBackLink {
  readonly table: "snapshot_transitions" | "validation_reports";
  /** The row's `seq`. */
  readonly seq: number;
}

/** A receipt stored in the outbox by a step's transaction, not yet in the chain. */
export interface StagedEntry {
  readonly outboxId: string;
}

export interface LedgerPort {
  /** A receipt with no domain row to keep atomic with (e.g. a rejection, a MAPE-K phase). */
  append(entry: ReceiptEntry): Promise<{ readonly seq: number }>;
  /**
   * Stores the receipt in the outbox inside `tx`, the step's own transaction: once `tx` commits,
   * the receipt is durable (appendStaged, or recovery after a crash, puts it in the chain).
   */
  stage(tx: Sql, entry: ReceiptEntry, link?: ReceiptBackLink): Promise<StagedEntry>;
  /** The same as one statement (placeholders from `$firstParam`), for a step that writes with one statement. */
  stagingStatement(entry: ReceiptEntry, firstParam: number, link?: ReceiptBackLink): Promise<{ readonly sql: string; readonly params: unknown[]; readonly staged: StagedEntry }>;
  /**
   * Appends the receipt and writes the rows it receipts in the same transaction (durable exactly
   * together); `writer` is called once per ledger batch with every value that uses it.
   */
  appendWith<T, R>(entry: ReceiptEntry, writer: CompanionWriter<T, R>, value: T, also?: readonly CompanionWrite[]): Promise<{ readonly receipt: { readonly seq: number }; readonly result: R }>;
  /** Appends a staged receipt after its transaction committed. */
  appendStaged(staged: StagedEntry): Promise<{ readonly seq: number }>;
  /** Appends what crashed processes left staged; resolves with the count. Run before serving. */
  recover(): Promise<number>;
}

/**
 * Rows of another module written in the same transaction as a step's rows and receipt (the API's
 * audit row of the request); `committed` turns true once that transaction committed.
 */
export interface CompanionWrite {
  readonly writer: CompanionWriter<any, unknown>;
  readonly value: unknown;
  committed?: boolean;
  result?: unknown;
}

/**
 * Rows written in a receipt batch's own statement, next to their receipts (in batch order):
 * `statement` gives data-modifying CTEs named with `prefix`, placeholders from `param`, and one
 * SQL expression over them whose JSON value `results` turns into one result per value.
 */
export interface CompanionWriter<T, R> {
  /** Rows a value writes: bounds the batch transaction. */
  rows(value: T): number;
  statement(values: readonly T[], receipts: readonly { readonly seq: number }[], prefix: string, param: (value: unknown) => string): { readonly ctes: string; readonly result: string };
  results(value: unknown, values: readonly T[]): R[];
}

/** Publishes snapshot changes to the other replicas (Redis pub/sub in the API process). */
export interface SnapshotBroadcaster {
  publish(event: SnapshotChangeEvent): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
