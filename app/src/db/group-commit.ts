/**
 * Group commit: concurrent submissions queue up and one writer loop stores them in batches, one
 * transaction (one WAL flush) per batch; a submission resolves only after its batch is stored.
 * While a batch is being written, new submissions accumulate for the next one.
 *
 * `write(take)` stores one batch: it calls `take()` when it is ready to include items (the receipt
 * ledger takes them only once it holds the chain head lock, so everything that arrived while it
 * waited joins the batch) and returns one result per taken item, in order.
 *
 * One bad item never fails the others sharing its batch: when a batch of more than one item
 * fails, it is written again as two halves (each its own `write`, so each takes its own items),
 * down to single items; only the item that fails on its own is rejected. Failures that are about
 * the database, not the items (connection failures, SQLSTATE classes 53/57/58/XX), are not split:
 * retrying halves against a database that is down or full would only multiply the wait.
 */
import { isConnectionFailure, isServerCondition } from "./errors";
export interface GroupCommit<T, R> {
  submit(item: T): Promise<R>;
  /** Resolves once nothing is being written (everything queued so far is stored or failed). */
  drained(): Promise<void>;
}

export interface GroupCommitOptions<T = unknown> {
  /** Whether a failed batch is worth splitting to isolate a bad item; default: not a connection failure. */
  readonly isolate?: (error: Error) => boolean;
  /**
   * Bounds a batch by weight as well as by count: items are taken while their summed weight stays
   * within `maxWeight` (a first item heavier than that still makes a batch of its own). Default:
   * every item weighs 1 and only the count bounds.
   */
  readonly weight?: (item: T) => number;
  readonly maxWeight?: number;
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

export function createGroupCommit<T, R>(
  maxBatch: number,
  write: (take: () => T[]) => Promise<R[]>,
  options: GroupCommitOptions<T> = {},
): GroupCommit<T, R> {
  type Pending = { item: T; resolve(result: R): void; reject(error: Error): void };
  const isolate = options.isolate ?? ((error: Error) => !isConnectionFailure(error) && !isServerCondition(error));
  const queue: Pending[] = [];
  const weight = options.weight;
  const maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
  /** The next batch off the queue: at most maxBatch items and maxWeight in weight. */
  function nextBatch(): Pending[] {
    if (!weight) return queue.splice(0, maxBatch);
    let n = 0;
    let total = 0;
    while (n < queue.length && n < maxBatch) {
      const w = weight(queue[n].item);
      if (n > 0 && total + w > maxWeight) break;
      total += w;
      n++;
    }
    return queue.splice(0, n);
  }
  let writing: Promise<void> | null = null;

  /** Writes pending items that were already taken once and failed together. */
  async function writeIsolated(pending: Pending[]): Promise<void> {
    try {
      const results = await write(() => pending.map((p) => p.item));
      pending.forEach((p, i) => p.resolve(results[i]));
    } catch (error) {
      await settleFailure(pending, asError(error));
    }
  }

  async function settleFailure(pending: Pending[], failure: Error): Promise<void> {
    if (pending.length === 1 || !isolate(failure)) {
      for (const p of pending) p.reject(failure);
      return;
    }
    const half = Math.ceil(pending.length / 2);
    await writeIsolated(pending.slice(0, half));
    await writeIsolated(pending.slice(half));
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch: { taken?: Pending[] } = {};
      try {
        // Taking twice (a retried transaction) returns the same batch.
        const results = await write(() => (batch.taken ??= nextBatch()).map((p) => p.item));
        (batch.taken ?? []).forEach((p, i) => p.resolve(results[i]));
      } catch (error) {
        const failure = asError(error);
        if (batch.taken) {
          await settleFailure(batch.taken, failure);
        } else {
          // Failed before taking (e.g. the database is down): fail what was waiting, not retry forever.
          for (const p of nextBatch()) p.reject(failure);
        }
      }
    }
  }

  function kick(): void {
    if (writing) return;
    writing = drain().finally(() => {
      writing = null;
      // Submissions that arrived after the loop's last check.
      if (queue.length > 0) kick();
    });
  }

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        kick();
      });
    },
    async drained() {
      while (writing) await writing;
    },
  };
}
