/**
 * Shared set-up for the receipt and audit tests: a real PostgreSQL 15 (synchronous_commit on)
 * with the ledger migrations applied by the owner (superuser `postgres`), and a login role
 * `knhk_app` that is a member of `knhk_service`, as deployments grant it.
 */
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { loadMigrations, migrate } from "../../app/src/db/migrate";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { waitFor } from "../support/ports";
import { spawnTracked } from "../support/processes";

export interface LedgerPostgres {
  readonly pg: TestPostgres;
  /** Connected as the database owner (superuser): may bypass the append-only trigger. */
  readonly owner: PostgresDatabase;
  /** Connected as knhk_app, a LOGIN member of knhk_service. */
  readonly service: PostgresDatabase;
  readonly ownerUrl: string;
  readonly serviceUrl: string;
  close(): Promise<void>;
}

/** Only the ledger's own migrations, so these tests do not depend on other areas' schema. */
export function ledgerMigrations() {
  return loadMigrations().filter((m) => ["receipts", "audit_log", "receipt_outbox_and_key_registrars"].includes(m.name));
}

export async function startLedgerPostgres(database = "knhk", settings: Record<string, string> = {}): Promise<LedgerPostgres> {
  const pg = await startPostgres({ settings: { synchronous_commit: "on", ...settings } });
  await pg.createDatabase(database);
  const ownerUrl = pg.url(database);
  const owner = createPostgresDatabase({ connectionString: ownerUrl, max: 4 });
  await migrate(owner, ledgerMigrations());
  await pg.psql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_app') THEN CREATE ROLE knhk_app LOGIN; END IF; END $$; GRANT knhk_service TO knhk_app;", database);
  const serviceUrl = pg.url(database, "knhk_app");
  const service = createPostgresDatabase({ connectionString: serviceUrl, max: 8 });
  return {
    pg,
    owner,
    service,
    ownerUrl,
    serviceUrl,
    async close() {
      await service.close().catch(() => undefined);
      await owner.close().catch(() => undefined);
      await pg.destroy();
    },
  };
}

/** Runs SQL as the owner with triggers off (session_replication_role = replica): tampering. */
export async function asOwnerBypassingTriggers(db: PostgresDatabase, sql: string, params: unknown[] = []): Promise<number> {
  return db.session(async (s) => {
    await s.exec("SET session_replication_role = replica");
    try {
      return (await s.query(sql, params)).rowCount;
    } finally {
      await s.exec("RESET session_replication_role");
    }
  });
}

/**
 * Runs test/app/tree-writer-script.ts as a child process against `databaseUrl` (tree "receipts" or
 * "audit", `step` leaves per transaction) and kills it with SIGKILL once it has reported
 * `killAfterSteps` committed steps.
 */
export async function killTreeWriterAfter(databaseUrl: string, tree: "receipts" | "audit", step: number, killAfterSteps: number): Promise<void> {
  const root = join(__dirname, "..", "..");
  const writer = spawnTracked(process.execPath, ["--import", "tsx", join(root, "test", "app", "tree-writer-script.ts")], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, TREE: tree, TREE_STEP: String(step) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let steps = 0;
  writer.child.stdout?.on("data", (d: Buffer) => (steps += d.toString().split("\n").length - 1));
  await waitFor(`${killAfterSteps} steps of the writer`, async () => steps >= killAfterSteps || writer.hasExited(), 60_000, 2);
  writer.signal("SIGKILL");
  await writer.stop();
}

/** How many stored hashes a tree's run table holds (each run is 32-byte hashes concatenated). */
export async function storedHashesIn(db: Pick<PostgresDatabase, "query">, table: "receipt_tree_hash_runs" | "audit_tree_hash_runs"): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT coalesce(sum(length(hashes) / 32), 0)::text AS n FROM ${table}`);
  return Number(rows[0].n);
}
