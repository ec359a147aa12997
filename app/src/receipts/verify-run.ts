/**
 * Hands verify-chain's planned ranges to whoever verifies them: the worker threads (up to
 * PIPELINE ranges each, so none waits for its next range) and, when it takes part, the calling
 * thread, which reads its own next range while it checks the current one. Results are delivered
 * with their range's index (the caller joins them in order). The first failure stops the handing
 * out; it is thrown once the ranges in flight have settled, so no result arrives after the throw.
 */
import type { RangeResult, RangeRow, RangeVerifier } from "./verify-core";
import type { PlannedRange, RangePlanner } from "./verify-plan";
import { PIPELINE, type VerifierThreads } from "./verify-threads";

/** The calling thread as a verifier: how it reads a range, and the checks it runs on it. */
export interface CallerLane {
  read(range: PlannedRange): Promise<RangeRow[]>;
  readonly verify: RangeVerifier;
}

export interface RunRanges {
  readonly planner: RangePlanner;
  readonly threads: VerifierThreads | null;
  /** Reads a range for threads without a connection of their own. */
  readonly readForThreads: (range: PlannedRange) => Promise<RangeRow[]>;
  readonly caller: CallerLane | null;
  readonly deliver: (index: number, result: RangeResult) => void;
}

export async function runRanges({ planner, threads, readForThreads, caller, deliver }: RunRanges): Promise<void> {
  if (!threads && !caller) throw new Error("verify-chain: neither threads nor the calling thread to verify with");
  let index = 0;
  let exhausted = false;
  const take = async (): Promise<{ index: number; range: PlannedRange } | null> => {
    if (exhausted) return null;
    const range = await planner.next();
    if (!range) exhausted = true;
    return range ? { index: index++, range } : null;
  };

  const inFlight = new Set<Promise<void>>();
  let failure: Error | null = null;
  const fail = (error: Error) => {
    failure ??= error;
  };
  const own: Array<{ index: number; rows: Promise<RangeRow[]> }> = [];
  try {
    while (!failure) {
      // The threads first: a thread that waits for a range is a core doing nothing.
      while (threads?.hasRoom() && !failure) {
        const item = await take();
        if (!item) break;
        const rows = threads.connection ? undefined : await readForThreads(item.range);
        const done: Promise<void> = threads
          .verify(item.range, rows)
          .then((result) => deliver(item.index, result), fail)
          .finally(() => inFlight.delete(done));
        inFlight.add(done);
      }
      if (failure) break;
      if (caller) {
        while (own.length < PIPELINE) {
          const item = await take();
          if (!item) break;
          const rows = caller.read(item.range);
          rows.catch(() => undefined); // awaited below, in order
          own.push({ index: item.index, rows });
        }
        const mine = own.shift();
        if (mine) {
          const rows = await mine.rows;
          // A macrotask first: the reader sends its next query before this thread is busy checking.
          await new Promise((resolve) => setImmediate(resolve));
          deliver(mine.index, caller.verify(rows));
          continue;
        }
      }
      if (inFlight.size > 0) {
        await Promise.race(inFlight);
        continue;
      }
      if (exhausted) break;
      // Ranges left, none in flight, no thread with room and no calling thread to take them.
      throw new Error("verify-chain: every verifier thread has exited");
    }
  } catch (error) {
    fail(error as Error);
  } finally {
    await Promise.all([...inFlight, ...own.map((o) => o.rows.catch(() => undefined))]);
  }
  if (failure) throw failure;
}
