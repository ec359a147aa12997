/**
 * The service as a separate OS process for load benchmarks: `node --import tsx app/src/main.ts`
 * (one process, so its pid is the one whose memory is sampled), against a real PostgreSQL 15 and
 * Redis started by the test support helpers. The service runs as the least-privileged login
 * role `knhk_app`, after the migrations were applied as the owner, like in production.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { migrate } from "../../app/src/db/migrate";
import { openDatabase } from "../../app/src/db/open";
import type { TestPostgres } from "../../test/support/postgres";

const ROOT = path.resolve(__dirname, "..", "..");

export interface ServiceProcess {
  readonly pid: number;
  readonly apiUrl: string;
  readonly metricsUrl: string;
  readonly database: string;
  /** The last lines the service wrote to stderr (start-up and warnings), for error reports. */
  readonly stderrTail: string[];
  /** Resident set size of the service process in bytes (/proc/<pid>/status VmRSS). */
  residentBytes(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface ServiceProcessOptions {
  readonly pg: TestPostgres;
  readonly database: string;
  /** Extra environment (OIDC issuers, REDIS_URL, tuning); wins over the defaults below. */
  readonly env: Record<string, string>;
  readonly startTimeoutMs?: number;
}

/** Applies the migrations as the owner and grants the service role to the login role knhk_app. */
export async function prepareServiceDatabase(pg: TestPostgres, database: string): Promise<void> {
  await pg.createDatabase(database);
  const owner = await openDatabase({ url: pg.url(database), poolMax: 1, poolMin: 0 });
  try {
    await migrate(owner);
  } finally {
    await owner.close();
  }
  await pg.psql(
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_app') THEN CREATE ROLE knhk_app LOGIN; END IF; END $$; GRANT knhk_service TO knhk_app;",
    database,
  );
}

export function residentBytesOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** The service process's own environment: production mode, loopback, the `knhk_app` login. */
export function serviceProcessEnv(pg: TestPostgres, database: string): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "production", DATABASE_URL: pg.url(database, "knhk_app"), KNHK_HOST: "127.0.0.1" };
}

/** Starts the service and resolves once it logged "knhk listening" (with its URLs). */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const { pg, database } = options;
  const env: NodeJS.ProcessEnv = {
    ...serviceProcessEnv(pg, database),
    DATABASE_MIGRATION_URL: pg.url(database),
    KNHK_PORT: "0",
    KNHK_METRICS_PORT: "0",
    ...options.env,
  };
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "app/src/main.ts")], {
    cwd: ROOT,
    env,
    // The request log (stdout, pino) is written as in production but not kept.
    stdio: ["ignore", "ignore", "pipe"],
  });
  const stderrTail: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const listening = new Promise<{ api: string; metrics: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`service did not start within ${options.startTimeoutMs ?? 60_000} ms:\n${stderrTail.join("\n")}`)),
      options.startTimeoutMs ?? 60_000,
    );
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`service exited during start-up (code ${code}, signal ${signal}):\n${stderrTail.join("\n")}`));
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 50) stderrTail.shift();
      try {
        const entry = JSON.parse(line) as { msg?: string; api?: string; metrics?: string; pid?: number };
        if (entry.msg === "knhk listening" && entry.api && entry.metrics && entry.pid) {
          clearTimeout(timer);
          resolve({ api: entry.api, metrics: entry.metrics, pid: entry.pid });
        }
      } catch {
        // not a JSON log line
      }
    });
  });

  let started: { api: string; metrics: string; pid: number };
  try {
    started = await listening;
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  }
  if (started.pid !== child.pid) {
    child.kill("SIGKILL");
    throw new Error(`service reported pid ${started.pid} but the spawned process is ${child.pid}: memory would be sampled from the wrong process`);
  }
  return {
    pid: started.pid,
    apiUrl: started.api,
    metricsUrl: started.metrics,
    database,
    stderrTail,
    residentBytes: () => residentBytesOf(started.pid),
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
