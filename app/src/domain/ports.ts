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
  readonly table: "snapshot_transitions" | "validation_reports" | "observation_batches";
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
   * Outbox rows for receipts the caller stages in one multi-row statement of its own: column
   * arrays to unnest (with `owner` as one value), and `staged(i, link)` for entry i once the
   * statement ran.
   */
  stagingRows(entries: readonly ReceiptEntry[]): Promise<StagingRows>;
  /** Appends a staged receipt after its transaction committed. */
  appendStaged(staged: StagedEntry): Promise<{ readonly seq: number }>;
  /** Appends what crashed processes left staged; resolves with the count. Run before serving. */
  recover(): Promise<number>;
}

export interface StagingRows {
  readonly owner: string;
  readonly ids: readonly string[];
  readonly operations: readonly string[];
  readonly outcomes: readonly string[];
  readonly evidence: readonly string[];
  readonly sectors: readonly string[];
  staged(index: number, link?: ReceiptBackLink): StagedEntry;
}

/** Publishes snapshot changes to the other replicas (Redis pub/sub in the API process). */
export interface SnapshotBroadcaster {
  publish(event: SnapshotChangeEvent): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
