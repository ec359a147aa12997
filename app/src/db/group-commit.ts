/**
 * Group commit: concurrent submissions queue up and one writer loop stores them in batches, one
 * transaction (one WAL flush) per batch; a submission resolves only after its batch is stored.
 * While a batch is being written, new submissions accumulate for the next one.
 *
 * `write(take)` stores one batch: it calls `take()` when it is ready to include items (the receipt
 * ledger takes them only once it holds the chain head lock, so everything that arrived while it
 * waited joins the batch) and returns one result per taken item, in order.
 */
export interface GroupCommit<T, R> {
  submit(item: T): Promise<R>;
  /** Resolves once nothing is being written (everything queued so far is stored or failed). */
  drained(): Promise<void>;
}

export function createGroupCommit<T, R>(maxBatch: number, write: (take: () => T[]) => Promise<R[]>): GroupCommit<T, R> {
  type Pending = { item: T; resolve(result: R): void; reject(error: Error): void };
  const queue: Pending[] = [];
  let writing: Promise<void> | null = null;

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch: { taken?: Pending[] } = {};
      try {
        // Taking twice (a retried transaction) returns the same batch.
        const results = await write(() => (batch.taken ??= queue.splice(0, maxBatch)).map((p) => p.item));
        (batch.taken ?? []).forEach((p, i) => p.resolve(results[i]));
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        // Failed before taking (e.g. the database is down): fail what was waiting, not retry forever.
        const failed = batch.taken ?? queue.splice(0, maxBatch);
        for (const p of failed) p.reject(failure);
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
