/**
 * A dedicated connection (Database.session) that outlives a credential rotation.
 *
 * Sessions hold session-level advisory locks for a long time (the ledger's outbox owner lock for
 * the process's life, the MAPE-K leader lock for a leader's tenure). When the database's
 * credentials change, the old credential is revoked some time later and its backends are
 * terminated, so such a session must move to a connection on the new credential first, without
 * ever letting them go:
 *
 *   1. when the session is idle (no query in flight, no open transaction), take a connection on
 *      the new credential and list the old connection's granted advisory locks (pg_locks);
 *   2. for each lock: the new connection requests it (and queues behind the old one); once
 *      pg_blocking_pids shows it waits for the old connection alone, the old one releases it and
 *      PostgreSQL grants it to the waiter in the same step, so no third session can take it;
 *   3. the old connection is closed; the session's queries go to the new one.
 *
 * A lock another backend already waits for is not moved (that waiter would get it first): the
 * move is retried later; short sessions (a cycle's lock) end on their own and their connection is
 * discarded. If the connection dropped because its credential was revoked before the renewal
 * arrived, the session reconnects once the new credential is there and re-takes the advisory
 * locks it held with pg_try_advisory_lock; if another session took one meanwhile, the session is
 * lost and every later query throws SessionLostError (the caller competes again). A connection
 * that drops while its credential is still current (failover, a terminated backend) ends the
 * session as before: its queries fail and its owner competes again.
 * Other session state (SET, LISTEN, temporary tables) does not move; no session here uses any.
 */
import type { Pool, PoolClient } from "pg";
import type { QueryResult, Sql } from "./types";

/** The pool connections come from: the current credentials' (changes on rotation). */
export interface Generation {
  readonly id: number;
  readonly pool: Pool;
}

export type SessionLog = (level: "info" | "warn", message: string, extra?: Record<string, unknown>) => void;

export interface SessionHost {
  current(): Generation;
  readonly log: SessionLog;
}

export class SessionLostError extends Error {
  constructor(reason: string) {
    super(`database session lost: ${reason}`);
    this.name = "SessionLostError";
  }
}

interface AdvisoryLock {
  readonly shared: boolean;
  /** Two int4 keys (pg_advisory_lock(int, int)) rather than one bigint key. */
  readonly pair: boolean;
  readonly k1: string;
  readonly k2: string;
  readonly contended: boolean;
}

/** Session-level advisory locks this connection holds; `contended` when another backend waits for it. */
const HELD_LOCKS = `SELECT l.mode = 'ShareLock' AS shared, l.objsubid = 2 AS pair,
  CASE WHEN l.objsubid = 1 THEN ((l.classid::int8 << 32) | l.objid::int8)::text
       ELSE (((l.classid::int8 + 2147483648) % 4294967296) - 2147483648)::text END AS k1,
  (((l.objid::int8 + 2147483648) % 4294967296) - 2147483648)::text AS k2,
  EXISTS (SELECT 1 FROM pg_locks w WHERE w.locktype = 'advisory' AND NOT w.granted AND w.database = l.database
          AND w.classid = l.classid AND w.objid = l.objid AND w.objsubid = l.objsubid) AS contended
FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted`;

function lockCall(fn: "lock" | "unlock" | "try", lock: AdvisoryLock): { text: string; params: string[] } {
  const name = { lock: "pg_advisory_lock", unlock: "pg_advisory_unlock", try: "pg_try_advisory_lock" }[fn] + (lock.shared ? "_shared" : "");
  return lock.pair
    ? { text: `SELECT ${name}($1::int4, $2::int4) AS ok`, params: [lock.k1, lock.k2] }
    : { text: `SELECT ${name}($1::int8) AS ok`, params: [lock.k1] };
}

/** How long the new connection may wait for a lock during a move (then the move is abandoned). */
const MOVE_LOCK_TIMEOUT = "5s";
const MOVE_QUEUE_WAIT_MS = 2000;
const RETRY_MS = 1000;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class Postponed extends Error {}

