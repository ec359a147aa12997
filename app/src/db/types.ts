/** The storage seam shared by PostgreSQL (node-postgres) and the embedded PGlite fallback. */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Sql {
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

export interface Database extends Sql {
  readonly kind: "postgres" | "pglite";
  /** Runs fn in one transaction on one connection; rolls back when fn throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  /** Runs fn on one dedicated connection (session-level advisory locks, LISTEN). */
  session<T>(fn: (session: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
