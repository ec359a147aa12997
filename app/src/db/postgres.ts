import { Pool, type PoolClient, type PoolConfig } from "pg";
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
 * failover) emits "error"; without a listener that would crash the process, so the error is kept
 * and the broken client is destroyed on release instead of returning to the pool.
 */
async function withClient<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken = error;
  };
  client.on("error", onError);
  try {
    return await fn(client);
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}

export interface PostgresDatabase extends Database {
  readonly pool: Pool;
}

/** A Database over a node-postgres pool. */
export function createPostgresDatabase(config: PoolConfig): PostgresDatabase {
  const pool = new Pool(config);
  // An idle client's error (e.g. the server restarted) must not crash the process; the next
  // query surfaces the failure to its caller.
  pool.on("error", () => undefined);
  const sql = wrap(pool);
  return {
    kind: "postgres",
    pool,
    query: sql.query,
    exec: sql.exec,
    async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      return withClient(pool, async (client) => {
        try {
          await client.query("BEGIN");
          const result = await fn(wrap(client));
          await client.query("COMMIT");
          return result;
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw error;
        }
      });
    },
    session: <T>(fn: (session: Sql) => Promise<T>): Promise<T> => withClient(pool, (client) => fn(wrap(client))),
    async close(): Promise<void> {
      await pool.end();
    },
  };
}
