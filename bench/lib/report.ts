/**
 * BENCHMARKS.md from bench/results/*.json (pure: results in, markdown out). Each benchmark's
 * figures become rows of one table: measured value, its reference, the target, the ratio and
 * whether the target is met, read from the result file as written, never retyped by hand.
 * A result whose shape is not understood becomes a row saying so, not a silent gap.
 */
import type { MachineInfo } from "./machine";

export interface StoredResult {
  readonly benchmark: string;
  readonly machine: MachineInfo;
  readonly data: any;
}

/** One benchmark as run by `npm run bench` (bench/results/run-all.json). */
export interface RunEntry {
  readonly name: string;
  readonly command: string;
  readonly seconds: number;
  readonly exitCode: number | null;
  readonly loadBefore: number;
  readonly loadAfter: number;
  readonly started: string;
  readonly finished: string;
}

export interface RunRecord {
  readonly started: string;
  readonly finished: string;
  readonly seconds: number;
  readonly cores: number;
  readonly benchmarks: readonly RunEntry[];
}

export interface FigureRow {
  readonly benchmark: string;
  readonly figure: string;
  readonly measured: string;
  readonly reference: string;
  readonly target: string;
  readonly ratio: string;
  /** null: informational figure without a pass/fail target. */
  readonly met: boolean | null;
}

/** Order of the benchmarks in the report and the npm script that reproduces each. */
export const BENCHMARKS: readonly { name: string; script: string; title: string; method: string }[] = [
  {
    name: "hotpath",
    script: "bench:hotpath",
    title: "Hot path kernel vs C",
    method: "kernel and a gcc -O3 -march=native C reference on identical data, repetitions strictly alternating on one pinned CPU; ratio = median of the paired per-repetition ratios.",
  },
  {
    name: "receipts-append",
    script: "bench:receipts",
    title: "Receipt append (3 processes, group commit)",
    method: "3 processes appending concurrently to one PostgreSQL 15 (synchronous_commit on); acknowledged receipts per second over a fixed window; the naive one-receipt-per-commit append measured in the same run; the chain is verified afterwards.",
  },
  {
    name: "failover",
    script: "bench:failover",
    title: "Write availability through Patroni failovers (Kubernetes DCS)",
    method: "the local control plane (kube-apiserver, controllers, scheduler; kwok nodes) with the rendered Patroni StatefulSet played by 3 PostgreSQL 15 + Patroni 4.0.7 processes, the KNHK service writing receipts through postgres-primary's EndpointSlices (4 clients, synchronous commit); each drill repeated in rotation; times from the fault; writes lost counted against every acknowledged write.",
  },
  {
    name: "receipts-transit",
    script: "bench:transit",
    title: "Receipt append signed by Vault transit",
    method: "one process, group commit (maxBatch 256) on PostgreSQL 15 (synchronous_commit on), signatures from an OpenBao 2.7.2 transit ed25519 key (one batch_input request per 256 receipts, each signature verified locally), directly and through a `bao agent` API proxy; the in-process key measured in alternation in the same run; CPU per receipt includes PostgreSQL, OpenBao and the agent; each chain verified afterwards with the keys Vault publishes.",
  },
  {
    name: "verify-chain",
    script: "bench:verify",
    title: "Receipt chain verification",
    method: "`verifyChain` over a stored chain vs node:crypto ed25519 verify in one worker thread per core (cycling through 1,024 distinct signatures, as a chain's are), measured in alternation; incremental mode verifies only what follows a checkpoint.",
  },
  {
    name: "api",
    script: "bench:api",
    title: "API under load",
    method: "the service as its own process on real PostgreSQL 15 and Redis with a loopback OIDC issuer; one connection paced at 10 req/s, then an autocannon closed-loop connection ladder (1, 2, 4, ...), each step held several seconds, bisected after the first failing step, the best step re-run to confirm; latency of every response recorded exactly; a step counts only with all responses 2xx and p95 < 20 ms (200 ms for a batch of 500 observations); single ingest against a bare durable ingest server (Fastify + pg, one INSERT per request, synchronous_commit on, no auth, audit, hot path or receipt) measured in the same run on the same ladder; VmRSS of the service sampled every 200 ms.",
  },
  {
    name: "warm-path",
    script: "bench:warm",
    title: "Warm path via the domain API",
    method: "createDomain with the real ledger and kernel on PostgreSQL 15, 11 minutes of observations at 100/s seeded (66,300 rows, one spike, one silence, one schema mismatch); single-call wall times after a warm-up.",
  },
  {
    name: "receipt-log",
    script: "bench:tlog",
    title: "Receipt log (transparency log)",
    method: "PostgreSQL 15 (synchronous_commit on): receipt appends (1 process, 128 appenders) with the service's background tree follower and checkpoint signing vs without, alternating; a tree of 1,000,000 receipts (inserted by SQL) built by the tree writer; inclusion and consistency proofs through the service's HTTP API (its own process, as knhk_app, each request's token verified, permission checked and decision audited), next to the functions it calls, the latest-checkpoint request, one durable INSERT + COMMIT and GET /health; verify-log over the whole log vs the SHA-256 of the same number of leaf and node inputs in a tight loop, measured before and after it.",
  },
  {
    name: "detect-history",
    script: "bench:detect-history",
    title: "Pattern detection against the size of its history",
    method: "POST /api/v1/patterns/detect through the service (its own process, as knhk_app, token verified, decision audited), one request at a time, against two databases seeded by SQL over the same seconds, event types and sectors: the api benchmark's stream (20/s over the 60 s window and 10 windows of history, 13,200 observations) and 100 times as dense (1,320,000); the two alternate in blocks of 50 requests.",
  },
  {
    name: "stack-render",
    script: "bench:stack",
    title: "Prod stack render under mocks",
    method: "wall time of `npm run render -- --stack prod` in a fresh process (TypeScript loading included), after one warm-up run.",
  },
];

