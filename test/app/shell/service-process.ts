/**
 * The service as its own OS process (node app/src/main.ts) for crash drills: SIGKILL it, start it
 * again, and see what recovery left. It runs as the least-privileged login knhk_app against a real
 * PostgreSQL; the owner only migrates (DATABASE_MIGRATION_URL) and registers the signing key, as
 * in production.
 *
 *   const killable = await prepareServiceProcess(pg, oidc);
 *   const service = await killable.start();
 *   service.process.signal("SIGKILL");
 */
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { createPostgresDatabase, type PostgresDatabase } from "../../../app/src/db/postgres";
import { spawnTracked, type TrackedProcess } from "../../support/processes";
import type { TestPostgres } from "../../support/postgres";
import type { TestOidc } from "./oidc";
import { createServiceDatabase, grantServiceRole } from "./service";

const ROOT = join(__dirname, "..", "..", "..");
const MAIN = join(ROOT, "app", "src", "main.ts");

export interface ServiceProcess {
  readonly process: TrackedProcess;
  readonly apiUrl: string;
}

export interface PreparedServiceProcess {
  readonly database: string;
  /** The test's own connections: as the owner (to inspect everything) and as knhk_app (as the service's CLI would). */
  readonly owner: PostgresDatabase;
  readonly serviceDb: PostgresDatabase;
  /** Starts the service and resolves once it logs "knhk listening" (after its recovery). */
  start(): Promise<ServiceProcess>;
  /** SIGKILLs every process it started and closes the test's connections (for afterAll). */
  close(): Promise<void>;
}

/**
 * Creates the database, starts the service once as the owner (which migrates and creates
 * knhk_service), grants that role to knhk_app, and from then on starts it as knhk_app.
 */
export async function prepareServiceProcess(pg: TestPostgres, oidc: TestOidc, env: Record<string, string> = {}): Promise<PreparedServiceProcess> {
  const database = await createServiceDatabase(pg);
  const ownerUrl = pg.url(database);
  const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  let serviceEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...oidc.env(),
    DATABASE_URL: ownerUrl,
    DATABASE_MIGRATION_URL: ownerUrl,
    KNHK_HOST: "127.0.0.1",
    KNHK_PORT: "0",
    KNHK_METRICS_PORT: "0",
    KNHK_LOG_LEVEL: "silent",
    KNHK_MAPE_K_INTERVAL_SECONDS: "0",
    KNHK_RATE_LIMIT_MAX: "1000000",
    DB_POOL_MIN_CONNECTIONS: "0",
    DB_POOL_MAX_CONNECTIONS: "20",
    KNHK_SIGNING_KEY_PEM: pem,
    KNHK_SIGNING_KEY_VERSION: "1",
    ...env,
  };
  const started: TrackedProcess[] = [];
  const start = (): Promise<ServiceProcess> => {
    const proc = spawnTracked(process.execPath, ["--import", "tsx", MAIN], { cwd: ROOT, env: serviceEnv, stdio: ["ignore", "ignore", "pipe"] });
    started.push(proc);
    let stderr = "";
    return new Promise((resolve, reject) => {
      proc.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
        const line = stderr.split("\n").find((l) => l.includes('"msg":"knhk listening"'));
        if (line) resolve({ process: proc, apiUrl: (JSON.parse(line) as { api: string }).api });
      });
      void proc.exited.then(({ code, signal }) => reject(new Error(`service exited (${code ?? signal}) before listening:\n${stderr}`)));
    });
  };
  const first = await start();
  await first.process.stop("SIGTERM");
  await grantServiceRole(pg, database);
  serviceEnv = { ...serviceEnv, DATABASE_URL: pg.url(database, "knhk_app") };
  const owner = createPostgresDatabase({ connectionString: ownerUrl, max: 2 });
  const serviceDb = createPostgresDatabase({ connectionString: pg.url(database, "knhk_app"), max: 2 });
  return {
    database,
    owner,
    serviceDb,
    start,
    async close() {
      for (const p of started) await p.stop("SIGKILL").catch(() => undefined);
      await serviceDb.close().catch(() => undefined);
      await owner.close().catch(() => undefined);
    },
  };
}
