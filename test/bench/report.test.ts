/** BENCHMARKS.md generation: figures with their targets, honest met/not met, load notes. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeReport } from "../../bench/report";
import { figuresOf, renderReport, type StoredResult } from "../../bench/lib/report";

const machine = (cores = 2) => ({
  cpuModel: "Test CPU",
  cores,
  memoryGiB: 8,
  node: "v20.0.0",
  v8: "11",
  platform: "linux",
  arch: "x64",
  kernel: "6.0",
  date: "2026-01-01T00:00:00.000Z",
});

const stack = (median: number): StoredResult => ({
  benchmark: "stack-render",
  machine: machine(),
  data: { stack: "prod", resources: 10, summary: { n: 3, median, min: median, max: median }, target_seconds: 10, met: median < 10 },
});

const warm = (p95: number, load: number): StoredResult => ({
  benchmark: "warm-path",
  machine: machine(),
  data: {
    target_p95_ms: 100,
    data: { observations: 1000 },
    figures: [{ operation: "patterns.detect", samples: 20, ms: { median: p95 / 2, max: p95 }, p95_ms: p95, target_p95_ms: 100, ratio: p95 / 100, met: p95 < 100 }],
    load_average_1m: load,
  },
});

describe("renderReport", () => {
  test("counts met and not met targets and shows each figure with its target and ratio", () => {
    const md = renderReport({ results: [stack(4), warm(250, 1)], generatedAt: "now" });
    expect(md).toContain("**1 of 2 targets met.**");
    expect(md).toMatch(/\| stack-render \| .* \| 4 s .* \| < 10 s \| 0.4x target \| \*\*met\*\* \|/);
    expect(md).toMatch(/\| warm-path \| patterns\.detect .* \| p95 250 ms .* \| p95 < 100 ms \| 2.5x target \| \*\*not met\*\* \|/);
    expect(md).toContain("Not met: warm-path: patterns.detect");
  });

  test("a result it cannot read is reported as not understood, never as met", () => {
    const broken: StoredResult = { benchmark: "stack-render", machine: machine(), data: { summary: {}, target_seconds: 10, met: true } };
    const [row] = figuresOf(broken);
    expect(row.measured).toMatch(/not understood: .*summary\.median/);
    expect(row.met).toBeNull();
    expect(renderReport({ results: [broken], generatedAt: "now" })).toContain("**0 of 0 targets met.**");
  });

  test("benchmarks without a result are named with the command that produces one", () => {
    const md = renderReport({ results: [stack(4)], generatedAt: "now" });
    expect(md).toMatch(/No result yet for: hotpath \(`npm run bench:hotpath`\).*api \(`npm run bench:api`\)/);
  });

  test("figures measured under a load above the core count carry the shared-machine note", () => {
    expect(renderReport({ results: [warm(50, 1.5)], generatedAt: "now" })).not.toContain("shared machine");
    const md = renderReport({ results: [warm(50, 18.2)], generatedAt: "now" });
    expect(md).toContain("## Measured on a shared machine");
    expect(md).toContain("warm-path under load average 18.2 on 2 cores");
  });

  test("the run record supplies the load for results that do not record it", () => {
    const run = {
      started: "2025-12-31T23:59:00.000Z",
      finished: "2026-01-01T00:10:00.000Z",
      seconds: 660,
      cores: 2,
      benchmarks: [{ name: "stack-render", command: "x", seconds: 30, exitCode: 0, loadBefore: 9, loadAfter: 12, started: "2025-12-31T23:59:30.000Z", finished: "2026-01-01T00:00:30.000Z" }],
    };
    const md = renderReport({ results: [stack(4)], run, generatedAt: "now" });
    expect(md).toContain("stack-render under load average 12 on 2 cores");
    expect(md).toContain("660 s in total: stack-render 30 s.");
  });

  test("a verification target not met is explained by its CPU per receipt; a met one is not", () => {
    const verify = (met: boolean): StoredResult => ({
      benchmark: "verify-chain",
      machine: machine(),
      data: {
        chain_receipts: 1000,
        threads: 2,
        target_ratio: 0.9,
        ceiling_per_s: { median: 1000, min: 1000, max: 1000 },
        verify_chain_per_s: { median: 850, min: 850, max: 850 },
        ratio: { median: 0.85 },
        cpu_efficiency: { median: 0.85 },
        ceiling_cpu_us_per_verify: 150,
        verify_chain_cpu_us_per_receipt: 176.5,
        target_met: met,
      },
    });
    const md = renderReport({ results: [verify(false)], generatedAt: "now" });
    expect(md).toContain("## Targets not met: where the time goes");
    expect(md).toContain("a receipt costs 176.5 CPU-µs (PostgreSQL included) against 150 for a bare ed25519 verification (CPU efficiency 85%)");
    expect(md).toContain("90% of the ceiling needs that under 16.7 µs per receipt");
    expect(renderReport({ results: [verify(true)], generatedAt: "now" })).not.toContain("where the time goes");
  });
});

describe("writeReport", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "knhk-report-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("writes the markdown built from every result file in the directory", () => {
    writeFileSync(join(dir, "stack-render.json"), JSON.stringify(stack(12)));
    writeReport(join(dir, "OUT.md"), dir);
    const md = readFileSync(join(dir, "OUT.md"), "utf8");
    expect(md).toContain("**0 of 1 targets met.**");
    expect(md).toContain("12 s");
  });

  test("a JSON file that is not a benchmark result is refused, naming the file", () => {
    writeFileSync(join(dir, "notes.json"), JSON.stringify({ hello: 1 }));
    expect(() => writeReport(join(dir, "OUT.md"), dir)).toThrow(/notes\.json: not a benchmark result/);
  });
});

describe("failover figures", () => {
  const drill = (name: string, firstWorst: number, target: number | null, lost = 0) => ({
    drill: name,
    repetitions: 3,
    endpoint_switch_seconds: { median: 2, worst: 2.5, n: 3 },
    first_write_seconds: { median: firstWorst - 1, worst: firstWorst, n: 3 },
    rejoin_seconds: { median: 7, worst: 9, n: 3 },
    acknowledged: 900,
    lost,
    target_endpoint_seconds: 3,
    target_first_write_seconds: target,
    endpoint_met: true,
    first_write_met: target === null ? null : firstWorst <= target,
    rpo_met: lost === 0,
    etcd_reference: "first write 3.8-4.4 s",
  });
  const result = (drills: unknown[]): StoredResult => ({ benchmark: "failover", machine: machine(), data: { drills } });

  it("judges each drill's worst time against its target and counts a lost write as RPO not met", () => {
    const rows = figuresOf(result([drill("switchover", 4.9, 3), drill("postgres-crash", 4.2, 5, 1)]));
    const byFigure = Object.fromEntries(rows.map((r) => [r.figure.split(";")[0], r]));
    expect(byFigure["switchover: first acknowledged write after the fault"]).toMatchObject({ met: false, target: "worst <= 3 s", reference: "etcd DCS (issue): first write 3.8-4.4 s" });
    expect(byFigure["postgres-crash: first acknowledged write after the fault"]).toMatchObject({ met: true });
    expect(byFigure["switchover: acknowledged writes lost (RPO)"]).toMatchObject({ met: true, measured: "0 of 900 acknowledged" });
    expect(byFigure["postgres-crash: acknowledged writes lost (RPO)"]).toMatchObject({ met: false, measured: "1 of 900 acknowledged" });
  });

  it("a drill without a time target is informational, and a result without drills says it is not understood", () => {
    const rows = figuresOf(result([drill("dcs-loss", 0, null)]));
    expect(rows.find((r) => r.figure.startsWith("dcs-loss: first"))).toMatchObject({ met: null, target: "-" });
    expect(figuresOf(result([]))[0].measured).toMatch(/not understood: no drills/);
  });
});

describe("the API's ingest figures", () => {
  const step = (rate: number, p95: number) => ({ connections: 8, throughputPerSecond: rate, latencyMs: { p50: p95 / 2, p95, p99: p95 * 1.2 }, sustained: true, rssMaxBytes: 2 ** 27, loadAverage1m: 1, unexpectedStatus: 0, errors: 0, timeouts: 0 });
  const endpoint = (name: string, route: string, rate: number, p95: number, targetP95Ms = 20) => ({
    name, method: "POST", route, role: name === "baseline.ingest" ? "none (baseline)" : "ingestor", targetP95Ms,
    steps: [step(rate, p95)], best: step(rate, p95), confirmation: step(rate, p95), sustainedRatePerSecond: rate, met: true, rssMaxBytes: 2 ** 27,
  });
  const api = (single: number, baseline: number, batchRate: number): StoredResult => ({
    benchmark: "api",
    machine: machine(),
    data: {
      target_p95_ms: 20,
      memory_request_bytes: 2 ** 29,
      memory: { rss_max_bytes: 2 ** 27 },
      endpoints: [endpoint("baseline.ingest", "/api/v1/observations", baseline, 3), endpoint("observations.create", "/api/v1/observations", single, 12), endpoint("observations.batch", "/api/v1/observations/batch", batchRate, 150, 200)],
      ingest: {
        baseline: { rate: baseline },
        single: { rate: single, baseline_ratio: single / baseline, target_baseline_share: 0.5, target_rate: 2000, met: single / baseline >= 0.5 && single >= 2000 },
        batch: { observations_per_request: 500, observations_per_second: batchRate * 500, target_observations_per_second: 20000, target_p95_ms: 200, target_ratio: (batchRate * 500) / 20000, met: batchRate * 500 >= 20000 },
      },
    },
  });

  test("the baseline is a reference, single ingest is judged against it and the rate, batch by observations per second", () => {
    const rows = figuresOf(api(900, 4000, 50));
    expect(rows[0]).toMatchObject({ met: null, figure: expect.stringContaining("baseline") });
    expect(rows[1]).toMatchObject({ met: false, reference: "baseline 4,000 req/s in the same run", ratio: "22.5% of baseline; 0.45 of 2,000 req/s" });
    expect(rows[2]).toMatchObject({ met: true, measured: expect.stringMatching(/^25,000 observations\/s durable/), ratio: "1.25 of target" });
  });

  test("single ingest is met only when both the share of the baseline and the absolute rate hold", () => {
    expect(figuresOf(api(2100, 4000, 30))[1].met).toBe(true);
    expect(figuresOf(api(2100, 5000, 30))[1].met).toBe(false);
    expect(figuresOf(api(1900, 3000, 30))[1].met).toBe(false);
    expect(renderReport({ results: [api(1900, 3000, 30)], generatedAt: "now" })).toMatch(/POST \/api\/v1\/observations\/batch\*\*: the best sustained step was 30 req\/s/);
  });

  test("detection with a target rate is met only at that rate, and a slower sustained rate says where the time goes", () => {
    const withDetect = (rate: number): StoredResult => {
      const r = api(2100, 4000, 50);
      const detect = { ...endpoint("patterns.detect", "/api/v1/patterns/detect", rate, 15), context: { window_seconds: 60, observations_in_window: 1200, observations_in_horizon: 13200, target_rate_per_second: 300 } };
      return { ...r, data: { ...r.data, endpoints: [...r.data.endpoints, detect] } };
    };
    const slow = figuresOf(withDetect(150)).find((f) => f.figure.includes("patterns/detect"))!;
    expect(slow).toMatchObject({ met: false, target: "p95 < 20 ms at >= 300 req/s, all 2xx", ratio: "0.5 of 300 req/s; p95 0.75x target" });
    expect(figuresOf(withDetect(320)).find((f) => f.figure.includes("patterns/detect"))!.met).toBe(true);
    expect(renderReport({ results: [withDetect(150)], generatedAt: "now" })).toMatch(/POST \/api\/v1\/patterns\/detect\*\*: the best sustained step was 150 req\/s/);
  });
});

describe("the receipt log's figures", () => {
  const result = (figures: unknown): StoredResult => ({ benchmark: "receipt-log", machine: machine(), data: { figures } });
  test("rows as the benchmark wrote them, an informational row without a verdict", () => {
    const rows = figuresOf(result([
      { figure: "inclusion proof", measured: "p95 1.2 ms", reference: "-", target: "p95 < 2 ms", ratio: "0.6x target", met: true },
      { figure: "tree built", measured: "58,000 receipts/s", reference: "-", target: "-", ratio: "-", met: null },
    ]));
    expect(rows.map((r) => [r.figure, r.met])).toEqual([["inclusion proof", true], ["tree built", null]]);
  });
  test("a figure that is not text is reported as not understood", () => {
    expect(figuresOf(result([{ figure: "x", measured: 3 }]))[0].measured).toMatch(/^not understood: figure measured is not text/);
    expect(figuresOf(result([]))[0].measured).toMatch(/^not understood: no figures/);
  });
});