const n = (value: number, digits = 1) =>
  Math.abs(value) >= 1000 ? Math.round(value).toLocaleString("en-US") : Number(value.toFixed(digits)).toString();
const num = (value: unknown, what: string): number => {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`${what} is not a number`);
  return value;
};

function hotpathRows(data: any): FigureRow[] {
  const rows: FigureRow[] = [];
  for (const [op, modes] of Object.entries<any>(data.operations ?? {})) {
    for (const mode of ["batch", "single"] as const) {
      const m = modes[mode];
      if (!m) continue;
      const kernel = m.kernelNsPerOp;
      rows.push({
        benchmark: "hotpath",
        figure: `${op} ${mode === "batch" ? "batch of runs of 8" : "one guarded op (public API)"}`,
        measured: `${n(num(kernel.median, "kernel median"), 2)} ns/op (IQR ${n(num(kernel.iqr, "kernel iqr"), 2)})`,
        reference: `C -O3: ${n(num(m.referenceNsPerOp.median, "reference median"), 2)} ns/op`,
        target: `<= ${num(m.target, "target")}x C`,
        ratio: `${n(num(m.pairedRatio.median, "paired ratio"), 2)}x (paired median; IQR ${n(m.pairedRatio.iqr, 2)})`,
        met: Boolean(m.targetMet),
      });
    }
  }
  if (rows.length === 0) throw new Error("no operations");
  return rows;
}

function receiptsRows(data: any): FigureRow[] {
  const g = data.group_commit;
  const naive = data.naive_reference;
  const target = num(data.target_per_s, "target_per_s");
  return [
    {
      benchmark: "receipts-append",
      figure: `receipts/s, ${data.processes} processes, synchronous_commit ${data.synchronous_commit}`,
      measured: `${n(num(g.median, "group_commit.median"), 0)}/s (min ${n(g.min, 0)}, max ${n(g.max, 0)}, n=${g.n})`,
      reference: `naive append ${n(num(naive.median, "naive median"), 0)}/s (group commit ${n(num(data.ratio_group_commit_over_naive, "speed-up"), 1)}x)`,
      target: `>= ${n(target, 0)}/s`,
      ratio: `${n(g.median / target, 2)} of target`,
      met: Boolean(data.target_met),
    },
    {
      benchmark: "receipts-append",
      figure: "one unbroken chain after the run",
      measured: `${n(num(data.chain?.receipts, "chain.receipts"), 0)} receipts, ${data.chain.verifies ? "verifies" : "BROKEN"}`,
      reference: "-",
      target: "verifies",
      ratio: "-",
      met: Boolean(data.chain.verifies),
    },
  ];
}

function transitRows(data: any): FigureRow[] {
  const local = data.local_key;
  const row = (variant: any, label: string, ratio: number): FigureRow => ({
    benchmark: "receipts-transit",
    figure: `receipts/s signed by ${label}, ${data.processes} process, synchronous_commit ${data.synchronous_commit}`,
    measured: `${n(num(variant.median, `${label} median`), 0)}/s (min ${n(variant.min, 0)}, max ${n(variant.max, 0)}, n=${variant.n}); ${n(num(variant.cpu_us_per_receipt, "cpu_us_per_receipt"), 0)} CPU-µs/receipt`,
    reference: `in-process key ${n(num(local.median, "local_key.median"), 0)}/s; ${n(num(local.cpu_us_per_receipt, "local cpu"), 0)} CPU-µs/receipt`,
    target: "-",
    ratio: `${n(num(ratio, "ratio"), 2)}x the in-process key`,
    met: null,
  });
  const chains = Object.entries<any>(data.chains ?? {});
  if (chains.length === 0) throw new Error("no chains");
  return [
    row(data.transit, "Vault transit", data.ratio_transit_over_local),
    row(data.transit_agent, "Vault transit via the agent proxy", data.ratio_agent_over_local),
    {
      benchmark: "receipts-transit",
      figure: "each variant's chain after the run",
      measured: chains.map(([v, c]) => `${v}: ${n(num(c.receipts, "receipts"), 0)} ${c.verifies ? "verify" : "BROKEN"}`).join("; "),
      reference: "-",
      target: "verifies",
      ratio: "-",
      met: chains.every(([, c]) => Boolean(c.verifies)),
    },
  ];
}

