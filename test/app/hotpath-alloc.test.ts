/**
 * The hot path allocates nothing per operation. Detector: V8's young-generation usage and GC events
 * while a synchronous loop runs 2e6 operations. Any per-operation allocation (the smallest V8
 * object is 16 bytes) adds >= 32 MB, which either shows as growth or forces scavenges. A control
 * loop that allocates one small object per iteration proves the detector fires.
 */
import { PerformanceObserver } from "node:perf_hooks";
import * as v8 from "node:v8";
import { createKernel, decodeResult, Kernel, Op } from "../../app/src/hotpath";

const ITERATIONS = 2_000_000;

function newSpaceUsed(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_used_size ?? NaN;
}

interface AllocationProbe {
  gcEvents: number;
  newSpaceGrowth: number;
}

/**
 * Runs `body` once to warm up (JIT tiers allocate while compiling), then again synchronously,
 * reporting GC events that started during the second run and the young-generation growth.
 */
async function probe(body: () => number): Promise<AllocationProbe> {
  body();
  const starts: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) starts.push(entry.startTime);
  });
  observer.observe({ entryTypes: ["gc"] });
  await new Promise((resolve) => setTimeout(resolve, 20)); // flush GC entries from setup
  starts.length = 0;
  const before = newSpaceUsed();
  const t0 = performance.now();
  const sink = body();
  const t1 = performance.now();
  const after = newSpaceUsed();
  await new Promise((resolve) => setTimeout(resolve, 50)); // GC entries are delivered asynchronously
  observer.disconnect();
  expect(Number.isFinite(sink)).toBe(true);
  return { gcEvents: starts.filter((t) => t >= t0 && t <= t1).length, newSpaceGrowth: after - before };
}

function fill(kernel: Kernel): void {
  for (let p = 0; p < kernel.runs; p++) {
    for (let i = 0; i < 8; i++) kernel.append(1 + ((p + i) % 5), p, i - 3, 1 + (i % 2));
  }
}

describe("hot path allocation", () => {
  let kernel: Kernel;

  beforeAll(async () => {
    kernel = await createKernel({ capacity: 1024 * 8, maxBatch: 256 });
    fill(kernel);
    for (let i = 0; i < 256; i++) kernel.setBatchOp(i, 1 + (i % 16), 1 + (i % 5), (i * 7) % 1024, (i % 7) - 3, i % 9);
  });

  test("the detector fires on a loop that allocates one small object per operation (control)", async () => {
    // Kept in a ring so the optimiser cannot scalar-replace the objects away.
    const ring: unknown[] = new Array(1024).fill(null);
    const result = await probe(() => {
      let acc = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const decoded = decodeResult(kernel.evaluate(Op.ASK_SP, 1 + (i % 5), i & 1023, 0, 0));
        ring[i & 1023] = decoded;
        acc += decoded.ticks;
      }
      return acc;
    });
    expect(result.gcEvents).toBeGreaterThan(0);
  });

  test("single evaluations, batches, appends and run clears allocate nothing", async () => {
    const result = await probe(() => {
      let acc = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const code = kernel.evaluate(1 + (i & 15), 1 + (i % 5), i & 1023, (i & 7) - 3, i & 7);
        acc = (acc + code) | 0;
        if ((i & 1023) === 0) {
          acc = (acc + kernel.evaluateBatch(256)) | 0; // 256 more operations
          kernel.clearRun(i & 1023);
          for (let r = 0; r < 9; r++) acc = (acc + kernel.append(r, i & 1023, r, 1)) | 0; // 9th parks
          kernel.clearRun(i & 1023);
          for (let r = 0; r < 8; r++) kernel.append(1 + ((i + r) % 5), i & 1023, r - 3, 1 + (r % 2));
        }
      }
      return acc;
    });
    expect(result.gcEvents).toBe(0);
    expect(result.newSpaceGrowth).toBeLessThan(256 * 1024);
  });

  test("an observer that records into preallocated counters keeps the path allocation-free", async () => {
    const ticks = new Int32Array(16);
    kernel.setObserver((_op, code) => {
      ticks[(code >>> 8) & 0xff]++;
    });
    try {
      const result = await probe(() => {
        let acc = 0;
        for (let i = 0; i < ITERATIONS / 4; i++) {
          acc = (acc + kernel.evaluate(Op.COUNT_SP_GE, 1 + (i % 5), i & 1023, 0, 2)) | 0;
          if ((i & 255) === 0) acc = (acc + kernel.evaluateBatch(256)) | 0;
        }
        return acc;
      });
      expect(result.gcEvents).toBe(0);
      expect(result.newSpaceGrowth).toBeLessThan(256 * 1024);
      expect(ticks[8]).toBeGreaterThan(ITERATIONS / 2); // warm-up run + measured run
    } finally {
      kernel.setObserver(undefined);
    }
  });
});
