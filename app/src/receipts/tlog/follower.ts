/**
 * Keeps a log's tree (the receipts', the audit log's) up with its entries in the background:
 * `notify()` after entries commit starts a tree advance unless one is running, in which case one
 * more follows it after a short pause, so a burst of batches costs a few tree transactions, not
 * one per batch, and appends never wait for the tree. Failures are reported and retried on the
 * next notify (the tree is behind, never wrong).
 */
import type { Database } from "../../db/types";
import { advanceTree, advanceTreeFully, type AdvanceResult } from "./store";

export interface TreeFollower {
  notify(): void;
  /** Waits for the advance in progress (and the one queued behind it). */
  close(): Promise<void>;
}

export interface TreeFollowerOptions {
  readonly db: Database;
  /** One bounded step of the tree (default: the receipt tree's `advanceTree`). */
  readonly advance?: (db: Database, maxLeaves: number) => Promise<AdvanceResult>;
  readonly onAdvanced?: (r: AdvanceResult) => void;
  /** After each catch-up (e.g. sign a checkpoint if one is due). */
  readonly afterAdvance?: () => Promise<unknown>;
  /** Also catch up this often without receipts (a due checkpoint by time); default: only on notify. */
  readonly intervalMs?: number;
  /**
   * Pause between catch-ups while entries keep coming (default 100 ms), so a steady stream costs a
   * few large tree transactions a second rather than one small one per batch.
   */
  readonly coalesceMs?: number;
  readonly onError?: (error: Error) => void;
}

export const TREE_COALESCE_MS = 100;

export function createTreeFollower({ db, advance = advanceTree, onAdvanced, afterAdvance, intervalMs, coalesceMs = TREE_COALESCE_MS, onError }: TreeFollowerOptions): TreeFollower {
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;
  const run = async (): Promise<void> => {
    do {
      again = false;
      try {
        await advanceTreeFully(db, onAdvanced, undefined, advance);
        await afterAdvance?.();
      } catch (error) {
        onError?.(error as Error);
        return;
      }
      if (again && !closed && coalesceMs > 0) await new Promise((resolve) => setTimeout(resolve, coalesceMs));
    } while (again && !closed);
  };
  const timer = intervalMs ? setInterval(() => follower.notify(), intervalMs) : undefined;
  timer?.unref();
  const follower: TreeFollower = {
    notify() {
      if (closed) return;
      if (running) {
        again = true;
        return;
      }
      running = run().finally(() => (running = undefined));
    },
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      await running;
    },
  };
  return follower;
}