function verifyRows(data: any): FigureRow[] {
  const rows: FigureRow[] = [
    {
      benchmark: "verify-chain",
      figure: `verify-chain, ${n(num(data.chain_receipts, "chain_receipts"), 0)} receipts, ${data.threads} threads`,
      measured: `${n(num(data.verify_chain_per_s.median, "verify_chain_per_s.median"), 0)}/s (min ${n(data.verify_chain_per_s.min, 0)}, max ${n(data.verify_chain_per_s.max, 0)})`,
      reference: `ed25519 ceiling ${n(num(data.ceiling_per_s.median, "ceiling_per_s.median"), 0)}/s`,
      target: `>= ${n(num(data.target_ratio, "target_ratio") * 100, 0)}% of ceiling`,
      ratio: `${n(num(data.ratio.median, "ratio.median") * 100, 1)}% (paired median)`,
      met: Boolean(data.target_met),
    },
  ];
  const inc = data.incremental;
  if (inc) {
    rows.push({
      benchmark: "verify-chain",
      figure: "incremental verification after a checkpoint",
      measured: `${n(num(inc.new_receipts, "incremental.new_receipts"), 0)} new receipts in ${n(num(inc.seconds, "incremental.seconds"), 3)} s`,
      reference: `full chain ${n(num(inc.full_receipts, "incremental.full_receipts"), 0)} in ${n(num(inc.full_seconds, "incremental.full_seconds"), 3)} s`,
      target: "cost in proportion to new receipts",
      ratio: `cost ${n(num(inc.cost_ratio, "cost_ratio") * 100, 1)}% of full for ${n((inc.new_receipts / inc.full_receipts) * 100, 1)}% of receipts`,
      met: null,
    });
  }
  return rows;
}

function latencyText(step: any): string {
  const l = step?.latencyMs;
  return l ? `p50/p95/p99 ${n(l.p50, 1)}/${n(l.p95, 1)}/${n(l.p99, 1)} ms` : "no 2xx responses";
}

/** How much load a step offered: closed-loop connections, or one connection paced at a rate. */
function loadText(step: any): string {
  return step?.pacedRate ? `1 conn paced at ${step.pacedRate}/s` : `${step?.connections} conn`;
}

function detectionWorkload(context: any): string {
  const stream = context.observations_per_second !== undefined ? ` (a steady ${context.observations_per_second}/s stream, ${context.history_windows} windows of history)` : "";
  return `${n(context.observations_in_window, 0)} observations in the ${context.window_seconds} s window${stream}`;
}

