/**
 * Write load through the KNHK service's API: `workers` clients each POST one observation at a
 * time (a row plus its receipt in the ledger, committed synchronously) and record every answer.
 * A 201 is an acknowledged write: the drills check afterwards that each one survived.
 */
/** A client's pause before it tries again after a failed write. */
const RETRY_PAUSE_MS = 100;

export interface WriteAttempt {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly status: number;
  /** The observation's id when acknowledged. */
  readonly id?: string;
  readonly error?: string;
}

export interface ReceiptLoad {
  readonly attempts: readonly WriteAttempt[];
  acknowledgedIds(): string[];
  /** Time of the first acknowledged write that started after `t` (ms), waiting up to `timeoutMs`. */
  firstAcknowledgedAfter(t: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

export function startReceiptLoad(options: { apiUrl: string; token: string; workers?: number; sector?: string }): ReceiptLoad {
  const attempts: WriteAttempt[] = [];
  let stopped = false;
  let counter = 0;
  const worker = async () => {
    while (!stopped) {
      const startedAt = Date.now();
      try {
        const response = await fetch(`${options.apiUrl}/api/v1/observations`, {
          method: "POST",
          headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" },
          body: JSON.stringify({ event_type: "failover-drill", value: ++counter, sector: options.sector ?? "logistics" }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await response.json().catch(() => ({}))) as { id?: string };
        attempts.push({ startedAt, endedAt: Date.now(), status: response.status, id: response.status === 201 ? body.id : undefined });
        if (response.status !== 201) await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      } catch (error) {
        attempts.push({ startedAt, endedAt: Date.now(), status: 0, error: (error as Error).message });
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  };
  const workers = Array.from({ length: options.workers ?? 4 }, worker);
  return {
    attempts,
    acknowledgedIds: () => attempts.filter((a) => a.status === 201 && a.id).map((a) => a.id as string),
    async firstAcknowledgedAfter(t, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const first = attempts.filter((a) => a.status === 201 && a.startedAt >= t).reduce((min, a) => Math.min(min, a.endedAt), Infinity);
        if (first !== Infinity) return first;
        if (Date.now() > deadline) {
          const last = attempts.slice(-3).map((a) => `${a.status} ${a.error ?? ""}`).join("; ");
          throw new Error(`no acknowledged write within ${timeoutMs} ms (last answers: ${last})`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}
