/**
 * The KNHK service as its own process (`node --import tsx app/src/main.ts`, tracked for the leak
 * check) on a real PostgreSQL, as the Deployment runs it: the owner (the migration Job's identity)
 * migrates and registers the signing key file first; the service logs in as the least-privileged
 * `knhk_app` (member of knhk_service) with KNHK_MIGRATE_ON_START=false and no owner credential.
 * With DATABASE_URL_FILE in `env`, the service reads its URL from that file instead.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../app/src/db/open";
import { prepareServiceDatabase, serviceProcessEnv } from "../../bench/lib/servers";
import { freePort, waitFor } from "./ports";
import type { TestPostgres } from "./postgres";
import { spawnTracked, type TrackedProcess } from "./processes";
import { provisionSigningKey } from "./signing-key";

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
  const keyDir = mkdtempSync(join(tmpdir(), "knhk-service-key-"));
  const removeKey = () => rmSync(keyDir, { recursive: true, force: true });
  const owner = await openDatabase({ url: pg.url(database), poolMax: 1, poolMin: 0 });
  let signingKey: Record<string, string>;
  try {
    signingKey = await provisionSigningKey(owner, keyDir);
  } finally {
    await owner.close();
  }
  const [port, metricsPort] = [await freePort(), await freePort()];
  const apiUrl = `http://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const output: string[] = [];
  const proc = spawnTracked(process.execPath, ["--import", "tsx", join(REPO, "app", "src", "main.ts")], {
    cwd: REPO,
    env: {
      ...serviceProcessEnv(pg, database),
      KNHK_MIGRATE_ON_START: "false",
      ...signingKey,
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
    removeKey();
    throw new Error(`${(error as Error).message}\nservice log:\n${log()}`);
  }
  return {
    apiUrl,
    metricsUrl,
    process: proc,
    log,
    async stop() {
      await proc.stop();
      removeKey();
    },
  };
}
