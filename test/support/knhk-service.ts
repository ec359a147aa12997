/**
 * The KNHK service as its own process (`node --import tsx app/src/main.ts`, tracked for the leak
 * check) on a real PostgreSQL, as production runs it: the migrations applied by the owner first,
 * the service logged in as the least-privileged `knhk_app` (member of knhk_service), the owner URL
 * only as DATABASE_MIGRATION_URL (schema check and signing-key registration, as the pre-deploy Job).
 * With DATABASE_URL_FILE in `env`, the service reads its URL from that file instead.
 */
import { join } from "node:path";
import { prepareServiceDatabase } from "../../bench/lib/servers";
import { freePort, waitFor } from "./ports";
import type { TestPostgres } from "./postgres";
import { spawnTracked, type TrackedProcess } from "./processes";

const REPO = join(__dirname, "..", "..");

export interface KnhkService {
  readonly apiUrl: string;
  readonly metricsUrl: string;
  readonly process: TrackedProcess;
  /** What the service wrote to stdout and stderr (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export async function startKnhkService(options: { pg: TestPostgres; database: string; env: Record<string, string> }): Promise<KnhkService> {
  const { pg, database } = options;
  await prepareServiceDatabase(pg, database);
  const [port, metricsPort] = [await freePort(), await freePort()];
  const apiUrl = `http://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const output: string[] = [];
  const proc = spawnTracked(process.execPath, ["--import", "tsx", join(REPO, "app", "src", "main.ts")], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: "production",
      DATABASE_URL: pg.url(database, "knhk_app"),
      DATABASE_MIGRATION_URL: pg.url(database),
      KNHK_HOST: "127.0.0.1",
      KNHK_PORT: String(port),
      KNHK_METRICS_PORT: String(metricsPort),
      KNHK_LOG_LEVEL: "warn",
      ...options.env,
      // Credentials from a file (as Vault Agent renders them) replace the URL, as in the pod.
      ...(options.env.DATABASE_URL_FILE ? { DATABASE_URL: "" } : {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.child.stdout!.on("data", (d) => output.push(String(d)));
  proc.child.stderr!.on("data", (d) => output.push(String(d)));
  const log = () => output.join("").slice(-4000);
  try {
    await waitFor("the service's /ready", async () => !proc.hasExited() && (await fetch(`${apiUrl}/ready`).then((r) => r.ok, () => false)), 120_000, 250);
  } catch (error) {
    await proc.stop();
    throw new Error(`${(error as Error).message}\nservice log:\n${log()}`);
  }
  return { apiUrl, metricsUrl, process: proc, log, stop: () => proc.stop() };
}
