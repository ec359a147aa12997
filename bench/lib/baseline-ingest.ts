/**
 * The bare durable ingest server the API benchmark measures the service against: Fastify + pg,
 * one INSERT into the same observations table per POST /api/v1/observations, synchronous_commit
 * on (concurrent commits share WAL flushes through the pool, as PostgreSQL groups them), and
 * nothing else: no token, no permission check, no audit row, no hot path guards, no receipt.
 * What the service does beyond this is what its guarantees cost.
 *
 *   DATABASE_URL=... KNHK_BASELINE_SNAPSHOT_ID=<uuid> node --import tsx bench/lib/baseline-ingest.ts
 *
 * Logs one JSON line {"msg":"baseline listening","api":...,"pid":...} on stderr when ready.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";
import Fastify from "fastify";
import { Pool } from "pg";
import { residentBytesOf } from "./servers";

/** The pool size the service uses by default (DB_POOL_MAX_CONNECTIONS). */
const POOL_MAX = 50;

const INSERT =
  "INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks) " +
  "VALUES (gen_random_uuid(), $1, $2, $3, $4, now(), now(), $5, false, '[]', 0) RETURNING seq, id";

interface Body {
  event_type: string;
  value: unknown;
  sector: string;
  metadata?: Record<string, unknown>;
}

async function serve(): Promise<void> {
  const snapshotId = process.env.KNHK_BASELINE_SNAPSHOT_ID;
  if (!process.env.DATABASE_URL || !snapshotId) throw new Error("DATABASE_URL and KNHK_BASELINE_SNAPSHOT_ID are required");
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: POOL_MAX, options: "-c synchronous_commit=on" });
  const app = Fastify({ logger: false });
  app.post("/api/v1/observations", async (request, reply) => {
    const b = request.body as Body;
    const { rows } = await pool.query<{ seq: string; id: string }>(INSERT, [b.event_type, JSON.stringify(b.value), b.sector, JSON.stringify(b.metadata ?? {}), snapshotId]);
    return reply.status(201).send({ id: rows[0].id, seq: Number(rows[0].seq) });
  });
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  process.stderr.write(`${JSON.stringify({ msg: "baseline listening", api: address, pid: process.pid })}\n`);
  const stop = async () => {
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
}

export interface BaselineProcess {
  readonly pid: number;
  readonly apiUrl: string;
  residentBytes(): number;
  stop(): Promise<void>;
}

/** Starts the baseline as its own process (like the service) and resolves once it listens. */
export async function startBaselineProcess(databaseUrl: string, snapshotId: string): Promise<BaselineProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", __filename], {
    cwd: path.resolve(__dirname, "..", ".."),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: "production", DATABASE_URL: databaseUrl, KNHK_BASELINE_SNAPSHOT_ID: snapshotId },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const lines: string[] = [];
  const started = await new Promise<{ api: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`baseline did not start within 30 s:\n${lines.join("\n")}`)), 30_000);
    child.once("exit", (code) => reject(new Error(`baseline exited during start-up (code ${code}):\n${lines.join("\n")}`)));
    createInterface({ input: child.stderr! }).on("line", (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; api?: string; pid?: number };
        if (entry.msg === "baseline listening" && entry.api && entry.pid) {
          clearTimeout(timer);
          resolve({ api: entry.api, pid: entry.pid });
        }
      } catch {
        // not a JSON line
      }
    });
  }).catch(async (error) => {
    child.kill("SIGKILL");
    await exited;
    throw error;
  });
  return {
    pid: started.pid,
    apiUrl: started.api,
    residentBytes: () => residentBytesOf(started.pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

if (require.main === module) {
  serve().catch((error) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