function apiRows(data: any): FigureRow[] {
  const defaultTarget = num(data.target_p95_ms, "target_p95_ms");
  const ingest = data.ingest;
  const rows: FigureRow[] = (data.endpoints as any[]).map((e) => {
    const target = typeof e.targetP95Ms === "number" ? e.targetP95Ms : defaultTarget;
    const at = e.confirmation ?? e.best ?? e.steps?.[0];
    const measured = e.met
      ? `${n(num(e.sustainedRatePerSecond, "sustainedRatePerSecond"), 0)} req/s (${loadText(at)}); ${latencyText(at)}`
      : e.best
        ? `${n(e.best.throughputPerSecond, 0)} req/s (${loadText(e.best)}) held p95 < ${target} ms once, its confirmation re-run did not: ${latencyText(at)}`
        : `no load held p95 < ${target} ms; lightest step (${loadText(e.steps[0])}): ${n(e.steps[0].throughputPerSecond, 0)} req/s, ${latencyText(e.steps[0])}`;
    const p95 = at?.latencyMs?.p95;
    const row: FigureRow = {
      benchmark: "api",
      figure: `${e.method} ${e.route} (${e.role})`,
      measured,
      reference: e.context?.observations_in_window !== undefined ? detectionWorkload(e.context) : "-",
      target: `highest rate with p95 < ${target} ms, all 2xx`,
      ratio: typeof p95 === "number" ? `p95 ${n(p95 / target, 2)}x target` : "-",
      met: Boolean(e.met),
    };
    const targetRate = e.context?.target_rate_per_second;
    if (typeof targetRate === "number") {
      const rate = e.met ? num(e.sustainedRatePerSecond, "sustainedRatePerSecond") : 0;
      return {
        ...row,
        target: `p95 < ${target} ms at >= ${n(targetRate, 0)} req/s, all 2xx`,
        ratio: `${n(rate / targetRate, 2)} of ${n(targetRate, 0)} req/s` + (typeof p95 === "number" ? `; p95 ${n(p95 / target, 2)}x target` : ""),
        met: rate >= targetRate,
      };
    }
    if (e.name === "baseline.ingest") {
      return { ...row, figure: `${e.method} ${e.route}: bare durable ingest baseline (no auth, audit, hot path or receipt)`, target: `highest rate with p95 < ${target} ms (the reference)`, ratio: "-", met: null };
    }
    if (e.name === "observations.create" && ingest?.single) {
      const share = ingest.single.baseline_ratio;
      return {
        ...row,
        figure: `${e.method} ${e.route} (${e.role}), every guarantee`,
        reference: `baseline ${ingest.baseline?.rate === null ? "not sustained" : `${n(ingest.baseline.rate, 0)} req/s`} in the same run`,
        target: `>= ${n(ingest.single.target_baseline_share * 100, 0)}% of baseline and >= ${n(ingest.single.target_rate, 0)} req/s at p95 < ${target} ms`,
        ratio: typeof share === "number" ? `${n(share * 100, 1)}% of baseline; ${n((ingest.single.rate ?? 0) / ingest.single.target_rate, 2)} of ${n(ingest.single.target_rate, 0)} req/s` : "-",
        met: Boolean(ingest.single.met),
      };
    }
    if (e.name === "observations.batch" && ingest?.batch) {
      const b = ingest.batch;
      return {
        ...row,
        figure: `${e.method} ${e.route} (${e.role}), ${n(b.observations_per_request, 0)} observations per request`,
        measured: b.observations_per_second === null ? measured : `${n(b.observations_per_second, 0)} observations/s durable; ${measured}`,
        reference: ingest.single?.rate ? `single ingest ${n(ingest.single.rate, 0)} observations/s` : "-",
        target: `>= ${n(b.target_observations_per_second, 0)} observations/s at p95 < ${n(b.target_p95_ms, 0)} ms per request`,
        ratio: typeof b.target_ratio === "number" ? `${n(b.target_ratio, 2)} of target` : "-",
        met: Boolean(b.met),
      };
    }
    return row;
  });
  const commit = data.reference?.single_row_commit;
  const first = rows.findIndex((r) => r.figure.includes("baseline"));
  if (commit && rows.length) {
    const i = first >= 0 ? first : 0;
    rows[i] = { ...rows[i], reference: `one INSERT+COMMIT: p50 ${n(commit.p50_ms, 2)} ms, p95 ${n(commit.p95_ms, 2)} ms` };
  }
  const rss = num(data.memory?.rss_max_bytes, "memory.rss_max_bytes");
  const request = num(data.memory_request_bytes, "memory_request_bytes");
  rows.push({
    benchmark: "api",
    figure: "service resident memory under that load",
    measured: `max ${n(rss / 2 ** 20, 0)} MiB (VmRSS, sampled every 200 ms)`,
    reference: "-",
    target: `< ${n(request / 2 ** 20, 0)} MiB request`,
    ratio: `${n(rss / request, 2)} of request`,
    met: rss < request,
  });
  return rows;
}

function warmRows(data: any): FigureRow[] {
  const volume = data.data ? `${n(data.data.observations, 0)} observations` : "";
  return (data.figures as any[]).map((f) => ({
    benchmark: "warm-path",
    figure: `${f.operation} (${volume})`,
    measured: `p95 ${n(num(f.p95_ms, "p95_ms"), 1)} ms (median ${n(f.ms.median, 1)}, max ${n(f.ms.max, 1)}, n=${f.samples})`,
    reference: "-",
    target: `p95 < ${num(f.target_p95_ms, "target_p95_ms")} ms`,
    ratio: `${n(num(f.ratio, "ratio"), 2)}x target`,
    met: Boolean(f.met),
  }));
}

function stackRows(data: any): FigureRow[] {
  const s = data.summary;
  const target = num(data.target_seconds, "target_seconds");
  return [
    {
      benchmark: "stack-render",
      figure: `render stack ${data.stack} under mocks (${data.resources} resources)`,
      measured: `${n(num(s.median, "summary.median"), 2)} s (min ${n(s.min, 2)}, max ${n(s.max, 2)}, n=${s.n})`,
      reference: "-",
      target: `< ${target} s`,
      ratio: `${n(s.median / target, 2)}x target`,
      met: Boolean(data.met),
    },
  ];
}

