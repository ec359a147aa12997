/** What the domain needs from its neighbours (receipt ledger, broadcaster, clock). */
import type { JsonObject, SnapshotChangeEvent } from "./types";

/** One receipt to append; H-ledger's `ledger.append` accepts exactly this. */
export interface ReceiptEntry {
  readonly operation: string;
  readonly outcome: string;
  readonly evidence: JsonObject;
  readonly sector: string;
}

export interface LedgerPort {
  append(entry: ReceiptEntry): Promise<{ readonly seq: number }>;
}

/** Publishes snapshot changes to the other replicas (Redis pub/sub in the API process). */
export interface SnapshotBroadcaster {
  publish(event: SnapshotChangeEvent): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
