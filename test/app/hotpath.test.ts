/**
 * Hot path kernel: every operation against a naive reference model (randomised and edge cases),
 * single and batch evaluation, admission (parking with reasons, never over 8 ticks), counters,
 * observer, input validation.
 */
import {
  createKernel,
  decodeResult,
  isParked,
  Kernel,
  MAX_RUN_LENGTH,
  NO_ID,
  Op,
  OP_NAMES,
  OpName,
  PARK_REASON_NAMES,
  ParkReason,
  ParkReasonName,
  parkReasonOf,
  resultOf,
  ticksOf,
} from "../../app/src/hotpath";
import { loadRegistry } from "../../registry";

interface Row {
  s: number;
  o: number;
  d: number;
}

interface Expected {
  parked?: ParkReasonName;
  result: boolean;
  ticks: number;
}

/** The documented semantics (ops.ts), written the obvious way over arrays of rows. */
class NaiveStore {
  private readonly rows: Row[][];
  private readonly overflowed = new Set<number>();

  constructor(private readonly runs: number) {
    this.rows = Array.from({ length: runs }, () => []);
  }

  append(s: number, p: number, o: number, d: number): ParkReasonName | "stored" {
    if (!(p >= 0 && p < this.runs)) return "capacity";
    if (this.overflowed.has(p) || this.rows[p].length === MAX_RUN_LENGTH) {
      this.overflowed.add(p);
      return "run_full";
    }
    this.rows[p].push({ s: s | 0, o: o | 0, d: d | 0 });
    return "stored";
  }

  clearRun(p: number): void {
    this.rows[p] = [];
    this.overflowed.delete(p);
  }

  evaluate(op: number, s: number, p: number, o: number, k: number): Expected {
    const name = OP_NAMES.find((n) => Op[n] === op);
    if (name === undefined) return { parked: "unsupported_op", result: false, ticks: 0 };
    if (!(p >= 0 && p < this.runs)) return { parked: "capacity", result: false, ticks: 0 };
    if (this.overflowed.has(p)) return { parked: "run_too_long", result: false, ticks: 0 };
    const rows = this.rows[p];
    [s, o, k] = [s | 0, o | 0, k | 0];
    const bySubject = rows.filter((r) => r.s === s);
    const byObject = rows.filter((r) => r.o === o);
    const results: Record<OpName, () => boolean> = {
      ASK_SP: () => bySubject.length > 0,
      ASK_SPO: () => rows.some((r) => r.s === s && r.o === o),
      ASK_OP: () => byObject.length > 0,
      COUNT_SP_GE: () => bySubject.length >= k,
      COUNT_SP_LE: () => bySubject.length <= k,
      COUNT_SP_EQ: () => bySubject.length === k,
      COUNT_OP_GE: () => byObject.length >= k,
      COUNT_OP_LE: () => byObject.length <= k,
      COUNT_OP_EQ: () => byObject.length === k,
      UNIQUE_SP: () => bySubject.length === 1,
      COMPARE_O_EQ: () => rows.some((r) => r.o === o),
      COMPARE_O_GT: () => rows.some((r) => r.o > o),
      COMPARE_O_LT: () => rows.some((r) => r.o < o),
      COMPARE_O_GE: () => rows.some((r) => r.o >= o),
      COMPARE_O_LE: () => rows.some((r) => r.o <= o),
      VALIDATE_DATATYPE_SP: () => bySubject.length > 0 && bySubject.every((r) => r.d === o),
    };
    return { result: results[name](), ticks: rows.length };
  }
}

function actual(code: number): Expected {
  const d = decodeResult(code);
  return d.parked ? { parked: d.reason, result: false, ticks: 0 } : { result: d.result, ticks: d.ticks };
}

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const EXTREMES = [-2147483648, 2147483647, -1, 0, 1];