function isIdle(client: PoolClient): boolean {
  // node-postgres records the transaction status of the last ReadyForQuery: I idle, T/E in a transaction.
  const status = (client as unknown as { getTransactionStatus?: () => string | null }).getTransactionStatus?.();
  return status === "I" || status === null || status === undefined;
}

export class MovableSession {
  private client!: PoolClient;
  private generation!: Generation;
  private broken: Error | undefined;
  private lost: SessionLostError | undefined;
  private busy = 0;
  private moving: Promise<void> | undefined;
  /** A move that moved some locks and then failed leaves them on `extras`: the session stays put. */
  private pinned = false;
  private readonly extras: PoolClient[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  /** The advisory locks the connection held when last asked (re-taken after a dropped connection). */
  private knownLocks: AdvisoryLock[] = [];
  private ended = false;
  /** Logged once per distinct reason, not on every retry. */
  private lastMoveFailure: string | undefined;
  private readonly onError = (error: Error) => {
    this.broken ??= error;
    this.afterIdle();
  };

  readonly sql: Sql = {
    query: <R>(text: string, params?: readonly unknown[]) => this.run<R>(text, params),
    exec: async (text: string) => void (await this.run(text)),
  };

  private constructor(private readonly host: SessionHost) {}

  static async open(host: SessionHost): Promise<MovableSession> {
    const session = new MovableSession(host);
    session.generation = host.current();
    session.attach(await session.generation.pool.connect());
    return session;
  }

  /** Called when the credentials changed: moves as soon as the session is idle. */
  credentialsChanged(): void {
    this.afterIdle();
  }

  /** Returns the connection to its pool (or closes it, if it broke or belongs to old credentials). */
  async end(): Promise<void> {
    this.ended = true;
    clearTimeout(this.retryTimer);
    await this.moving?.catch(() => undefined);
    for (const extra of this.extras.splice(0)) this.detach(extra, true);
    this.detach(this.client, this.broken ?? (this.generation !== this.host.current() || undefined));
  }

  private attach(client: PoolClient): void {
    client.on("error", this.onError);
    this.client = client;
  }

  private detach(client: PoolClient, destroy?: Error | boolean): void {
    client.off("error", this.onError);
    client.release(destroy);
  }

  private async run<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    for (;;) {
      while (this.moving) await this.moving.catch(() => undefined);
      if (this.lost) throw this.lost;
      if (!this.broken) break;
      // Dropped on the current credentials (failover, a terminated backend): the session is gone,
      // as it always was; its owner competes again. Dropped on credentials since replaced: the
      // query waits for the reconnect on the new ones (and fails with its error).
      if (this.generation === this.host.current()) throw this.broken;
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      await this.begin(() => this.restore());
    }
    this.busy++;
    try {
      const result = await this.client.query(text, params as unknown[] | undefined);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    } finally {
      // Outside a transaction every advisory lock left is session-level: remember them.
      if (/advisory/i.test(text) && !this.broken && isIdle(this.client)) await this.refreshLocks().catch(() => undefined);
      this.busy--;
      this.afterIdle();
    }
  }

  private async refreshLocks(): Promise<void> {
    this.knownLocks = (await this.client.query<AdvisoryLock>(HELD_LOCKS)).rows;
  }

  /** Runs a move or reconnect as the one step in progress; queries wait for it. */
  private begin(step: () => Promise<void>): Promise<void> {
    const running = step();
    this.moving = running
      .catch(() => this.retryLater())
      .finally(() => {
        this.moving = undefined;
      });
    return running;
  }

  /** Starts a move (or a reconnect) when there is reason to and nothing is in flight. */
  private afterIdle(): void {
    if (this.ended || this.busy > 0 || this.moving || this.retryTimer || this.lost) return;
    if (this.broken) {
      if (this.generation !== this.host.current()) void this.begin(() => this.restore()).catch(() => undefined);
    } else if (this.shouldMove()) void this.begin(() => this.move()).catch(() => undefined);
  }

  private shouldMove(): boolean {
    return !this.pinned && this.generation !== this.host.current() && isIdle(this.client);
  }

