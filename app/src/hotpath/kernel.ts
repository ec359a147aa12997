/**
 * The hot path kernel: a structure-of-arrays triple store (int32 columns S, P, O, D in WebAssembly
 * linear memory) whose operations run in the SIMD module of kernel-wat.ts. Semantics, op codes and
 * the result-code encoding are in ops.ts. Nothing here allocates per operation: arguments and
 * results are int32 numbers, batches live in preallocated memory.
 */
import { Interner } from "./interner";
import { computeLayout, KernelLayout } from "./layout";
import {
  MAX_RUN_LENGTH,
  PARK_COUNTER_SLOTS,
  PARK_REASON_NAMES,
  ParkReason,
  ParkReasonName,
} from "./ops";
import { kernelModule } from "./wasm";
import { wasmApi } from "./wasm-api";

/** Called with (op, resultCode) after every evaluate() and every record of evaluateBatch(). */
export type HotPathObserver = (op: number, code: number) => void;

export interface KernelOptions {
  /** Rows the store holds: one run of 8 rows per predicate id, so ceil(capacity / 8) predicate ids. Default 8192. */
  readonly capacity?: number;
  /** Most records one evaluateBatch() call takes. Default 1024. */
  readonly maxBatch?: number;
  /** Receives every evaluation's result code, e.g. to record knhk_hot_path_ticks. */
  readonly observer?: HotPathObserver;
}

const MAX_CAPACITY = 1 << 24;
const MAX_BATCH = 1 << 20;
const RECORD_INTS = 4;

type EvaluateFn = (op: number, s: number, p: number, o: number, k: number) => number;
type EvaluateBatchFn = (n: number) => number;

