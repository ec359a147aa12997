import { PGlite, type Transaction } from "@electric-sql/pglite";
import type { Database, QueryResult, Sql } from "./types";

function wrap(db: PGlite | Transaction): Sql {
  return {
    async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await db.query<R>(text, params as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(text: string): Promise<void> {
      await db.exec(text);
    },
  };
}

/**
 * The embedded fallback when no DATABASE_URL is configured: the same SQL and migrations on
 * PGlite (PostgreSQL compiled to WebAssembly), in memory or in `dataDir`.
 * PGlite is single-connection: transactions and sessions are serialised by PGlite itself.
 */
export async function createPgliteDatabase(dataDir?: string): Promise<Database> {
  const db = await PGlite.create(dataDir);
  const sql = wrap(db);
  return {
    kind: "pglite",
    query: sql.query,
    exec: sql.exec,
    transaction: <T>(fn: (tx: Sql) => Promise<T>) => db.transaction((tx) => fn(wrap(tx))),
    session: <T>(fn: (session: Sql) => Promise<T>) => fn(sql),
    close: () => db.close(),
  };
}