  private retryLater(): void {
    if (this.ended || this.lost) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.afterIdle();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  /** Moves to a connection on the current credentials, carrying every advisory lock over without a gap. */
  private async move(): Promise<void> {
    const target = this.host.current();
    const next = await target.pool.connect();
    next.on("error", this.onError);
    let moved = 0;
    try {
      const locks = (await this.client.query<AdvisoryLock>(HELD_LOCKS)).rows;
      if (locks.some((l) => l.contended)) throw new Postponed("another session waits for one of its advisory locks");
      const [from, to] = await Promise.all([
        this.client.query<{ pid: number; db: string }>("SELECT pg_backend_pid() AS pid, current_database() AS db"),
        next.query<{ pid: number; db: string }>("SELECT pg_backend_pid() AS pid, current_database() AS db"),
      ]);
      if (from.rows[0].db !== to.rows[0].db) {
        this.pinned = true;
        throw new Postponed("the new credentials connect to another database; the session stays on the old connection");
      }
      await next.query(`SET lock_timeout = '${MOVE_LOCK_TIMEOUT}'`);
      for (const lock of locks) {
        await this.moveLock(lock, from.rows[0].pid, next, to.rows[0].pid);
        moved++;
      }
      await next.query("RESET lock_timeout");
      const old = this.client;
      this.attach(next);
      this.generation = target;
      this.knownLocks = locks;
      this.detach(old, true);
      this.host.log("info", "database session moved to the new credentials", { advisory_locks: locks.length });
    } catch (error) {
      if (moved > 0) {
        // Some locks now live on `next`: keep both connections until the session ends.
        this.pinned = true;
        this.extras.push(next);
      } else {
        next.off("error", this.onError);
        next.release(true);
      }
      const reason = (error as Error).message;
      if (reason !== this.lastMoveFailure) {
        this.lastMoveFailure = reason;
        this.host.log("warn", "database session not moved to the new credentials yet", {
          reason,
          ...(this.pinned ? { stays_on_old_credentials: true } : { retry_in_ms: RETRY_MS }),
        });
      }
      throw error;
    }
  }

  private async moveLock(lock: AdvisoryLock, fromPid: number, next: PoolClient, toPid: number): Promise<void> {
    const request = lockCall("lock", lock);
    let granted = false;
    const acquiring = next.query(request.text, request.params).then(() => {
      granted = true;
    });
    acquiring.catch(() => undefined);
    let queuedBehindOldOnly = false;
    const deadline = Date.now() + MOVE_QUEUE_WAIT_MS;
    while (!granted && Date.now() < deadline) {
      const pids = (await this.client.query<{ pids: number[] }>("SELECT pg_blocking_pids($1) AS pids", [toPid])).rows[0].pids;
      if (pids.some((pid) => pid !== fromPid)) break; // someone is ahead of the new connection: do not release
      if (pids.length > 0) {
        queuedBehindOldOnly = true;
        break;
      }
      await delay(5);
    }
    if (granted || queuedBehindOldOnly) {
      const release = lockCall("unlock", lock);
      await this.client.query(release.text, release.params);
    }
    // Granted at once (a shared lock), handed over by the release, or, if another session was
    // ahead, failed by lock_timeout: then the old connection still holds the lock.
    await acquiring;
  }

  /** After the connection dropped: reconnect and re-take the advisory locks the session held. */
  private async restore(): Promise<void> {
    const target = this.host.current();
    const next = await target.pool.connect();
    next.on("error", this.onError);
    try {
      for (const lock of this.knownLocks) {
        const call = lockCall("try", lock);
        const ok = (await next.query<{ ok: boolean }>(call.text, call.params)).rows[0].ok;
        if (!ok) throw new SessionLostError("its connection dropped and another session took one of its advisory locks");
      }
    } catch (error) {
      next.off("error", this.onError);
      next.release(true);
      if (error instanceof SessionLostError) {
        this.lost = error;
        this.host.log("warn", error.message);
      }
      throw error;
    }
    const old = this.client;
    const reason = this.broken?.message;
    this.attach(next);
    this.generation = target;
    this.broken = undefined;
    this.detach(old, true);
    this.host.log("warn", "database session re-established after its connection dropped", { reason, advisory_locks: this.knownLocks.length });
  }
}