function failoverRows(data: any): FigureRow[] {
  const drills = data.drills as any[];
  if (!Array.isArray(drills) || drills.length === 0) throw new Error("no drills");
  const pair = (s: any, what: string) => (s ? `${n(num(s.median, `${what}.median`), 1)} s median, ${n(num(s.worst, `${what}.worst`), 1)} s worst (n=${s.n})` : "-");
  return drills.flatMap((d): FigureRow[] => {
    const rows: FigureRow[] = [];
    // Each repetition checks every write acknowledged since the start, so the last one is the total.
    const runs = Array.isArray(data.runs) ? (data.runs as any[]).filter((r) => r.drill === d.drill) : [];
    const checked = runs.length ? Math.max(...runs.map((r) => num(r.acknowledged, "runs.acknowledged"))) : num(d.acknowledged, "acknowledged");
    if (d.target_endpoint_seconds !== null) {
      rows.push({
        benchmark: "failover",
        figure: `${d.drill}: postgres-primary's only endpoint is the new leader`,
        measured: pair(d.endpoint_switch_seconds, "endpoint"),
        reference: "-",
        target: `worst <= ${d.target_endpoint_seconds} s`,
        ratio: d.endpoint_switch_seconds ? `${n(d.endpoint_switch_seconds.worst / d.target_endpoint_seconds, 2)}x target` : "-",
        met: d.endpoint_met,
      });
    }
    rows.push({
      benchmark: "failover",
      figure: `${d.drill}: first acknowledged write after the fault`,
      measured: pair(d.first_write_seconds, "first_write"),
      reference: `etcd DCS (issue): ${d.etcd_reference}`,
      target: d.target_first_write_seconds === null ? "-" : `worst <= ${d.target_first_write_seconds} s`,
      ratio: d.target_first_write_seconds === null ? "-" : `${n(d.first_write_seconds.worst / d.target_first_write_seconds, 2)}x target`,
      met: d.first_write_met,
    });
    rows.push({
      benchmark: "failover",
      figure: `${d.drill}: acknowledged writes lost (RPO)${d.rejoin_seconds ? `; old leader streaming again after ${pair(d.rejoin_seconds, "rejoin")}` : ""}`,
      measured: `${n(num(d.lost, "lost"), 0)} of ${n(checked, 0)} acknowledged`,
      reference: "-",
      target: "0",
      ratio: "-",
      met: Boolean(d.rpo_met),
    });
    return rows;
  });
}

/** Figures the benchmark wrote as rows already (figure, measured, reference, target, ratio, met). */
/** The rows of a benchmark that stores its table as `figures` (each cell already text). */
const figureRows = (benchmark: string) => (data: any): FigureRow[] => {
  if (!Array.isArray(data.figures) || data.figures.length === 0) throw new Error("no figures");
  return (data.figures as any[]).map((f) => {
    for (const key of ["figure", "measured", "reference", "target", "ratio"]) if (typeof f[key] !== "string") throw new Error(`figure ${key} is not text`);
    return { benchmark, figure: f.figure, measured: f.measured, reference: f.reference, target: f.target, ratio: f.ratio, met: typeof f.met === "boolean" ? f.met : null };
  });
};

const FORMATTERS: Record<string, (data: any) => FigureRow[]> = {
  "receipt-log": figureRows("receipt-log"),
  "detect-history": figureRows("detect-history"),
  failover: failoverRows,
  hotpath: hotpathRows,
  "receipts-append": receiptsRows,
  "receipts-transit": transitRows,
  "verify-chain": verifyRows,
  api: apiRows,
  "warm-path": warmRows,
  "stack-render": stackRows,
};

/** The rows of one result; a shape the formatter does not understand yields one row saying why. */
export function figuresOf(result: StoredResult): FigureRow[] {
  const formatter = FORMATTERS[result.benchmark];
  const broken = (why: string): FigureRow[] => [
    { benchmark: result.benchmark, figure: "(result file)", measured: `not understood: ${why}`, reference: "-", target: "-", ratio: "-", met: null },
  ];
  if (!formatter) return broken("no formatter for this benchmark in bench/lib/report.ts");
  try {
    return formatter(result.data);
  } catch (error) {
    return broken(error instanceof Error ? error.message : String(error));
  }
}

/** The 1-minute load average a result was measured under: its own record, else the run's. */
export function loadOf(result: StoredResult, run?: RunRecord): number | undefined {
  const d = result.data ?? {};
  if (typeof d.load_average_1m === "number") return d.load_average_1m;
  const steps = (d.endpoints as any[] | undefined)?.flatMap((e) => e.steps ?? []) ?? [];
  if (steps.length) return Math.max(...steps.map((s: any) => Number(s.loadAverage1m) || 0));
  const entry = run?.benchmarks.find((b) => b.name === result.benchmark);
  if (entry && result.machine?.date >= entry.started && result.machine.date <= entry.finished) {
    return Math.max(entry.loadBefore, entry.loadAfter);
  }
  return undefined;
}

