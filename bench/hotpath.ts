/**
 * Hot path kernel vs the C reference (issue #8 target): for ASK_SP, ASK_SPO, COUNT_SP_GE and
 * COMPARE_O_EQ on full runs of 8 rows, batch evaluation <= 1.5x the C ns/op and one guarded
 * operation through the public API (kernel.evaluate) <= 3x the C ns/op of one non-inlined call.
 *
 * Both sides get identical data (same xorshift32 stream, same layout) and the result checksums
 * must match, so the two measure the same work. The C reference runs as a child process that
 * serves one repetition per request, so C and kernel repetitions strictly alternate on the same
 * pinned CPU: background load hits both alike. Each repetition is short (~50k operations); a
 * figure is the median over many repetitions with min/max and IQR as spread, and the ratio is the
 * median of the paired (kernel / C) repetition ratios (the ratio of the medians is printed too).
 *
 * Run: npm run bench:hotpath   (or npx tsx bench/hotpath.ts [--quick])
 */
import { ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createKernel, Kernel, Op } from "../app/src/hotpath";
import { measureNsPerOp, pinnedCommand, pinSelf, printTable, ratio, summarize, Summary, writeResult } from "./lib";

const quick = process.argv.includes("--quick");
const RUNS = 1024; // 1024 runs x 8 rows: S, O, D columns 96 KiB (L2-resident), like a warm working set
const BATCH = 1024;
const BATCHES_PER_REP = 50; // ~50k operations per repetition: short, so most escape preemption
const WARMUP_PAIRS = quick ? 5 : 10;
const PAIRS = quick ? 31 : 151;
const SEED = 12345;
const BATCH_TARGET = 1.5;
const SINGLE_TARGET = 3;
const MEASURED = ["ASK_SP", "ASK_SPO", "COUNT_SP_GE", "COMPARE_O_EQ"] as const;
type Measured = (typeof MEASURED)[number];
type Mode = "batch" | "single";

/** xorshift32, identical to next() in bench/reference/hotpath.c. */
function makeRng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function fillStore(kernel: Kernel, next: () => number): void {
  for (let p = 0; p < RUNS; p++) {
    for (let i = 0; i < 8; i++) {
      const s = 1 + (next() % 8);
      const o = (next() % 32) - 8;
      const d = 1 + (next() % 2);
      if (kernel.append(s, p, o, d) < 0) throw new Error(`append to run ${p} was parked`);
    }
  }
}

function makeOps(op: number, next: () => number): Int32Array {
  const records = new Int32Array(BATCH * 4);
  for (let i = 0; i < BATCH; i++) {
    const s = 1 + (next() % 8);
    const p = next() % RUNS;
    const o = (next() % 32) - 8;
    const k = next() % 4;
    records.set([op | (k << 8), s, p, o], i * 4);
  }
  return records;
}

function checksum(codes: Int32Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = (Math.imul(sum, 31) + codes[i]) >>> 0;
  return sum;
}

function compileReference(dir: string): string {
  const binary = path.join(dir, "hotpath-ref");
  const source = path.join(__dirname, "reference", "hotpath.c");
  execFileSync("gcc", ["-O3", "-march=native", "-o", binary, source], { stdio: "inherit" });
  return binary;
}