function positiveInteger(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer in [1, ${max}], got ${value}`);
  }
  return value;
}

/** int32 or uint32 integer (stored bitwise), else TypeError naming the field. */
function int32(name: string, value: number): number {
  if ((value | 0) !== value && value >>> 0 !== value) {
    throw new TypeError(`${name} must be a 32-bit integer, got ${value}`);
  }
  return value | 0;
}

export class Kernel {
  /** Row capacity (runs * 8). */
  readonly capacity: number;
  /** Predicate ids 0..runs-1 each own one run. */
  readonly runs: number;
  readonly maxBatch: number;
  /** Interns predicate names to run ids (0..runs-1); NO_ID (-1) when every run is taken. */
  readonly predicates: Interner;
  /** Interns subject/object/datatype names to ids >= 1. */
  readonly terms = new Interner(0x7fffffff - 1, 1);
  /** Column views (read them, write only through append/clearRun/reset). */
  readonly S: Int32Array;
  readonly P: Int32Array;
  readonly O: Int32Array;
  readonly D: Int32Array;
  /** Rows in run p; a value above 8 marks a run that overflowed. */
  readonly lengths: Int32Array;
  /** Batch input, 4 int32 per record: [op | k << 8, s, p, o] (see setBatchOp). */
  readonly batchOps: Int32Array;
  /** Batch output: one result code per record. */
  readonly batchResults: Int32Array;
  /**
   * Evaluates one operation (op codes in ops.ts) on run p; arguments an operation does not use
   * are ignored (pass 0). Returns the result code: resultOf/ticksOf/parkReasonOf decode it.
   * Arguments are int32 (ToInt32-coerced like typed-array stores). Without an observer this is
   * the WebAssembly export itself: no JavaScript frame between the caller and the kernel.
   */
  evaluate: EvaluateFn;
  private readonly parkCounters: Int32Array;
  private readonly evaluateWasm: EvaluateFn;
  private readonly evaluateBatchWasm: EvaluateBatchFn;
  private observer: HotPathObserver | undefined;

  /** Use createKernel(); the constructor takes an instantiated module. */
  constructor(layout: KernelLayout, memory: ArrayBuffer, exports: Record<string, unknown>, observer?: HotPathObserver) {
    this.runs = layout.runs;
    this.capacity = layout.runs * MAX_RUN_LENGTH;
    this.maxBatch = layout.maxBatch;
    this.predicates = new Interner(layout.runs, 0);
    const rows = this.capacity;
    this.S = new Int32Array(memory, layout.S, rows);
    this.P = new Int32Array(memory, layout.P, rows);
    this.O = new Int32Array(memory, layout.O, rows);
    this.D = new Int32Array(memory, layout.D, rows);
    this.lengths = new Int32Array(memory, layout.len, layout.runs);
    this.parkCounters = new Int32Array(memory, layout.park, PARK_COUNTER_SLOTS);
    this.batchOps = new Int32Array(memory, layout.ops, layout.maxBatch * RECORD_INTS);
    this.batchResults = new Int32Array(memory, layout.out, layout.maxBatch);
    this.evaluateWasm = exports.evaluate as EvaluateFn;
    this.evaluateBatchWasm = exports.evaluateBatch as EvaluateBatchFn;
    this.evaluate = this.evaluateWasm;
    this.setObserver(observer);
  }

  /** Installs (or with undefined removes) the observer called after every evaluation. */
  setObserver(observer: HotPathObserver | undefined): void {
    this.observer = observer;
    const evaluateWasm = this.evaluateWasm;
    this.evaluate =
      observer === undefined
        ? evaluateWasm
        : (op, s, p, o, k) => {
            const code = evaluateWasm(op, s, p, o, k);
            observer(op, code);
            return code;
          };
  }

  /**
   * Appends the observation (s, p, o) with object datatype `datatype` to run p. Returns the row
   * index (>= 0), or minus a park reason code when it is parked to the warm path:
   * -ParkReason.run_full (run p already holds 8 rows; it is now too long for the hot path) or
   * -ParkReason.capacity (p is not a run of this kernel, e.g. NO_ID from a full interner).
   */
  append(s: number, p: number, o: number, datatype = 0): number {
    const sv = int32("s", s);
    const ov = int32("o", o);
    const dv = int32("datatype", datatype);
    if (!Number.isInteger(p)) throw new TypeError(`p must be an integer run id, got ${p}`);
    if (p < 0 || p >= this.runs) {
      this.parkCounters[ParkReason.capacity]++;
      return -ParkReason.capacity;
    }
    const len = this.lengths[p];
    if (len >= MAX_RUN_LENGTH) {
      this.lengths[p] = MAX_RUN_LENGTH + 1;
      this.parkCounters[ParkReason.run_full]++;
      return -ParkReason.run_full;
    }
    const row = p * MAX_RUN_LENGTH + len;
    this.S[row] = sv;
    this.P[row] = p;
    this.O[row] = ov;
    this.D[row] = dv;
    this.lengths[p] = len + 1;
    return row;
  }

  /** Writes batch record i (0 <= i < maxBatch). k must fit in 24 signed bits. */
  setBatchOp(i: number, op: number, s: number, p: number, o: number, k: number): void {
    if (!(i >= 0 && i < this.maxBatch && Number.isInteger(i))) {
      throw new RangeError(`i must be an integer in [0, ${this.maxBatch}), got ${i}`);
    }
    if (!(k >= -0x800000 && k <= 0x7fffff && Number.isInteger(k))) {
      throw new RangeError(`k must be an integer in [-2^23, 2^23 - 1], got ${k}`);
    }
    const at = i * RECORD_INTS;
    this.batchOps[at] = (op & 0xff) | (k << 8);
    this.batchOps[at + 1] = s;
    this.batchOps[at + 2] = p;
    this.batchOps[at + 3] = o;
  }

  /** Evaluates records 0..n-1 into batchResults[0..n); returns how many were parked. */
  evaluateBatch(n: number): number {
    if (!(n >= 0 && n <= this.maxBatch && Number.isInteger(n))) {
      throw new RangeError(`n must be an integer in [0, ${this.maxBatch}], got ${n}`);
    }
    const parked = this.evaluateBatchWasm(n);
    const observer = this.observer;
    if (observer !== undefined) {
      for (let i = 0; i < n; i++) observer(this.batchOps[i * RECORD_INTS] & 0xff, this.batchResults[i]);
    }
    return parked;
  }

  /** Times work was parked for `reason` since creation (or the last reset). */
  parkCount(reason: ParkReasonName): number {
    return this.parkCounters[ParkReason[reason]];
  }

  /** All park counters by reason (allocates: for metrics scrapes, not the hot loop). */
  parkCounts(): Record<ParkReasonName, number> {
    const counts = {} as Record<ParkReasonName, number>;
    for (const name of PARK_REASON_NAMES) counts[name] = this.parkCounters[ParkReason[name]];
    return counts;
  }

  /** Rows in run p, or -1 when the run overflowed (its data lives on the warm path only). */
  runLength(p: number): number {
    const len = this.lengths[p];
    return len > MAX_RUN_LENGTH ? -1 : len;
  }

  /** Empties run p (e.g. after the warm path took over its window); the run is admitted again. */
  clearRun(p: number): void {
    if (!(Number.isInteger(p) && p >= 0 && p < this.runs)) {
      throw new RangeError(`p must be an integer run id in [0, ${this.runs}), got ${p}`);
    }
    this.lengths[p] = 0;
  }

  /** Empties every run; interned ids and the (monotonic) park counters are kept. */
  reset(): void {
    this.lengths.fill(0);
  }
}

/** Creates a kernel; the first call in a process assembles and compiles the WebAssembly module. */
export async function createKernel(options: KernelOptions = {}): Promise<Kernel> {
  const capacity = positiveInteger("capacity", options.capacity ?? 8192, MAX_CAPACITY);
  const maxBatch = positiveInteger("maxBatch", options.maxBatch ?? 1024, MAX_BATCH);
  const layout = computeLayout(Math.ceil(capacity / MAX_RUN_LENGTH), maxBatch);
  const memory = new wasmApi.Memory({ initial: layout.pages, maximum: layout.pages });
  const i32 = (value: number) => new wasmApi.Global({ value: "i32", mutable: false }, value);
  const instance = await wasmApi.instantiate(await kernelModule(), {
    env: {
      memory,
      runs: i32(layout.runs),
      park: i32(layout.park),
      len: i32(layout.len),
      S: i32(layout.S),
      O: i32(layout.O),
      D: i32(layout.D),
      ops: i32(layout.ops),
      out: i32(layout.out),
    },
  });
  return new Kernel(layout, memory.buffer, instance.exports, options.observer);
}