/** The API ladder step by step: how the highest sustained rate was found (or why none was). */
function apiSteps(data: any): string[] {
  const m = data.method ?? {};
  const lines = ["", "### API steps", "", `One connection paced at ${m.paced_rate_per_second ?? "?"} req/s, then closed-loop autocannon connections; each step held ${m.step_seconds ?? "?"} s after a ${m.warmup_seconds ?? "?"} s warm-up; latency of the route's success responses. "baseline" rows are the bare durable ingest server (bench/lib/baseline-ingest.ts) on the same database.`, "", "| Endpoint | Load | req/s | p50 ms | p95 ms | p99 ms | Not 2xx / errors | RSS MiB | Load (1m) | Sustained |", "|---|---|---|---|---|---|---|---|---|---|"];
  for (const e of data.endpoints as any[]) {
    const steps: [any, string][] = (e.steps ?? []).map((s: any) => [s, e.best && s.connections === e.best.connections && s.throughputPerSecond === e.best.throughputPerSecond ? "best" : ""]);
    if (e.confirmation) steps.push([e.confirmation, "confirmation"]);
    for (const [s, label] of steps) {
      const l = s.latencyMs;
      const verdict = s.sustained ? `yes${label ? ` (${label})` : ""}` : `no: ${s.why ?? "?"}${label ? ` (${label})` : ""}`;
      lines.push(
        `| ${[`${e.name === "baseline.ingest" ? "baseline " : ""}${e.method} ${e.route}`, loadText(s), n(s.throughputPerSecond, 0), l ? n(l.p50, 1) : "-", l ? n(l.p95, 1) : "-", l ? n(l.p99, 1) : "-", `${s.unexpectedStatus ?? "?"} / ${(s.errors ?? 0) + (s.timeouts ?? 0)}`, n(s.rssMaxBytes / 2 ** 20, 0), n(s.loadAverage1m, 1), verdict].map(cell).join(" | ")} |`,
      );
    }
  }
  const commit = data.reference?.single_row_commit;
  if (commit) {
    lines.push("", `Reference on the same PostgreSQL: one single-row INSERT + COMMIT (WAL flush) takes p50 ${n(commit.p50_ms, 2)} ms, p95 ${n(commit.p95_ms, 2)} ms. An ingest request commits its audit row, observations and receipt in one transaction shared with concurrent requests; other writes commit their audit row before the handler runs, and a read runs while its audit row commits (its answer waits for the commit).`);
  }
  const means = (data.endpoints as any[]).filter((e) => e.serverSideMeanMs && Object.keys(e.serverSideMeanMs).length);
  if (means.length) {
    lines.push("", `Server-side mean time per request (from the service's own metrics): ${means.map((e) => `${e.method} ${e.route} ${Object.entries<number>(e.serverSideMeanMs).map(([k, v]) => `${k} ${n(v, 1)} ms`).join(", ")}`).join("; ")}.`);
  }
  const io = (data.endpoints as any[]).filter((e) => e.perRequest);
  if (io.length) {
    lines.push("", `Database work per request (pg_stat_database, pg_stat_wal; transactions include read-only statements, a WAL sync is one disk flush, shared by concurrent commits): ${io.map((e) => `${e.method} ${e.route} ${n(e.perRequest.commits, 2)} transactions and ${n(e.perRequest.wal_syncs, 2)} WAL syncs`).join("; ")}.`);
  }
  return lines;
}

/**
 * For each target not met, where the time goes, from the breakdown the benchmark recorded
 * (CPU per receipt against a bare verification; server-side stages and database work per request).
 */