/** The C reference as a child answering one timed repetition per request (see hotpath.c). */
class ReferenceProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = "";
  private readonly lines: string[] = [];
  private waiting: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(argv: string[]) {
    this.child = spawn(argv[0], argv.slice(1), { stdio: "pipe" });
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => {
      this.buffered += chunk;
      let newline: number;
      while ((newline = this.buffered.indexOf("\n")) >= 0) {
        this.deliver(this.buffered.slice(0, newline));
        this.buffered = this.buffered.slice(newline + 1);
      }
    });
    let stderr = "";
    this.child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    this.child.on("exit", (code) => this.fail(new Error(`C reference exited (${code}): ${stderr.trim()}`)));
    this.child.on("error", (error) => this.fail(error));
  }

  private deliver(line: string): void {
    const waiter = this.waiting;
    this.waiting = undefined;
    if (waiter) waiter.resolve(line);
    else this.lines.push(line);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const waiter = this.waiting;
    this.waiting = undefined;
    waiter?.reject(error);
  }

  nextLine(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  async repetition(opIndex: number, mode: Mode): Promise<number> {
    this.child.stdin.write(`${opIndex} ${mode === "batch" ? "b" : "s"} ${BATCHES_PER_REP}\n`);
    const ns = Number(await this.nextLine());
    if (!(ns > 0)) throw new Error(`C reference answered "${ns}" for op ${opIndex} ${mode}`);
    return ns;
  }

  close(): void {
    this.child.removeAllListeners("exit");
    this.child.stdin.end("q\n");
  }
}

/** One kernel repetition, ns/op: BATCHES_PER_REP batches, or the same records one call each. */
function kernelRepetition(kernel: Kernel, records: Int32Array, mode: Mode): number {
  if (mode === "batch") {
    return measureNsPerOp(
      () => {
        for (let b = 0; b < BATCHES_PER_REP; b++) kernel.evaluateBatch(BATCH);
        return BATCH * BATCHES_PER_REP;
      },
      { warmup: 0, repetitions: 1 },
    ).samples[0];
  }
  let acc = 0;
  const ns = measureNsPerOp(
    () => {
      for (let b = 0; b < BATCHES_PER_REP; b++) {
        for (let at = 0; at < BATCH * 4; at += 4) {
          const w = records[at];
          acc += kernel.evaluate(w & 0xff, records[at + 1], records[at + 2], records[at + 3], w >> 8);
        }
      }
      return BATCH * BATCHES_PER_REP;
    },
    { warmup: 0, repetitions: 1 },
  ).samples[0];
  if (acc === 0.5) console.log(acc); // keeps the single-op results observable
  return ns;
}

/** Checks that evaluate() and evaluateBatch() agree on every record, and returns the checksum. */
function verifiedChecksum(kernel: Kernel, records: Int32Array): number {
  kernel.batchOps.set(records);
  kernel.evaluateBatch(BATCH);
  for (let i = 0; i < BATCH; i++) {
    const w = records[i * 4];
    const single = kernel.evaluate(w & 0xff, records[i * 4 + 1], records[i * 4 + 2], records[i * 4 + 3], w >> 8);
    if (single !== kernel.batchResults[i]) throw new Error(`record ${i}: evaluate ${single} != batch ${kernel.batchResults[i]}`);
  }
  return checksum(kernel.batchResults, BATCH);
}


interface Paired {
  kernel: number[];
  reference: number[];
  ratios: number[];
}

async function measurePairs(ref: ReferenceProcess, kernel: Kernel, records: Int32Array, opIndex: number, mode: Mode): Promise<Paired> {
  kernel.batchOps.set(records);
  const paired: Paired = { kernel: [], reference: [], ratios: [] };
  for (let i = 0; i < WARMUP_PAIRS + PAIRS; i++) {
    // Alternate which side goes first so neither always follows the other's cache footprint.
    let c: number;
    let k: number;
    if (i % 2 === 0) {
      c = await ref.repetition(opIndex, mode);
      k = kernelRepetition(kernel, records, mode);
    } else {
      k = kernelRepetition(kernel, records, mode);
      c = await ref.repetition(opIndex, mode);
    }
    if (i < WARMUP_PAIRS) continue;
    paired.kernel.push(k);
    paired.reference.push(c);
    paired.ratios.push(k / c);
  }
  return paired;
}

const spread = (s: Summary) => `${s.min.toFixed(2)}-${s.max.toFixed(2)}`;
const quartiles = (s: Summary) => `${s.q1.toFixed(2)}-${s.q3.toFixed(2)}`;

