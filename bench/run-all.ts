/**
 * `npm run bench`: every benchmark in sequence, each in its own process (exactly as its own npm
 * script runs it), then BENCHMARKS.md. A failing benchmark does not stop the others; the run
 * exits non-zero if any failed. The load average before and after each benchmark and the wall
 * times go to bench/results/run-all.json, so the report can say under what load a figure was
 * measured even when the benchmark does not record it itself.
 *
 *   npm run bench [-- --quick] [-- --only api,warm-path]
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import * as path from "node:path";
import { figuresOf, inReportOrder, type RunEntry, type RunRecord } from "./lib/report";
import { RESULTS_DIR } from "./lib/results";
import { printTable } from "./lib/table";
import { readResults, RUN_RECORD, writeReport } from "./report";

const ROOT = path.resolve(__dirname, "..");
/** The whole run should stay under this on 2 cores (issue #8: 600 s, plus the failover drills of issue #13, about 9 min). */
const BUDGET_SECONDS = 1200;

interface Benchmark {
  readonly name: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly quickArgs: readonly string[];
}

/** Cheap and CPU-bound first, then the server-backed ones; the stack render is bounded to 3 runs. */
const SEQUENCE: readonly Benchmark[] = [
  { name: "hotpath", file: "bench/hotpath.ts", args: [], quickArgs: ["--quick"] },
  { name: "receipts-append", file: "bench/receipts-append.ts", args: [], quickArgs: [] },
  { name: "receipts-transit", file: "bench/receipts-transit.ts", args: [], quickArgs: [] },
  { name: "verify-chain", file: "bench/verify-chain.ts", args: [], quickArgs: [] },
  { name: "receipt-log", file: "bench/receipt-log.ts", args: [], quickArgs: ["--quick"] },
  { name: "api", file: "bench/api.ts", args: [], quickArgs: ["--quick"] },
  { name: "warm-path", file: "bench/warm-path.ts", args: [], quickArgs: ["--quick"] },
  { name: "detect-history", file: "bench/detect-history.ts", args: [], quickArgs: ["--quick"] },
  { name: "stack-render", file: "bench/stack-render.ts", args: ["--runs", "3"], quickArgs: ["--runs", "2"] },
  { name: "failover", file: "bench/failover.ts", args: [], quickArgs: ["--quick"] },
];

const load1 = () => Math.round(loadavg()[0] * 10) / 10;

function runOne(benchmark: Benchmark, quick: boolean): Promise<RunEntry> {
  const args = [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), benchmark.file, ...(quick ? benchmark.quickArgs : benchmark.args)];
  const command = `tsx ${args.slice(1).join(" ")}`;
  console.log(`\n=== ${benchmark.name}: ${command} (load average ${load1()})`);
  const started = new Date();
  const loadBefore = load1();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: "inherit" });
    const done = (exitCode: number | null) => {
      const finished = new Date();
      resolve({
        name: benchmark.name,
        command,
        seconds: (finished.getTime() - started.getTime()) / 1000,
        exitCode,
        loadBefore,
        loadAfter: load1(),
        started: started.toISOString(),
        finished: finished.toISOString(),
      });
    };
    child.once("error", (error) => {
      console.error(`${benchmark.name}: could not start: ${error.message}`);
      done(null);
    });
    child.once("exit", (code) => done(code));
  });
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const onlyIndex = process.argv.indexOf("--only");
  const only = onlyIndex >= 0 ? (process.argv[onlyIndex + 1] ?? "").split(",").filter(Boolean) : undefined;
  const unknown = only?.filter((name) => !SEQUENCE.some((b) => b.name === name)) ?? [];
  if (unknown.length || (only && only.length === 0)) {
    throw new Error(`--only: unknown benchmark(s) ${unknown.join(", ") || "(none given)"}; known: ${SEQUENCE.map((b) => b.name).join(", ")}`);
  }
  const selected = SEQUENCE.filter((b) => !only || only.includes(b.name));
  const started = new Date();
  const entries: RunEntry[] = [];
  for (const benchmark of selected) entries.push(await runOne(benchmark, quick));
  const finished = new Date();
  const seconds = (finished.getTime() - started.getTime()) / 1000;

  // A partial run (--only) still records its entries; the report matches them to results by time.
  const record: RunRecord = { started: started.toISOString(), finished: finished.toISOString(), seconds, cores: availableParallelism(), benchmarks: entries };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(path.join(RESULTS_DIR, RUN_RECORD), JSON.stringify(record, null, 2) + "\n");
  writeReport(path.join(ROOT, "BENCHMARKS.md"));
  printTable(
    inReportOrder(readResults()).flatMap(figuresOf).map((r) => ({ benchmark: r.benchmark, figure: r.figure, target: r.target, ratio: r.ratio, result: r.met === null ? "info" : r.met ? "met" : "NOT MET" })),
    undefined,
    "Every figure against its target (details in BENCHMARKS.md)",
  );

  console.log("\n=== summary");
  for (const e of entries) {
    console.log(`${e.name.padEnd(16)} ${e.seconds.toFixed(0).padStart(4)} s  load ${e.loadBefore} -> ${e.loadAfter}  ${e.exitCode === 0 ? "ok" : `FAILED (exit ${e.exitCode})`}`);
  }
  console.log(`total ${seconds.toFixed(0)} s${seconds > BUDGET_SECONDS ? ` (over the ${BUDGET_SECONDS} s budget)` : ""}; BENCHMARKS.md written`);
  const failed = entries.filter((e) => e.exitCode !== 0);
  if (failed.length) {
    console.error(`failed: ${failed.map((e) => e.name).join(", ")}`);
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
