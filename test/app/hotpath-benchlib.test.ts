/** bench/lib (shared by every benchmark): statistics, result files, tables. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { machineInfo, measureNsPerOp, quantile, renderTable, summarize, writeResult } from "../../bench/lib";

describe("bench/lib", () => {
  test("summarize gives median, quartiles and extremes of unsorted samples", () => {
    expect(summarize([9, 1, 5, 3, 7])).toEqual({ n: 5, median: 5, mean: 5, min: 1, max: 9, q1: 3, q3: 7, iqr: 4 });
    expect(summarize([4, 1, 3, 2]).median).toBe(2.5);
    expect(quantile([10, 20], 0.25)).toBe(12.5);
    expect(() => summarize([])).toThrow(/empty/);
    expect(() => summarize([1, NaN])).toThrow(/finite/);
    expect(() => quantile([1], 2)).toThrow(/q must be/);
  });

  test("measureNsPerOp runs warm-up plus repetitions and divides by the reported operation count", () => {
    let calls = 0;
    const m = measureNsPerOp(() => {
      calls++;
      return 1000;
    }, { warmup: 2, repetitions: 5 });
    expect(calls).toBe(7);
    expect(m.samples).toHaveLength(5);
    expect(m.summary.n).toBe(5);
    expect(() => measureNsPerOp(() => 0, { warmup: 0, repetitions: 1 })).toThrow(/positive operation count/);
    expect(() => measureNsPerOp(() => 1, { repetitions: 0 })).toThrow(/repetitions/);
  });

  test("writeResult writes <name>.json with the machine description", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "knhk-benchlib-"));
    try {
      const file = writeResult("demo", { ratio: 1.25 }, dir);
      expect(file).toBe(path.join(dir, "demo.json"));
      const written = JSON.parse(readFileSync(file, "utf8"));
      expect(written.benchmark).toBe("demo");
      expect(written.data).toEqual({ ratio: 1.25 });
      expect(written.machine.cores).toBe(machineInfo().cores);
      expect(written.machine.node).toBe(process.version);
      expect(typeof written.machine.cpuModel).toBe("string");
      expect(() => writeResult("../escape", {}, dir)).toThrow(/name must be/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("renderTable aligns columns and right-aligns numbers", () => {
    const text = renderTable([
      { op: "ASK_SP", ns: 1.5, met: true },
      { op: "COUNT_SP_GE", ns: 12.25, met: false },
    ]);
    expect(text.split("\n")).toEqual([
      "op              ns  met",
      "-----------  -----  ---",
      "ASK_SP       1.500  yes",
      "COUNT_SP_GE   12.3  no",
    ]);
  });
});
