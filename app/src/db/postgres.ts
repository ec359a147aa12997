import { Client, Pool, type PoolClient, type PoolConfig } from "pg";
import { breaksConnection } from "./errors";
import { MovableSession, type Generation, type SessionLog } from "./session";
import type { Database, QueryResult, Sql } from "./types";

function wrap(client: Pool | PoolClient): Sql {
  return {
    async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await client.query(text, params as unknown[] | undefined);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    },
    async exec(text: string): Promise<void> {
      await client.query(text);
    },
  };
}


/**
 * Runs fn on a checked-out client. A checked-out client whose connection drops (server restart,
 * failover) emits "error"; without a listener that would crash the process, so the error is kept.
 * A client that broke, or whose query failed with an error that breaks the connection, is
 * released with that error so the pool destroys it instead of handing it out again.
 */
async function withClient<T>(pool: Pool, fn: (client: PoolClient, discard: (error: Error) => void) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken ??= error;
  };
  client.on("error", onError);
  try {
    return await fn(client, onError);
  } catch (error) {
    if (breaksConnection(error)) broken ??= error as Error;
    throw error;
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export interface PostgresDatabase extends Database {
  readonly kind: "postgres";
  /** Connections of every pool: the current credentials' and those still draining after a rotation. */
  poolStats(): PoolStats;
  /**
   * Switches to new credentials for the same database. Connects once with `connectionString`
   * first and throws that connection's error if it fails (then nothing changes). From then on new
   * connections use it; idle connections of the old credentials are closed, checked-out ones
   * finish their work and are then closed; sessions move over holding their advisory locks
   * (session.ts).
   */
  rotate(connectionString: string): Promise<void>;
}

export interface PostgresOptions {
  /** Session moves and reconnects (never credentials). */
  readonly log?: SessionLog;
}

/** A Database over node-postgres pools, one per credential (see rotate). */
export function createPostgresDatabase(config: PoolConfig, options: PostgresOptions = {}): PostgresDatabase {
  const log: SessionLog = options.log ?? (() => undefined);
  let ids = 0;
  const generation = (connectionString?: string): Generation => {
    const pool = new Pool(connectionString ? { ...config, connectionString } : config);
    // An idle client's error (e.g. the server restarted) must not crash the process; the next
    // query surfaces the failure to its caller.
    pool.on("error", () => undefined);
    return { id: ++ids, pool };
  };
  let current = generation();
  const draining = new Map<Generation, Promise<void>>();
  const sessions = new Set<MovableSession>();
  let rotating: Promise<void> = Promise.resolve();
  let closed = false;

  /** Ends an old pool once nothing waits for one of its connections (ending drops waiters). */
  function retire(old: Generation): void {
    const ended = (async () => {
      while (old.pool.waitingCount > 0 && !closed) await new Promise((resolve) => setTimeout(resolve, 25));
      await old.pool.end();
    })()
      .catch(() => undefined)
      .finally(() => draining.delete(old));
    draining.set(old, ended);
  }

  async function probe(connectionString: string): Promise<void> {
    const client = new Client({ ...config, connectionString });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.query("SELECT 1");
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  const host = { current: () => current, log };
  return {
    kind: "postgres",
    query<R>(text: string, params?: readonly unknown[]) {
      return wrap(current.pool).query<R>(text, params);
    },
    exec: (text) => wrap(current.pool).exec(text),
    async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      return withClient(current.pool, async (client, discard) => {
        try {
          await client.query("BEGIN");
          const result = await fn(wrap(client));
          await client.query("COMMIT");
          return result;
        } catch (error) {
          // A ROLLBACK that fails means the connection is gone: the client must not be reused.
          if (!breaksConnection(error)) await client.query("ROLLBACK").catch(discard);
          throw error;
        }
      });
    },
    async session<T>(fn: (session: Sql) => Promise<T>): Promise<T> {
      const session = await MovableSession.open(host);
      sessions.add(session);
      try {
        return await fn(session.sql);
      } finally {
        sessions.delete(session);
        await session.end();
      }
    },
    poolStats() {
      let total = 0;
      let idle = 0;
      let waiting = 0;
      for (const { pool } of [current, ...draining.keys()]) {
        total += pool.totalCount;
        idle += pool.idleCount;
        waiting += pool.waitingCount;
      }
      return { total, idle, waiting };
    },
    rotate(connectionString) {
      const next = rotating.then(async () => {
        if (closed) throw new Error("database is closed");
        await probe(connectionString);
        const old = current;
        current = generation(connectionString);
        retire(old);
        for (const session of sessions) session.credentialsChanged();
      });
      rotating = next.catch(() => undefined);
      return next;
    },
    async close(): Promise<void> {
      closed = true;
      await rotating;
      await Promise.all([current.pool.end(), ...draining.values()]);
    },
  };
}