describe("hot path kernel", () => {
  let kernel: Kernel;

  beforeEach(async () => {
    kernel = await createKernel({ capacity: 64 * 8, maxBatch: 512 });
  });

  test("every operation agrees with the naive reference on random stores (single and batch)", () => {
    const rand = rng(20261127);
    const outcomes: Record<number, Set<string>> = {};
    for (let round = 0; round < 20; round++) {
      kernel.reset();
      const naive = new NaiveStore(kernel.runs);
      // Run lengths 0..10: 9 and 10 overflow; small value domains so matches are frequent.
      for (let p = 0; p < kernel.runs; p++) {
        const rows = rand(11);
        for (let i = 0; i < rows; i++) {
          const s = 1 + rand(4);
          const o = rand(10) === 0 ? EXTREMES[rand(EXTREMES.length)] : rand(9) - 4;
          const d = 1 + rand(3);
          const stored = naive.append(s, p, o, d);
          const row = kernel.append(s, p, o, d);
          expect(row >= 0 ? "stored" : parkReasonOf(-row << 16)).toBe(stored);
        }
      }
      const n = kernel.maxBatch;
      const expected: Expected[] = [];
      const mismatches: string[] = [];
      for (let i = 0; i < n; i++) {
        const op = rand(20) === 0 ? rand(40) : 1 + rand(16); // some unsupported codes (0, 17..39)
        const p = rand(30) === 0 ? kernel.runs + rand(3) : rand(kernel.runs);
        const s = 1 + rand(5);
        const o = rand(8) === 0 ? EXTREMES[rand(EXTREMES.length)] : rand(11) - 5;
        const k = rand(12) - 2;
        kernel.setBatchOp(i, op, s, p, o, k);
        const want = naive.evaluate(op, s, p, o, k);
        expected.push(want);
        const got = actual(kernel.evaluate(op, s, p, o, k));
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          mismatches.push(`op ${op} s ${s} p ${p} o ${o} k ${k}: got ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
        }
        const tally = (outcomes[op] ??= new Set());
        tally.add(want.parked ?? String(want.result));
      }
      expect(mismatches).toEqual([]);
      const parked = kernel.evaluateBatch(n);
      const batch = Array.from(kernel.batchResults.subarray(0, n), actual);
      expect(batch.flatMap((got, i) => (JSON.stringify(got) === JSON.stringify(expected[i]) ? [] : [i]))).toEqual([]);
      expect(parked).toBe(expected.filter((e) => e.parked !== undefined).length);
    }
    // The random cases are only evidence if every operation was seen true, false and parked.
    for (const name of OP_NAMES) {
      expect([name, [...outcomes[Op[name]]].sort()]).toEqual([name, ["capacity", "false", "run_too_long", "true"]]);
    }
  });

  test("each operation on hand-built runs: edge values, empty run, full run", () => {
    const temp = kernel.predicates.intern("temperature");
    const empty = kernel.predicates.intern("unused");
    const sensorA = kernel.terms.intern("sensor-a");
    const sensorB = kernel.terms.intern("sensor-b");
    const xsdInt = kernel.terms.intern("xsd:integer");
    const xsdString = kernel.terms.intern("xsd:string");
    const rows: [number, number, number][] = [
      [sensorA, -2147483648, xsdInt],
      [sensorA, 2147483647, xsdInt],
      [sensorA, 20, xsdInt],
      [sensorB, 20, xsdString],
      [sensorB, -5, xsdInt],
      [sensorA, 0, xsdInt],
      [sensorA, 20, xsdInt],
      [sensorB, 7, xsdInt],
    ];
    rows.forEach(([s, o, d], i) => expect(kernel.append(s, temp, o, d)).toBe(temp * 8 + i));
    const run = (op: OpName, s: number, o: number, k = 0) => actual(kernel.evaluate(Op[op], s, temp, o, k));
    const yes = { result: true, ticks: 8 };
    const no = { result: false, ticks: 8 };
    expect(run("ASK_SP", sensorA, 0)).toEqual(yes);
    expect(run("ASK_SP", 999, 0)).toEqual(no);
    expect(run("ASK_SPO", sensorB, 20)).toEqual(yes);
    expect(run("ASK_SPO", sensorB, 0)).toEqual(no);
    expect(run("ASK_OP", 0, 2147483647)).toEqual(yes);
    expect(run("ASK_OP", 0, 21)).toEqual(no);
    expect(run("COUNT_SP_GE", sensorA, 0, 5)).toEqual(yes);
    expect(run("COUNT_SP_GE", sensorA, 0, 6)).toEqual(no);
    expect(run("COUNT_SP_LE", sensorB, 0, 3)).toEqual(yes);
    expect(run("COUNT_SP_LE", sensorB, 0, 2)).toEqual(no);
    expect(run("COUNT_SP_EQ", sensorB, 0, 3)).toEqual(yes);
    expect(run("COUNT_OP_GE", 0, 20, 3)).toEqual(yes);
    expect(run("COUNT_OP_GE", 0, 20, 4)).toEqual(no);
    expect(run("COUNT_OP_LE", 0, 20, 2)).toEqual(no);
    expect(run("COUNT_OP_EQ", 0, 20, 3)).toEqual(yes);
    expect(run("UNIQUE_SP", sensorA, 0)).toEqual(no);
    expect(run("COMPARE_O_EQ", 0, -2147483648)).toEqual(yes);
    // Signed order: 2147483647 is the largest value, -2147483648 the smallest.
    expect(run("COMPARE_O_GT", 0, 2147483646)).toEqual(yes);
    expect(run("COMPARE_O_GT", 0, 2147483647)).toEqual(no);
    expect(run("COMPARE_O_LT", 0, -2147483647)).toEqual(yes);
    expect(run("COMPARE_O_LT", 0, -2147483648)).toEqual(no);
    expect(run("COMPARE_O_GE", 0, 2147483647)).toEqual(yes);
    expect(run("COMPARE_O_LE", 0, -2147483648)).toEqual(yes);
    expect(run("VALIDATE_DATATYPE_SP", sensorA, xsdInt)).toEqual(yes);
    expect(run("VALIDATE_DATATYPE_SP", sensorB, xsdInt)).toEqual(no); // one xsd:string row
    expect(run("VALIDATE_DATATYPE_SP", 999, xsdInt)).toEqual(no); // no rows for the subject

    // An empty run answers in 0 ticks: nothing exists, every count is 0.
    const onEmpty = (op: OpName, k = 0) => actual(kernel.evaluate(Op[op], sensorA, empty, 0, k));
    expect(onEmpty("ASK_SP")).toEqual({ result: false, ticks: 0 });
    expect(onEmpty("COUNT_SP_LE", 0)).toEqual({ result: true, ticks: 0 });
    expect(onEmpty("COUNT_SP_EQ", 0)).toEqual({ result: true, ticks: 0 });
    expect(onEmpty("COMPARE_O_GE", -2147483648)).toEqual({ result: false, ticks: 0 });
  });

  test("values are 32-bit: uint32 input is stored and matched bitwise", () => {
    expect(kernel.append(0xffffffff, 3, 0x80000000)).toBe(24);
    expect(resultOf(kernel.evaluate(Op.ASK_SPO, -1, 3, -2147483648, 0))).toBe(true);
    expect(resultOf(kernel.evaluate(Op.ASK_SPO, 0xffffffff, 3, 0x80000000, 0))).toBe(true);
    expect(kernel.S[24]).toBe(-1);
    expect(kernel.P[24]).toBe(3);
  });

  test("admission parks a run longer than 8 with run_too_long and never spends more than 8 ticks", () => {
    const p = kernel.predicates.intern("busy");
    for (let i = 0; i < MAX_RUN_LENGTH; i++) expect(kernel.append(1, p, i)).toBeGreaterThanOrEqual(0);
    expect(ticksOf(kernel.evaluate(Op.COUNT_SP_EQ, 1, p, 0, 8))).toBe(8);
    expect(resultOf(kernel.evaluate(Op.COUNT_SP_EQ, 1, p, 0, 8))).toBe(true);

    expect(kernel.append(1, p, 8)).toBe(-ParkReason.run_full);
    expect(kernel.runLength(p)).toBe(-1);
    for (const name of OP_NAMES) {
      const code = kernel.evaluate(Op[name], 1, p, 0, 1);
      expect([name, isParked(code), parkReasonOf(code), ticksOf(code)]).toEqual([name, true, "run_too_long", 0]);
    }
    kernel.setBatchOp(0, Op.ASK_SP, 1, p, 0, 0);
    kernel.setBatchOp(1, Op.ASK_SP, 1, p + 1, 0, 0);
    expect(kernel.evaluateBatch(2)).toBe(1);
    expect(parkReasonOf(kernel.batchResults[0])).toBe("run_too_long");
    expect(decodeResult(kernel.batchResults[1])).toEqual({ parked: false, result: false, ticks: 0 });
    expect(kernel.parkCount("run_too_long")).toBe(OP_NAMES.length + 1);
    expect(kernel.parkCount("run_full")).toBe(1);

    // Once the warm path took the run over, clearing it readmits the predicate.
    kernel.clearRun(p);
    expect(kernel.append(2, p, 5)).toBe(p * 8);
    expect(decodeResult(kernel.evaluate(Op.ASK_SP, 2, p, 0, 0))).toEqual({ parked: false, result: true, ticks: 1 });
    expect(kernel.parkCounts()).toEqual({ run_too_long: OP_NAMES.length + 1, run_full: 1, capacity: 0, unsupported_op: 0 });
  });

  test("no executed operation reports more than 8 ticks, and ticks equal the run length", () => {
    const rand = rng(7);
    for (let p = 0; p < kernel.runs; p++) {
      const n = rand(12);
      for (let i = 0; i < n; i++) kernel.append(rand(3), p, rand(3));
    }
    let executed = 0;
    let parked = 0;
    const wrong: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const p = rand(kernel.runs);
      const code = kernel.evaluate(1 + rand(16), rand(3), p, rand(3), rand(9));
      if (isParked(code)) {
        parked++;
        if (parkReasonOf(code) !== "run_too_long" || kernel.runLength(p) !== -1) wrong.push(`parked p ${p} code ${code}`);
      } else {
        executed++;
        if (ticksOf(code) > MAX_RUN_LENGTH || ticksOf(code) !== kernel.runLength(p)) wrong.push(`p ${p} code ${code}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(executed).toBeGreaterThan(1000);
    expect(parked).toBeGreaterThan(500);
  });

  test("capacity and unsupported operations are parked with their reason", async () => {
    const small = await createKernel({ capacity: 16 });
    expect(small.runs).toBe(2);
    expect(small.predicates.intern("a")).toBe(0);
    expect(small.predicates.intern("b")).toBe(1);
    const none = small.predicates.intern("c");
    expect(none).toBe(NO_ID);
    expect(small.append(1, none, 1)).toBe(-ParkReason.capacity);
    expect(small.append(1, 2, 1)).toBe(-ParkReason.capacity);
    expect(parkReasonOf(small.evaluate(Op.ASK_SP, 1, none, 0, 0))).toBe("capacity");
    expect(parkReasonOf(small.evaluate(Op.ASK_SP, 1, 2, 0, 0))).toBe("capacity");
    for (const op of [0, 17, 255, -1, 1 << 20]) {
      expect([op, parkReasonOf(small.evaluate(op, 1, 0, 0, 0))]).toEqual([op, "unsupported_op"]);
    }
    small.setBatchOp(0, 0, 1, 0, 0, 0);
    small.setBatchOp(1, Op.ASK_OP, 1, 5, 0, 0);
    small.setBatchOp(2, Op.ASK_OP, 1, 1, 0, 0);
    expect(small.evaluateBatch(3)).toBe(2);
    expect(Array.from(small.batchResults.subarray(0, 3), (c) => parkReasonOf(c) ?? "executed")).toEqual([
      "unsupported_op",
      "capacity",
      "executed",
    ]);
    expect(small.parkCounts()).toEqual({ run_too_long: 0, run_full: 0, capacity: 5, unsupported_op: 6 });
  });

  test("the observer sees every evaluation's op and result code, single and batch", () => {
    const seen: [number, number][] = [];
    kernel.setObserver((op, code) => seen.push([op, code]));
    kernel.append(4, 0, 9);
    const single = kernel.evaluate(Op.ASK_SP, 4, 0, 0, 0);
    kernel.setBatchOp(0, Op.COUNT_SP_EQ, 4, 0, 0, 1);
    kernel.setBatchOp(1, Op.ASK_SP, 4, kernel.runs, 0, 0);
    kernel.evaluateBatch(2);
    expect(seen).toEqual([
      [Op.ASK_SP, single],
      [Op.COUNT_SP_EQ, kernel.batchResults[0]],
      [Op.ASK_SP, kernel.batchResults[1]],
    ]);
    expect(decodeResult(single)).toEqual({ parked: false, result: true, ticks: 1 });
    expect(parkReasonOf(kernel.batchResults[1])).toBe("capacity");
    kernel.setObserver(undefined);
    kernel.evaluate(Op.ASK_SP, 4, 0, 0, 0);
    expect(seen).toHaveLength(3);
  });

  test("bad input is rejected with the field named", async () => {
    await expect(createKernel({ capacity: 0 })).rejects.toThrow(/capacity must be an integer/);
    await expect(createKernel({ capacity: 1.5 })).rejects.toThrow(/capacity/);
    await expect(createKernel({ maxBatch: -1 })).rejects.toThrow(/maxBatch/);
    expect(() => kernel.append(1.5, 0, 0)).toThrow(/^s must be a 32-bit integer/);
    expect(() => kernel.append(1, 0, 2 ** 32)).toThrow(/^o must be a 32-bit integer/);
    expect(() => kernel.append(1, 0, 0, NaN)).toThrow(/^datatype must be a 32-bit integer/);
    expect(() => kernel.append(1, 0.5, 0)).toThrow(/^p must be an integer/);
    expect(() => kernel.setBatchOp(kernel.maxBatch, 1, 0, 0, 0, 0)).toThrow(/^i must be/);
    expect(() => kernel.setBatchOp(0, 1, 0, 0, 0, 1 << 23)).toThrow(/^k must be/);
    expect(() => kernel.evaluateBatch(kernel.maxBatch + 1)).toThrow(/^n must be/);
    expect(() => kernel.clearRun(kernel.runs)).toThrow(/^p must be/);
    expect(kernel.lengths.every((l) => l === 0)).toBe(true); // nothing half-written
  });

  test("batch k keeps its sign through the 24-bit record field", () => {
    kernel.append(1, 0, 0);
    kernel.setBatchOp(0, Op.COUNT_SP_GE, 1, 0, 0, -8388608);
    kernel.setBatchOp(1, Op.COUNT_SP_LE, 1, 0, 0, -1);
    kernel.setBatchOp(2, Op.COUNT_SP_EQ, 1, 0, 0, 8388607);
    kernel.evaluateBatch(3);
    expect(Array.from(kernel.batchResults.subarray(0, 3), resultOf)).toEqual([true, false, false]);
  });
});

describe("kernel module", () => {
  test("the WebAssembly text is assembled once per process and shared by every kernel", async () => {
    const { kernelModule } = await import("../../app/src/hotpath/wasm");
    const first = kernelModule();
    expect(kernelModule()).toBe(first);
    const [a, b] = await Promise.all([createKernel({ capacity: 8 }), createKernel({ capacity: 8 })]);
    expect(kernelModule()).toBe(first);
    // Separate instances, separate memories.
    a.append(1, 0, 1);
    expect(resultOf(a.evaluate(Op.ASK_SP, 1, 0, 0, 0))).toBe(true);
    expect(resultOf(b.evaluate(Op.ASK_SP, 1, 0, 0, 0))).toBe(false);
  });
});

describe("interner", () => {
  test("assigns dense ids from firstId, is stable, and reports NO_ID when full", async () => {
    const { Interner } = await import("../../app/src/hotpath");
    const terms = new Interner(3, 1);
    expect([terms.intern("a"), terms.intern("b"), terms.intern("a"), terms.intern("c")]).toEqual([1, 2, 1, 3]);
    expect(terms.intern("d")).toBe(NO_ID);
    expect(terms.lookup("b")).toBe(2);
    expect(terms.lookup("zzz")).toBe(NO_ID);
    expect(terms.size).toBe(3);
    expect(terms.term(3)).toBe("c");
    expect(terms.term(4)).toBeUndefined();
    expect(() => new Interner(0)).toThrow(/limit/);
    expect(() => new Interner(10, 0x7ffffffa)).toThrow(/firstId/);
  });
});

test("the parked metric's reasons are the kernel's park reasons, by the same names", () => {
  const parked = loadRegistry().service.find((m) => m.name === "knhk_hot_path_parked_total");
  expect(parked?.labels.reason).toEqual({ values: [...PARK_REASON_NAMES] });
});