async function main(): Promise<void> {
  const cpu = os.cpus().length > 1 ? os.cpus().length - 1 : undefined;
  const pinned = cpu !== undefined && pinSelf(cpu);
  const kernel = await createKernel({ capacity: RUNS * 8, maxBatch: BATCH });
  const next = makeRng(SEED);
  fillStore(kernel, next);
  const records = Object.fromEntries(MEASURED.map((name) => [name, makeOps(Op[name], next)])) as Record<Measured, Int32Array>;
  const dir = mkdtempSync(path.join(os.tmpdir(), "knhk-bench-hotpath-"));
  let ref: ReferenceProcess | undefined;
  try {
    const binary = compileReference(dir);
    ref = new ReferenceProcess(pinnedCommand([binary, String(RUNS), String(BATCH), String(SEED)], pinned ? cpu : undefined));
    const checksums = (JSON.parse(await ref.nextLine()) as { checksums: Record<Measured, number> }).checksums;
    for (const name of MEASURED) {
      const ours = verifiedChecksum(kernel, records[name]);
      if (ours !== checksums[name]) throw new Error(`${name}: kernel checksum ${ours} != C reference checksum ${checksums[name]}`);
    }

    const rows: Record<Mode, Record<string, string | number>[]> = { batch: [], single: [] };
    const results: Record<string, Record<string, unknown>> = {};
    for (const [opIndex, name] of MEASURED.entries()) {
      results[name] = {};
      for (const mode of ["batch", "single"] as const) {
        const paired = await measurePairs(ref, kernel, records[name], opIndex, mode);
        const [k, c, r] = [paired.kernel, paired.reference, paired.ratios].map(summarize);
        const target = mode === "batch" ? BATCH_TARGET : SINGLE_TARGET;
        const met = r.median <= target;
        rows[mode].push({
          op: name,
          "kernel ns/op": k.median,
          "kernel min-max": spread(k),
          "C ns/op": c.median,
          "C min-max": spread(c),
          "ratio (paired median)": r.median,
          "ratio IQR": quartiles(r),
          "ratio of medians": ratio(k.median, c.median),
          [`target <=${target}x`]: met ? "met" : "NOT met",
        });
        results[name][mode] = {
          kernelNsPerOp: k,
          referenceNsPerOp: c,
          pairedRatio: r,
          ratioOfMedians: ratio(k.median, c.median),
          target,
          targetMet: met,
        };
        process.stderr.write(`${name} ${mode}: ratio ${r.median.toFixed(3)}\n`);
      }
    }
    printTable(rows.batch, undefined, "Batch evaluation: kernel.evaluateBatch vs the C batch loop, full runs of 8 rows (ns/op, medians)");
    printTable(
      rows.single,
      undefined,
      "Single guarded operation: kernel.evaluate (one JS->WebAssembly call per op) vs one non-inlined C call per op",
    );
    console.log(
      `\n${PAIRS} alternating C/kernel repetition pairs per row (after ${WARMUP_PAIRS} warm-up pairs), ` +
        `${BATCH * BATCHES_PER_REP} operations per repetition; pinned to CPU ${pinned ? cpu : "none (taskset unavailable)"}; ` +
        `C and kernel answers checksum-identical.`,
    );
    const allMet = Object.values(results).every((r) => Object.values(r).every((m) => (m as { targetMet: boolean }).targetMet));
    const file = writeResult("hotpath", {
      config: {
        runs: RUNS,
        runLength: 8,
        batch: BATCH,
        operationsPerRepetition: BATCH * BATCHES_PER_REP,
        warmupPairs: WARMUP_PAIRS,
        pairs: PAIRS,
        pinnedCpu: pinned ? cpu : null,
        compiler: "gcc -O3 -march=native",
        quick,
      },
      operations: results,
      allTargetsMet: allMet,
    });
    console.log(`all targets met: ${allMet ? "yes" : "no"}; wrote ${file}`);
  } finally {
    ref?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
