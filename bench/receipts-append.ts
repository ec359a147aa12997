/**
 * Receipt append throughput: 3 service processes writing at once to one PostgreSQL 15
 * (synchronous_commit on, fsync on), group commit vs the naive reference measured in the same run.
 *
 *   npm run bench:receipts          (or: npx tsx bench/receipts-append.ts)
 *
 * Naive reference: the same ledger with maxBatch 1, i.e. per receipt lock the chain head, insert
 * one receipt, commit (every receipt waits for its own WAL flush). Group commit: maxBatch 256.
 * Each process runs APPENDERS concurrent appenders for DURATION_MS; throughput = acknowledged
 * receipts / window. Afterwards the whole chain is verified (one unbroken chain).
 * Target (issue #8): >= 5,000 receipts/s in total.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { availableParallelism, loadavg } from "node:os";
import { createInterface } from "node:readline";
import { createPostgresDatabase } from "../app/src/db/postgres";
import { loadMigrations, migrate } from "../app/src/db/migrate";
import { createLedger, loadSigner, verifyChain } from "../app/src/receipts";
import { startPostgres } from "../test/support/postgres";
import { printTable, summarize, writeResult } from "./lib";
import { postgresCpuUs } from "./pg-cpu";

const PROCESSES = 3;
const APPENDERS = Number(process.env.APPENDERS ?? 128);
const DURATION_MS = Number(process.env.DURATION_MS ?? 4000);
const REPETITIONS = Number(process.env.REPETITIONS ?? 3);
const TARGET = 5000;

// ---- child: one service process ------------------------------------------------------------
async function child(): Promise<void> {
  const url = process.env.BENCH_DATABASE_URL as string;
  const maxBatch = Number(process.env.BENCH_MAX_BATCH);
  const db = createPostgresDatabase({ connectionString: url, max: 4 });
  const signer = await loadSigner({ db, env: {}, log: () => undefined });
  const batches: number[] = [];
  const ledger = createLedger({ db, signer, maxBatch, metrics: { onBatch: (n) => batches.push(n) } });
  for (let i = 0; i < 20; i++) await ledger.append({ operation: "bench.warmup", outcome: "success", evidence: { i }, sector: "bench" });
  batches.length = 0;
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
  process.stdin.destroy();
  const started = Date.now();
  const cpuBefore = process.cpuUsage();
  const deadline = started + DURATION_MS;
  let acked = 0;
  let ackedInWindow = 0;
  await Promise.all(
    Array.from({ length: APPENDERS }, async (_, k) => {
      for (let i = 0; Date.now() < deadline; i++) {
        await ledger.append({ operation: "bench.append", outcome: "success", evidence: { k, i, note: "receipt append benchmark" }, sector: "bench" });
        acked++;
        if (Date.now() <= deadline) ackedInWindow++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  await ledger.close();
  await signer.close();
  await db.close();
  const meanBatch = batches.length ? batches.reduce((a, b) => a + b, 0) / batches.length : 0;
  process.stdout.write(JSON.stringify({ acked, ackedInWindow, windowMs: DURATION_MS, batches: batches.length, meanBatch, cpuUs: cpu.user + cpu.system }) + "\n");
}

// ---- parent -------------------------------------------------------------------------------
interface ChildResult {
  acked: number;
  ackedInWindow: number;
  windowMs: number;
  batches: number;
  meanBatch: number;
  /** CPU time of the process (all threads) while appending, microseconds. */
  cpuUs: number;
}