export function shortfalls(results: readonly StoredResult[]): string[] {
  const lines: string[] = [];
  for (const result of results) {
    const d = result.data ?? {};
    if (result.benchmark === "verify-chain" && d.target_met === false) {
      const bare = Number(d.ceiling_cpu_us_per_verify);
      const full = Number(d.verify_chain_cpu_us_per_receipt);
      if (bare > 0 && full > 0) {
        lines.push(
          `- **verify-chain**: a receipt costs ${n(full, 1)} CPU-µs (PostgreSQL included) against ${n(bare, 1)} for a bare ed25519 ` +
            `verification (CPU efficiency ${n(Number(d.cpu_efficiency?.median) * 100, 1)}%). The other ${n(full - bare, 1)} µs are the work the ` +
            "ceiling does not do: reading the row (PostgreSQL and the driver), handing it to a thread, rebuilding the canonical text, " +
            `recomputing its SHA-256 and decoding hash and signature. ${n(Number(d.target_ratio) * 100, 0)}% of the ceiling needs that under ` +
            `${n(bare * (1 / Number(d.target_ratio) - 1), 1)} µs per receipt.`,
        );
      }
    }
    if (result.benchmark === "receipt-log" && d.http_proof_ms && d.http_checkpoint_ms && d.durable_commit_ms && d.http_health_ms && typeof d.http_proof_ms.p95 === "number") {
      const proofTarget = Number(d.targets?.proofP95Ms);
      if (Number(d.http_proof_ms.p95) >= proofTarget || Number(d.http_consistency_ms?.p95) >= proofTarget) {
        lines.push(
          `- **receipt-log proofs over HTTP**: an inclusion proof costs p50 ${n(d.proof_ms.median, 2)}, p95 ${n(d.proof_ms.p95, 2)} ms in the function the API calls and p50 ${n(d.http_proof_ms.median, 2)}, p95 ${n(d.http_proof_ms.p95, 2)} ms ` +
            `through the service. The rest is the request path, which the latest-checkpoint request shows on its own: p50 ${n(d.http_checkpoint_ms.median, 2)}, ` +
            `p95 ${n(d.http_checkpoint_ms.p95, 2)} ms (token, permission, its decision committed durably while the read runs), against p50 ` +
            `${n(d.durable_commit_ms.median, 2)}, p95 ${n(d.durable_commit_ms.p95, 2)} ms for one durable INSERT + COMMIT and p50 ${n(d.http_health_ms.median, 2)}, ` +
            `p95 ${n(d.http_health_ms.p95, 2)} ms for GET /health (one database ping, no token, no audit): client, service and PostgreSQL are three processes on 2 cores, and each round trip between them pays a context switch.`,
        );
      }
      const append = d.append;
      if (append?.withTree && append?.without && append.withTree.median / append.without.median < Number(d.targets?.appendRatio)) {
        lines.push(
          `- **receipt-log append with the tree**: ${n(append.withTree.median, 0)} against ${n(append.without.median, 0)} receipts/s without it (medians of ${append.withTree.n} runs each way, ` +
            `${n(append.withTree.min, 0)}-${n(append.withTree.max, 0)} against ${n(append.without.min, 0)}-${n(append.without.max, 0)}). The tree's work shares the process and the 2 cores with the appends: ` +
            "reading each new receipt back, two SHA-256 per receipt on the event loop, and an advance transaction every 100 ms.",
        );
      }
    }
    if (result.benchmark === "api" && Array.isArray(d.endpoints)) {
      for (const e of d.endpoints as any[]) {
        const rateMissed = typeof e.context?.target_rate_per_second === "number" && !(e.met && e.sustainedRatePerSecond >= e.context.target_rate_per_second);
        const ingestMissed = (e.name === "observations.create" && d.ingest?.single?.met === false) || (e.name === "observations.batch" && d.ingest?.batch?.met === false) || (e.met && rateMissed);
        if (e.name === "baseline.ingest" || (e.met !== false && !ingestMissed)) continue;
        const first = e.steps?.[0];
        const at = e.confirmation ?? e.best;
        const parts =
          ingestMissed && at
            ? [`- **${e.method} ${e.route}**: the best sustained step was ${n(at.throughputPerSecond, 0)} req/s (${loadText(at)}, p95 ${at.latencyMs ? n(at.latencyMs.p95, 1) : "?"} ms); target p95 < ${e.targetP95Ms ?? d.target_p95_ms} ms`]
            : [`- **${e.method} ${e.route}**: at the lightest load (${first ? loadText(first) : "?"}) p95 ${first?.latencyMs ? n(first.latencyMs.p95, 1) : "?"} ms`];
        if (e.serverSideMeanMs) parts.push(`server-side mean ${Object.entries<number>(e.serverSideMeanMs).map(([k, v]) => `${k} ${n(v, 1)} ms`).join(", ")}`);
        if (e.perRequest) parts.push(`${n(e.perRequest.commits, 2)} transactions and ${n(e.perRequest.wal_syncs, 2)} WAL flushes per request`);
        if (e.context?.observations_in_horizon) parts.push(`each detection reads ${n(e.context.observations_in_horizon, 0)} observations (the window and its history)`);
        lines.push(parts.join("; ") + ".");
      }
    }
  }
  return lines.length ? ["", "## Targets not met: where the time goes", "", ...lines] : [];
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
const metText = (met: boolean | null) => (met === null ? "info" : met ? "**met**" : "**not met**");

export interface ReportInput {
  readonly results: readonly StoredResult[];
  readonly run?: RunRecord;
  readonly generatedAt: string;
}

/** Results in report order (BENCHMARKS), unknown benchmarks last. */
export function inReportOrder(results: readonly StoredResult[]): StoredResult[] {
  const rank = (r: StoredResult) => {
    const i = BENCHMARKS.findIndex((b) => b.name === r.benchmark);
    return i < 0 ? BENCHMARKS.length : i;
  };
  return [...results].sort((a, b) => rank(a) - rank(b));
}

export function renderReport(input: ReportInput): string {
  const byName = new Map(input.results.map((r) => [r.benchmark, r]));
  const ordered = inReportOrder(input.results);
  const rows = ordered.flatMap(figuresOf);
  const judged = rows.filter((r) => r.met !== null);
  const missing = BENCHMARKS.filter((b) => !byName.has(b.name));
  const lines: string[] = [];
  lines.push("# KNHK benchmarks", "");
  lines.push(
    `Generated ${input.generatedAt} by \`npm run bench:report\` from \`bench/results/*.json\`; do not edit by hand. ` +
      "Every figure is printed next to its reference or target; the ratio is measured / reference (or target).",
    "",
  );
  lines.push(`**${judged.filter((r) => r.met).length} of ${judged.length} targets met.**`);
  const notMet = judged.filter((r) => !r.met);
  if (notMet.length) lines.push("", `Not met: ${notMet.map((r) => `${r.benchmark}: ${r.figure}`).join("; ")}.`);
  if (missing.length) {
    lines.push("", `No result yet for: ${missing.map((b) => `${b.name} (\`npm run ${b.script}\`)`).join(", ")}.`);
  }

  const loaded = ordered
    .map((r) => ({ name: r.benchmark, load: loadOf(r, input.run), cores: input.run?.cores ?? r.machine?.cores ?? 0 }))
    .filter((x) => x.load !== undefined && x.cores > 0 && x.load > x.cores);
  if (loaded.length) {
    lines.push(
      "",
      "## Measured on a shared machine",
      "",
      `These figures were measured while the machine was shared with other engineers' builds and tests: ` +
        loaded.map((x) => `${x.name} under load average ${n(x.load!, 1)} on ${x.cores} cores`).join(", ") +
        ". Absolute latencies and throughputs are therefore pessimistic; ratios against a reference measured " +
        "in the same run (hot path vs C, verification vs the ed25519 ceiling) hold better. Re-run on an idle machine " +
        "for absolute figures.",
    );
  }

  lines.push("", "## Figures", "");
  lines.push("| Benchmark | Figure | Measured | Reference | Target | Ratio | Result |");
  lines.push("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    lines.push(`| ${[r.benchmark, r.figure, r.measured, r.reference, r.target, r.ratio, metText(r.met)].map(cell).join(" | ")} |`);
  }

  lines.push(...shortfalls(ordered));

  const api = byName.get("api");
  if (api && Array.isArray(api.data?.endpoints)) lines.push(...apiSteps(api.data));

  lines.push("", "## Method", "");
  for (const b of BENCHMARKS) lines.push(`- **${b.name}**: ${b.method}`);

  lines.push("", "## Machine and conditions", "");
  lines.push("| Benchmark | Measured at (UTC) | CPU | Cores visible | Memory | Node | Kernel | Load avg (1m) |");
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const r of ordered) {
    const m = r.machine;
    const load = loadOf(r, input.run);
    lines.push(
      `| ${[r.benchmark, m?.date?.replace("T", " ").replace(/\.\d+Z$/, "") ?? "?", m?.cpuModel ?? "?", String(m?.cores ?? "?"), m ? `${m.memoryGiB} GiB` : "?", m?.node ?? "?", m?.kernel ?? "?", load === undefined ? "not recorded" : n(load, 1)].map(cell).join(" | ")} |`,
    );
  }
  lines.push("", "Cores visible is what the benchmark process could use (a benchmark pinned with taskset sees 1).");
  if (input.run) {
    lines.push(
      "",
      `Last full run (\`npm run bench\`): ${input.run.started} to ${input.run.finished}, ${n(input.run.seconds, 0)} s in total: ` +
        input.run.benchmarks.map((b) => `${b.name} ${n(b.seconds, 0)} s${b.exitCode === 0 ? "" : ` (FAILED, exit ${b.exitCode})`}`).join(", ") +
        ".",
    );
  }

  lines.push("", "## How to reproduce", "");
  lines.push("After the setup (`scripts/install-deps.sh` for PostgreSQL 15 and Redis, gcc for the C reference, then `npm install`):", "");
  lines.push("```sh");
  lines.push("npm run bench            # every benchmark in sequence, then this report (target: under 10 minutes on 2 cores)");
  for (const b of BENCHMARKS) lines.push(`npm run ${b.script.padEnd(16)} # ${b.title}`);
  lines.push("npm run bench:report     # regenerate BENCHMARKS.md from bench/results/*.json");
  lines.push("```", "");
  lines.push(
    "Each benchmark starts and stops the servers it needs (PostgreSQL 15, Redis, the service) on loopback, " +
      "warms up before measuring, repeats, and writes `bench/results/<name>.json` with its figures, references, " +
      "ratios and the machine. Method notes are in the header comment of each `bench/<name>.ts`.",
  );
  return lines.join("\n") + "\n";
}