function spawnChild(url: string, maxBatch: number): { proc: ChildProcess; ready: Promise<void>; result: Promise<ChildResult> } {
  const proc = spawn(process.execPath, ["--import", "tsx", __filename, "--child"], {
    env: { ...process.env, BENCH_DATABASE_URL: url, BENCH_MAX_BATCH: String(maxBatch) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: proc.stdout! });
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  const result = new Promise<ChildResult>((resolve, reject) => {
    lines.on("line", (line) => {
      if (line === "ready") onReady();
      else if (line.startsWith("{")) resolve(JSON.parse(line) as ChildResult);
    });
    proc.on("exit", (code) => (code === 0 ? undefined : reject(new Error(`benchmark child exited with ${code}`))));
  });
  return { proc, ready, result };
}

interface RunResult {
  rate: number;
  meanBatch: number;
  /** CPU (service processes + PostgreSQL) per acknowledged receipt, µs. */
  cpuUsPerReceipt: number;
}

async function runOnce(url: string, dataDir: string, maxBatch: number): Promise<RunResult> {
  const children = Array.from({ length: PROCESSES }, () => spawnChild(url, maxBatch));
  await Promise.all(children.map((c) => c.ready));
  const pgCpuBefore = postgresCpuUs(dataDir);
  for (const c of children) c.proc.stdin!.end("go\n");
  const results = await Promise.all(children.map((c) => c.result));
  const pgCpu = postgresCpuUs(dataDir) - pgCpuBefore;
  const total = results.reduce((a, r) => a + r.ackedInWindow, 0);
  const acked = results.reduce((a, r) => a + r.acked, 0);
  const meanBatch = results.reduce((a, r) => a + r.meanBatch, 0) / results.length;
  const cpu = results.reduce((a, r) => a + r.cpuUs, 0) + pgCpu;
  return { rate: total / (DURATION_MS / 1000), meanBatch, cpuUsPerReceipt: cpu / Math.max(1, acked) };
}

async function parent(): Promise<void> {
  const pg = await startPostgres({ settings: { synchronous_commit: "on", fsync: "on", shared_buffers: "256MB" } });
  try {
    await pg.createDatabase("bench");
    const url = pg.url("bench");
    const db = createPostgresDatabase({ connectionString: url, max: 2 });
    await migrate(db, loadMigrations().filter((m) => m.name === "receipts"));
    console.log(`receipt append: ${PROCESSES} processes x ${APPENDERS} concurrent appenders, ${DURATION_MS} ms windows, ${REPETITIONS} repetitions (+1 warm-up)`);

    const measure = async (label: string, maxBatch: number) => {
      await runOnce(url, pg.dataDir, maxBatch); // warm-up
      const rates: number[] = [];
      const batches: number[] = [];
      const cpus: number[] = [];
      for (let i = 0; i < REPETITIONS; i++) {
        const r = await runOnce(url, pg.dataDir, maxBatch);
        rates.push(r.rate);
        batches.push(r.meanBatch);
        cpus.push(r.cpuUsPerReceipt);
        console.log(
          `  ${label} #${i + 1}: ${Math.round(r.rate)} receipts/s (mean batch ${r.meanBatch.toFixed(1)}, ${Math.round(r.cpuUsPerReceipt)} CPU-µs/receipt)`,
        );
      }
      return { rates, summary: summarize(rates), meanBatch: summarize(batches).median, cpuUs: summarize(cpus).median };
    };
    const naive = await measure("naive (batch 1)", 1);
    const grouped = await measure("group commit", 256);

    const signer = await loadSigner({ db, env: {}, log: () => undefined });
    const closing = createLedger({ db, signer });
    await closing.append({ operation: "bench.done", outcome: "success", evidence: {}, sector: "bench" });
    await closing.close();
    const report = await verifyChain({ db, saveCheckpoint: false });
    await db.close();

    const cores = availableParallelism();
    const row = (name: string, m: typeof naive) => ({
      variant: name,
      median_per_s: Math.round(m.summary.median),
      min: Math.round(m.summary.min),
      max: Math.round(m.summary.max),
      iqr: Math.round(m.summary.iqr),
      mean_batch: Number(m.meanBatch.toFixed(1)),
      cpu_us_per_receipt: Math.round(m.cpuUs),
      cpu_bound_per_s: Math.round((cores * 1e6) / m.cpuUs),
    });
    printTable([row("naive reference", naive), row("group commit", grouped)], undefined, "receipts appended per second, 3 processes, synchronous_commit on");
    console.log(
      `(cpu_bound_per_s = ${cores} cores / CPU per receipt of the writers + PostgreSQL: the rate this machine's CPUs would allow if idle; ` +
        `load average now ${loadavg()[0].toFixed(1)} on ${cores} cores)`,
    );
    const speedup = grouped.summary.median / naive.summary.median;
    const met = grouped.summary.median >= TARGET;
    console.log(`\ngroup commit / naive: ${speedup.toFixed(2)}x; target >= ${TARGET}/s: ${met ? "MET" : "NOT MET"} (${Math.round(grouped.summary.median)}/s)`);
    console.log(`chain after the benchmark: ${report.total_count} receipts, ${report.ok ? "verifies" : "FAILED VERIFICATION"}`);
    const file = writeResult("receipts-append", {
      processes: PROCESSES,
      appenders_per_process: APPENDERS,
      window_ms: DURATION_MS,
      synchronous_commit: "on",
      target_per_s: TARGET,
      load_average_1m: loadavg()[0],
      group_commit: { ...grouped.summary, samples: grouped.rates, mean_batch: grouped.meanBatch, max_batch: 256, cpu_us_per_receipt: grouped.cpuUs, cpu_bound_per_s: (cores * 1e6) / grouped.cpuUs },
      naive_reference: { ...naive.summary, samples: naive.rates, mean_batch: naive.meanBatch, max_batch: 1, cpu_us_per_receipt: naive.cpuUs, cpu_bound_per_s: (cores * 1e6) / naive.cpuUs },
      ratio_group_commit_over_naive: speedup,
      target_met: met,
      chain: { receipts: report.total_count, verifies: report.ok },
    });
    console.log(`results: ${file}`);
    if (!report.ok) process.exitCode = 1;
  } finally {
    await pg.destroy();
  }
}

(process.argv.includes("--child") ? child() : parent()).catch((error) => {
  console.error(error);
  process.exit(1);
});
