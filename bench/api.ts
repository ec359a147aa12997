/**
 * API benchmark (issues #8 and #15): for POST /api/v1/observations, GET /api/v1/snapshots/:id and
 * POST /api/v1/patterns/detect, the highest sustained request rate at which p95 stays below
 * 20 ms, and for POST /api/v1/observations/batch (500 observations per request) the highest at
 * which p95 stays below 200 ms, against the service running as its own process on a real
 * PostgreSQL 15 (synchronous_commit on) and Redis, with a loopback OIDC issuer; and the service's
 * resident memory under that load against its 512 MiB request. Single ingest is judged against
 * a bare durable ingest server (bench/lib/baseline-ingest.ts: one INSERT per request, nothing
 * else) measured in the same run with the same bodies and ladder: the ratio is what the
 * service's guarantees cost.
 *
 *   npm run bench:api   (or: npx tsx bench/api.ts [--quick] [--step-seconds N] [--max-steps N] [--target-p95-ms N]
 *                                            [--detect-rate N])
 *
 * Method: after a warm-up, one connection paced at 10 req/s (the latency floor of a lightly loaded
 * service; one connection, so the paced requests never overlap), then a ladder of closed-loop
 * autocannon connection counts (1, 2, 4, ...), each held for a whole step (default 8 s). The
 * ladder steps concurrency rather than autocannon's `overallRate`: in autocannon 8 that option
 * lets each connection fire its quota back to back at the start of every second (so latency
 * follows the connection count anyway), and its coordinated-omission correction assumes a 1 ms
 * interval, which inflates percentiles. Latencies are therefore recorded here from every
 * response with the route's success status, exactly, not from autocannon's histogram. A step
 * counts as sustained only if every response had that status, there were no connection errors
 * or timeouts, and p95 < 20 ms. After the first failing step the gap to the last good one is
 * bisected; the fastest sustained step is then re-run to confirm (if the re-run misses, the next
 * fastest is tried once), and a rate is reported as sustained only if its re-run held too.
 * RSS comes from /proc/<pid>/status of the service process, sampled every 200 ms under load
 * (cross-checked with its process_resident_memory_bytes metric). Transactions and WAL syncs
 * per request (pg_stat_database, pg_stat_wal) show the database work each request waits for.
 *
 * Settings that differ from a default deployment (recorded in the result): the per-principal
 * rate limit is raised (the benchmark is one principal per role), the MAPE-K scheduler is off
 * (so no background detection runs into the figures) and the request log goes to /dev/null.
 */
import autocannon from "autocannon";
import { Client } from "pg";
import { loadavg } from "node:os";
import * as path from "node:path";
import { startPostgres, type TestPostgres } from "../test/support/postgres";
import { startRedis, type TestRedis } from "../test/support/redis";
import { printTable, quantile, summarize, writeResult, type Summary } from "./lib";
import { climbLadder, type LadderStep } from "./lib/ladder";
import { startBenchOidc, type BenchOidc } from "./lib/oidc";
import { startBaselineProcess } from "./lib/baseline-ingest";
import { insertDetectionStream } from "./lib/detection-stream";
import { prepareServiceDatabase, startServiceProcess, type ServiceProcess } from "./lib/servers";

const MEMORY_REQUEST_BYTES = 512 * 2 ** 20;
const MiB = 2 ** 20;

function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got "${process.argv[i + 1]}"`);
  return value;
}

const quick = flag("quick");
/** Issue #8's target; another value (--target-p95-ms) explores the curve and is recorded as such. */
const TARGET_P95_MS = option("target-p95-ms", 20);
const STEP_SECONDS = option("step-seconds", quick ? 4 : 8);
const WARMUP_SECONDS = option("warmup-seconds", quick ? 2 : 3);
const LADDER = [1, 2, 4, 8, 16, 32, 64];
/**
 * Before the ladder, one connection paced at this many requests per second: the latency floor of
 * a lightly loaded service. If even one closed-loop connection misses the target, this paced rate
 * is the highest sustained rate found (when it holds).
 */
const PACED_RATE = 10;
/**
 * Detection workload: a steady stream of this many observations per second over 5 event types
 * and 5 sectors, seeded for the 10 windows of history before the default 60 s window and for the
 * minutes the endpoint is measured (rows dated ahead enter the sliding window as time passes), so
 * every detection sees the same volume: rate x 60 observations in the window. At the default 20/s
 * each event type exceeds the default high-frequency threshold (100 per window): every run finds
 * and stores 5 patterns and its receipt.
 */
const DETECT_RATE = option("detect-rate", 20);
const DETECT_WINDOW_SECONDS = 60;
const DETECT_HISTORY_WINDOWS = 10;
/** Detection must hold p95 under its target at this rate (issue #15). */
const DETECT_TARGET_RATE_PER_SECOND = 300;
/** Sustained steps re-run (fastest first) until one confirms. */
const CONFIRMATION_ATTEMPTS = 2;
/** Ladder + bisection steps per endpoint, bounding the whole run (at most ~70 s per endpoint by default). */
const MAX_STEPS = option("max-steps", quick ? 4 : 5);

interface Endpoint {
  readonly name: string;
  readonly method: "GET" | "POST";
  readonly route: string;
  /** autocannon requests (cycled per connection); bodies vary where the route takes one. */
  readonly requests: autocannon.Request[];
  readonly expectedStatus: number;
  readonly role: string;
  /** The step's p95 bound; default TARGET_P95_MS. */
  readonly targetP95Ms?: number;
  /** Observations each request carries (a batch); default 1. */
  readonly itemsPerRequest?: number;
}

/** What the ladder drives: the service, or the bare baseline (no metrics endpoint). */
interface LoadTarget {
  readonly apiUrl: string;
  readonly metricsUrl?: string;
  residentBytes(): number;
}

interface StepResult extends LadderStep {
  readonly connections: number;
  /** Requests per second the step was paced at (autocannon overallRate); absent: closed loop. */
  readonly pacedRate?: number;
  readonly seconds: number;
  readonly responses: number;
  readonly ok: number;
  /** Responses with any status other than the route's success status (non-2xx included). */
  readonly unexpectedStatus: number;
  readonly statusCodes: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly throughputPerSecond: number;
  /** 2xx completions per whole second of the step: its spread shows whether the rate held. */
  readonly perSecond: Summary | null;
  readonly latencyMs: { p50: number; p95: number; p99: number; max: number } | null;
  readonly rssMaxBytes: number;
  readonly loadAverage1m: number;
  readonly sustained: boolean;
  readonly why?: string;
}

interface EndpointResult {
  readonly name: string;
  readonly method: string;
  readonly route: string;
  readonly role: string;
  readonly targetP95Ms: number;
  readonly itemsPerRequest: number;
  readonly steps: StepResult[];
  readonly best: StepResult | null;
  readonly confirmation: StepResult | null;
  /** Best step's throughput when the confirmation run also held p95 < 20 ms; else null. */
  readonly sustainedRatePerSecond: number | null;
  readonly met: boolean;
  readonly rssMaxBytes: number;
  /** process_resident_memory_bytes from the service's own /metrics at the end (cross-check). */
  readonly metricRssBytes: number | null;
  /** Mean server-side milliseconds over the measured steps: the request, and per warm-path stage. */
  readonly serverSideMeanMs: Record<string, number>;
  /** Transactions (read-only statements included) and WAL syncs per request (pg_stat_database, pg_stat_wal). */
  readonly perRequest: { requests: number; commits: number; wal_syncs: number } | null;
  readonly context?: Record<string, unknown>;
}

async function runStep(endpoint: Endpoint, apiUrl: string, connections: number, seconds: number, sampleRss: () => number, pacedRate?: number): Promise<StepResult> {
  const latencies: number[] = [];
  const okAt: number[] = [];
  let unexpectedStatus = 0;
  let rssMax = 0;
  const rssTimer = setInterval(() => {
    try {
      rssMax = Math.max(rssMax, sampleRss());
    } catch {
      // the process is gone; the step will show errors
    }
  }, 200);
  const load0 = loadavg()[0];
  const started = Date.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: apiUrl, connections, duration: seconds, requests: endpoint.requests, timeout: 10, ...(pacedRate ? { overallRate: pacedRate } : {}) },
      (error, res) => (error ? reject(error) : resolve(res)),
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      // Only the route's own success status counts (a 200 where 201 is due would be a defect).
      if (statusCode === endpoint.expectedStatus) {
        latencies.push(responseTime);
        okAt.push(Date.now());
      } else {
        unexpectedStatus++;
      }
    });
  });
  clearInterval(rssTimer);
  rssMax = Math.max(rssMax, sampleRss());
  const elapsed = result.duration || seconds;

  const buckets = new Map<number, number>();
  for (const t of okAt) {
    const second = Math.floor((t - started) / 1000);
    buckets.set(second, (buckets.get(second) ?? 0) + 1);
  }
  const wholeSeconds = Math.floor(elapsed);
  const perSecondCounts = Array.from({ length: wholeSeconds }, (_, i) => buckets.get(i) ?? 0);
  const sorted = [...latencies].sort((a, b) => a - b);
  const latencyMs = sorted.length
    ? { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] }
    : null;
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = (stat as { count: number }).count;

  let why: string | undefined;
  if (latencies.length === 0) why = "no 2xx response";
  else if (unexpectedStatus > 0) why = `${unexpectedStatus} responses not ${endpoint.expectedStatus} (${Object.keys(statusCodes).join(", ")})`;
  else if (result.errors > 0 || result.timeouts > 0) why = `${result.errors} connection errors, ${result.timeouts} timeouts`;
  else if (latencyMs && latencyMs.p95 >= (endpoint.targetP95Ms ?? TARGET_P95_MS)) why = `p95 ${latencyMs.p95.toFixed(1)} ms >= ${endpoint.targetP95Ms ?? TARGET_P95_MS} ms`;
  return {
    level: connections,
    connections,
    ...(pacedRate ? { pacedRate } : {}),
    seconds: elapsed,
    responses: latencies.length + unexpectedStatus,
    ok: latencies.length,
    unexpectedStatus,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    throughputPerSecond: latencies.length / elapsed,
    perSecond: perSecondCounts.length ? summarize(perSecondCounts) : null,
    latencyMs,
    rssMaxBytes: rssMax,
    loadAverage1m: Math.round(((load0 + loadavg()[0]) / 2) * 10) / 10,
    sustained: why === undefined,
    why,
  };
}

function stepRow(endpoint: string, step: StepResult, label = "") {
  return {
    endpoint,
    conns: step.pacedRate ? `1 @${step.pacedRate}/s` : step.connections,
    "req/s": Math.round(step.throughputPerSecond),
    p50_ms: step.latencyMs?.p50,
    p95_ms: step.latencyMs?.p95,
    p99_ms: step.latencyMs?.p99,
    bad_status: step.unexpectedStatus,
    errors: step.errors + step.timeouts,
    rss_MiB: Math.round(step.rssMaxBytes / MiB),
    load1m: step.loadAverage1m,
    sustained: step.sustained,
    note: label || step.why || "",
  };
}

/** Every sample of the service's /metrics as "name{labels}" -> value. */
async function scrape(metricsUrl: string | undefined): Promise<Map<string, number>> {
  const samples = new Map<string, number>();
  if (!metricsUrl) return samples;
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$/.exec(line);
    if (match) samples.set(match[1], Number(match[2]));
  }
  return samples;
}

/**
 * Server-side mean time (ms) per request and per warm-path stage between two scrapes: where the
 * client-side latency goes (the rest is queueing, the network stack and the load generator).
 */
function serverSideMeans(before: Map<string, number>, after: Map<string, number>, route: string): Record<string, number> {
  const means: Record<string, number> = {};
  const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  for (const key of after.keys()) {
    const request = /^knhk_http_request_duration_seconds_sum\{(.*)\}$/.exec(key);
    const stage = /^knhk_warm_path_duration_seconds_sum\{(.*)\}$/.exec(key);
    const labels = (request ?? stage)?.[1];
    if (!labels || (request && !labels.includes(`route="${route}"`))) continue;
    const count = delta(key.replace("_sum{", "_count{"));
    if (count <= 0) continue;
    const name = request ? "request" : `stage ${/stage="([^"]*)"/.exec(labels)?.[1] ?? labels}`;
    means[name] = Math.round((delta(key) / count) * 1e6) / 1e3;
  }
  return means;
}

interface PgCounters {
  readonly commits: number;
  readonly walSyncs: number;
}

/** Database commits and WAL syncs (disk flushes) per request served, over the measured steps. */
function perRequest(before: PgCounters, after: PgCounters, metricsAfter: Map<string, number>, metricsBefore: Map<string, number>, route: string, counted?: number) {
  let requests = counted ?? 0;
  for (const [key, value] of metricsAfter) {
    if (key.startsWith("knhk_http_request_duration_seconds_count{") && key.includes(`route="${route}"`)) requests += value - (metricsBefore.get(key) ?? 0);
  }
  if (requests <= 0) return null;
  return {
    requests,
    commits: Math.round(((after.commits - before.commits) / requests) * 100) / 100,
    wal_syncs: Math.round(((after.walSyncs - before.walSyncs) / requests) * 100) / 100,
  };
}

async function benchEndpoint(endpoint: Endpoint, service: LoadTarget, pgCounters: () => Promise<PgCounters>): Promise<Omit<EndpointResult, "context">> {
  const url = service.apiUrl;
  process.stderr.write(`\n${endpoint.method} ${endpoint.route}: warm-up ${WARMUP_SECONDS} s\n`);
  await runStep(endpoint, url, 4, WARMUP_SECONDS, service.residentBytes);
  const before = await scrape(service.metricsUrl);
  const countersBefore = await pgCounters();
  const log = (step: StepResult) =>
    process.stderr.write(
      `  ${String(step.connections).padStart(3)} conns: ${step.throughputPerSecond.toFixed(0)} req/s, p95 ${step.latencyMs?.p95.toFixed(1) ?? "-"} ms${step.sustained ? "" : ` (not sustained: ${step.why})`}\n`,
    );
  const paced = await runStep(endpoint, url, 1, STEP_SECONDS, service.residentBytes, PACED_RATE);
  process.stderr.write(`  paced ${PACED_RATE} req/s: `);
  log(paced);
  const ladder = await climbLadder(LADDER, MAX_STEPS, async (connections) => {
    const step = await runStep(endpoint, url, connections, STEP_SECONDS, service.residentBytes);
    log(step);
    return step;
  });
  const steps = [paced, ...ladder.steps];
  const best = ladder.best ?? (paced.sustained ? paced : null);
  // Confirm the fastest sustained step by re-running it; if that re-run misses, try the next one.
  let confirmation: StepResult | null = null;
  let confirmed: StepResult | null = null;
  const candidates = steps.filter((x) => x.sustained).sort((a, b) => b.throughputPerSecond - a.throughputPerSecond).slice(0, CONFIRMATION_ATTEMPTS);
  for (const candidate of candidates) {
    confirmation = await runStep(endpoint, url, candidate.connections, STEP_SECONDS, service.residentBytes, candidate.pacedRate);
    process.stderr.write(`  confirm ${candidate.pacedRate ? `paced ${candidate.pacedRate} req/s` : `${candidate.connections} conns`}: `);
    log(confirmation);
    confirmed = candidate;
    if (confirmation.sustained) break;
  }
  const held = !!confirmed && !!confirmation?.sustained;
  const counters = await pgCounters();
  const all = confirmation ? [...steps, confirmation] : steps;
  const after = await scrape(service.metricsUrl);
  return {
    name: endpoint.name,
    method: endpoint.method,
    route: endpoint.route,
    role: endpoint.role,
    targetP95Ms: endpoint.targetP95Ms ?? TARGET_P95_MS,
    itemsPerRequest: endpoint.itemsPerRequest ?? 1,
    steps,
    best: confirmed ?? best,
    confirmation,
    // The lower of the two runs: a rate is only called sustained if it held both times.
    sustainedRatePerSecond: held ? Math.min(confirmed!.throughputPerSecond, confirmation!.throughputPerSecond) : null,
    met: held,
    rssMaxBytes: Math.max(...all.map((s) => s.rssMaxBytes)),
    metricRssBytes: after.get("process_resident_memory_bytes") ?? null,
    serverSideMeanMs: serverSideMeans(before, after, endpoint.route),
    // Without a metrics endpoint (the baseline), the requests answered are counted client-side.
    perRequest: perRequest(countersBefore, counters, after, before, endpoint.route, service.metricsUrl ? undefined : all.reduce((n, s) => n + s.responses, 0)),
  };
}

async function waitForRedis(apiUrl: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last = "";
  while (Date.now() < deadline) {
    const response = await fetch(`${apiUrl}/health`);
    const body = (await response.json()) as { dependencies?: { database?: string; redis?: string } };
    last = JSON.stringify(body.dependencies);
    if (body.dependencies?.database === "healthy" && body.dependencies?.redis === "healthy") return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`service dependencies not healthy after 15 s: ${last}`);
}

async function apiJson(service: ServiceProcess, route: string, token: string): Promise<any> {
  const response = await fetch(`${service.apiUrl}${route}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${route}: ${response.status} ${text}`);
  return JSON.parse(text);
}

function observationRequests(token: string): autocannon.Request[] {
  const eventTypes = ["api.call", "api.error", "payment.authorised", "sensor.reading", "shipment.scanned"];
  const sectors = ["finance", "generic", "finance", "manufacturing", "logistics"];
  return eventTypes.map((eventType, i) => ({
    method: "POST",
    path: "/api/v1/observations",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ event_type: eventType, value: 10 + i * 2.5, sector: sectors[i], metadata: { region: i % 2 ? "eu" : "us", source: "bench" } }),
  }));
}

/** Observations per batch request, and the batch targets of issue #15. */
const BATCH_SIZE = 500;
const BATCH_TARGET_P95_MS = 200;
const BATCH_TARGET_OBSERVATIONS_PER_SECOND = 20_000;
/** Single ingest with every guarantee: at least this share of the bare baseline's rate, and this many req/s. */
const INGEST_TARGET_BASELINE_SHARE = 0.5;
const INGEST_TARGET_RATE = 2_000;

/** Five distinct batch bodies of BATCH_SIZE observations (the single bodies' mix, values varying). */
function batchRequests(token: string): autocannon.Request[] {
  const eventTypes = ["api.call", "api.error", "payment.authorised", "sensor.reading", "shipment.scanned"];
  const sectors = ["finance", "generic", "finance", "manufacturing", "logistics"];
  return eventTypes.map((_, b) => ({
    method: "POST",
    path: "/api/v1/observations/batch",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      items: Array.from({ length: BATCH_SIZE }, (_, i) => ({
        event_type: eventTypes[(b + i) % 5],
        value: 10 + ((b * BATCH_SIZE + i) % 97) * 2.5,
        sector: sectors[(b + i) % 5],
        metadata: { region: i % 2 ? "eu" : "us", source: "bench" },
      })),
    }),
  }));
}

/**
 * Latency of one single-row INSERT + COMMIT on the same cluster (WAL flush included): the floor
 * under every request that writes (each API request commits its audit row before the handler).
 */
async function commitLatency(url: string, commits = 100): Promise<{ commits: number; p50_ms: number; p95_ms: number }> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
    const times: number[] = [];
    for (let i = 0; i < commits + 10; i++) {
      const start = process.hrtime.bigint();
      await client.query("INSERT INTO bench_commit_probe DEFAULT VALUES");
      if (i >= 10) times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    await client.query("DROP TABLE bench_commit_probe");
    times.sort((a, b) => a - b);
    return { commits, p50_ms: quantile(times, 0.5), p95_ms: quantile(times, 0.95) };
  } finally {
    await client.end();
  }
}

/**
 * The detection stream (see DETECT_RATE), inserted by SQL: observations from 11 windows ago
 * until `aheadSeconds` from now. Returns how many observations each window holds.
 */
async function seedDetectionStream(pg: TestPostgres, database: string, snapshotId: string, aheadSeconds: number): Promise<number> {
  const backSeconds = DETECT_WINDOW_SECONDS * (DETECT_HISTORY_WINDOWS + 1);
  const seconds = backSeconds + Math.ceil(aheadSeconds);
  await insertDetectionStream(pg.url(database), { snapshotId, backSeconds, seconds, count: Math.round(DETECT_RATE * seconds) });
  return DETECT_RATE * DETECT_WINDOW_SECONDS;
}

/** The issue's ingest targets from the measured endpoints: ratios against the baseline of the same run. */
function ingestSummary(results: readonly EndpointResult[]) {
  const rate = (name: string) => results.find((r) => r.name === name)?.sustainedRatePerSecond ?? null;
  const round = (x: number | null, digits = 0) => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits);
  const baseline = rate("baseline.ingest");
  const single = rate("observations.create");
  const batch = rate("observations.batch");
  const batchObservations = batch === null ? null : batch * BATCH_SIZE;
  const baselineRatio = single !== null && baseline ? single / baseline : null;
  return {
    baseline: { rate: round(baseline) },
    single: {
      rate: round(single),
      baseline_ratio: round(baselineRatio, 3),
      target_baseline_share: INGEST_TARGET_BASELINE_SHARE,
      target_rate: INGEST_TARGET_RATE,
      met: baselineRatio !== null && baselineRatio >= INGEST_TARGET_BASELINE_SHARE && single! >= INGEST_TARGET_RATE,
    },
    batch: {
      observations_per_request: BATCH_SIZE,
      requests_per_second: round(batch, 1),
      observations_per_second: round(batchObservations),
      target_observations_per_second: BATCH_TARGET_OBSERVATIONS_PER_SECOND,
      target_p95_ms: BATCH_TARGET_P95_MS,
      target_ratio: round(batchObservations === null ? null : batchObservations / BATCH_TARGET_OBSERVATIONS_PER_SECOND, 3),
      met: batchObservations !== null && batchObservations >= BATCH_TARGET_OBSERVATIONS_PER_SECOND,
    },
  };
}

async function main(): Promise<void> {
  const root = path.resolve(__dirname, "..");
  const startedAt = Date.now();
  let pg: TestPostgres | undefined;
  let redis: TestRedis | undefined;
  let oidc: BenchOidc | undefined;
  let service: ServiceProcess | undefined;
  try {
    process.stderr.write("starting PostgreSQL 15, Redis and a loopback OIDC issuer\n");
    [pg, redis, oidc] = await Promise.all([startPostgres({ settings: { synchronous_commit: "on" } }), startRedis(), startBenchOidc()]);
    const database = "knhk_bench_api";
    await prepareServiceDatabase(pg, database);
    const serviceEnv: Record<string, string> = {
      ...oidc.env(),
      REDIS_URL: redis.url,
      KNHK_RATE_LIMIT_MAX: "1000000",
      KNHK_RATE_LIMIT_WINDOW_SECONDS: "60",
      KNHK_MAPE_K_INTERVAL_SECONDS: "0",
      KNHK_LOG_LEVEL: "info",
    };
    service = await startServiceProcess({ pg, database, env: serviceEnv });
    await waitForRedis(service.apiUrl);
    process.stderr.write(`service pid ${service.pid} at ${service.apiUrl}\n`);
    const commit = await commitLatency(pg.url("postgres"));
    process.stderr.write(`reference: one INSERT + COMMIT p50 ${commit.p50_ms.toFixed(2)} ms, p95 ${commit.p95_ms.toFixed(2)} ms\n`);

    const [ingestor, observer, analyst] = await Promise.all([oidc.roleToken("ingestor"), oidc.roleToken("observer"), oidc.roleToken("analyst")]);
    const snapshot = await apiJson(service, "/api/v1/snapshots/current", observer);
    if (typeof snapshot.id !== "string") throw new Error(`GET /api/v1/snapshots/current returned no id: ${JSON.stringify(snapshot)}`);

    const pgCounters = async (): Promise<PgCounters> => {
      const [commits, walSyncs] = (await pg!.psql(`SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = '${database}') || ',' || (SELECT wal_sync FROM pg_stat_wal)`)).trim().split(",").map(Number);
      return { commits, walSyncs };
    };
    // Detection runs first, on the seeded stream alone: the observations posted by the
    // observations ladder below would otherwise swell its window by however fast that ladder ran.
    const endpointSeconds = WARMUP_SECONDS + STEP_SECONDS * (1 + MAX_STEPS + CONFIRMATION_ATTEMPTS);
    const perWindow = await seedDetectionStream(pg, database, snapshot.id, endpointSeconds + 30);
    const detectBody = JSON.stringify({ window_seconds: DETECT_WINDOW_SECONDS });
    const detect: EndpointResult = {
      ...(await benchEndpoint(
        {
          name: "patterns.detect",
          method: "POST",
          route: "/api/v1/patterns/detect",
          requests: [{ method: "POST", path: "/api/v1/patterns/detect", headers: { authorization: `Bearer ${analyst}`, "content-type": "application/json" }, body: detectBody }],
          expectedStatus: 200,
          role: "analyst",
        },
        service,
        pgCounters,
      )),
      context: {
        window_seconds: DETECT_WINDOW_SECONDS,
        observations_per_second: DETECT_RATE,
        observations_in_window: perWindow,
        history_windows: DETECT_HISTORY_WINDOWS,
        target_rate_per_second: DETECT_TARGET_RATE_PER_SECOND,
        observations_in_horizon: perWindow * (DETECT_HISTORY_WINDOWS + 1),
      },
    };
    const results: EndpointResult[] = [];
    // The bare durable ingest server on the same database, same bodies, same ladder (no auth: the header is ignored).
    const baseline = await startBaselineProcess(pg.url(database, "knhk_app"), snapshot.id);
    try {
      results.push({
        ...(await benchEndpoint(
          { name: "baseline.ingest", method: "POST", route: "/api/v1/observations", requests: observationRequests("none"), expectedStatus: 201, role: "none (baseline)" },
          baseline,
          pgCounters,
        )),
        context: { baseline: "Fastify + pg, one INSERT per request, synchronous_commit on, pool of 50; no auth, audit, hot path or receipt (bench/lib/baseline-ingest.ts)" },
      });
    } finally {
      await baseline.stop();
    }
    results.push(
      await benchEndpoint(
        { name: "observations.create", method: "POST", route: "/api/v1/observations", requests: observationRequests(ingestor), expectedStatus: 201, role: "ingestor" },
        service,
        pgCounters,
      ),
    );
    results.push({
      ...(await benchEndpoint(
        {
          name: "observations.batch",
          method: "POST",
          route: "/api/v1/observations/batch",
          requests: batchRequests(ingestor),
          expectedStatus: 201,
          role: "ingestor",
          targetP95Ms: BATCH_TARGET_P95_MS,
          itemsPerRequest: BATCH_SIZE,
        },
        service,
        pgCounters,
      )),
      context: { observations_per_request: BATCH_SIZE },
    });
    results.push({
      ...(await benchEndpoint(
        {
          name: "snapshots.get",
          method: "GET",
          route: "/api/v1/snapshots/:id",
          requests: [{ method: "GET", path: `/api/v1/snapshots/${snapshot.id}`, headers: { authorization: `Bearer ${observer}` } }],
          expectedStatus: 200,
          role: "observer",
        },
        service,
        pgCounters,
      )),
      context: { snapshot_id: snapshot.id },
    });
    results.push(detect);

    const rows = results.flatMap((r) => [
      ...r.steps.map((s) => stepRow(r.name, s, s === r.best ? "best" : "")),
      ...(r.confirmation ? [stepRow(r.name, r.confirmation, r.confirmation.sustained ? "confirm" : `confirm failed: ${r.confirmation.why}`)] : []),
    ]);
    printTable(rows, undefined, "API steps (closed-loop connections; latency of 2xx responses)");
    const serviceResults = results.filter((r) => r.name !== "baseline.ingest");
    const rssMax = Math.max(...serviceResults.map((r) => r.rssMaxBytes));
    printTable(
      results.map((r) => {
        const at = r.confirmation ?? r.best ?? r.steps[0];
        return {
          endpoint: `${r.method} ${r.route}`,
          "sustained req/s": r.sustainedRatePerSecond === null ? null : Math.round(r.sustainedRatePerSecond),
          conns: at?.connections,
          p50_ms: at?.latencyMs?.p50,
          p95_ms: at?.latencyMs?.p95,
          p99_ms: at?.latencyMs?.p99,
          target_p95_ms: r.targetP95Ms,
          ratio: at?.latencyMs ? at.latencyMs.p95 / r.targetP95Ms : null,
          rss_MiB: Math.round(r.rssMaxBytes / MiB),
          met: r.met,
        };
      }),
      undefined,
      `API: highest sustained rate with p95 under each endpoint's target (figures of the confirmation run)`,
    );
    const ingest = ingestSummary(results);
    printTable(
      [
        { figure: "POST /api/v1/observations, every guarantee", measured: ingest.single.rate, reference: `baseline ${ingest.baseline.rate ?? "-"} req/s`, ratio: ingest.single.baseline_ratio, target: `>= ${INGEST_TARGET_BASELINE_SHARE} of baseline and >= ${INGEST_TARGET_RATE} req/s`, met: ingest.single.met },
        { figure: `POST /api/v1/observations/batch (${BATCH_SIZE} per request), observations/s`, measured: ingest.batch.observations_per_second, reference: `single ingest ${ingest.single.rate ?? "-"} obs/s`, ratio: ingest.batch.target_ratio, target: `>= ${BATCH_TARGET_OBSERVATIONS_PER_SECOND}/s at p95 < ${BATCH_TARGET_P95_MS} ms`, met: ingest.batch.met },
      ],
      undefined,
      "Ingest against the bare baseline measured in the same run",
    );
    printTable(
      [{ rss_max_MiB: Math.round(rssMax / MiB), request_MiB: MEMORY_REQUEST_BYTES / MiB, ratio: rssMax / MEMORY_REQUEST_BYTES, met: rssMax < MEMORY_REQUEST_BYTES }],
      undefined,
      "Service resident memory under load vs its request",
    );
    printTable(
      results.map((r) => ({ endpoint: `${r.method} ${r.route}`, ...r.serverSideMeanMs, commits_per_req: r.perRequest?.commits, wal_syncs_per_req: r.perRequest?.wal_syncs })),
      undefined,
      `Server-side mean ms (request and warm-path stages); reference: one INSERT + COMMIT p50 ${commit.p50_ms.toFixed(2)} ms, p95 ${commit.p95_ms.toFixed(2)} ms`,
    );
    const file = writeResult("api", {
      target_p95_ms: TARGET_P95_MS,
      memory_request_bytes: MEMORY_REQUEST_BYTES,
      method: {
        load: `one connection paced at ${PACED_RATE} req/s, then an autocannon 8 closed-loop connection ladder; latency of every success response recorded`,
        paced_rate_per_second: PACED_RATE,
        ladder: LADDER,
        step_seconds: STEP_SECONDS,
        warmup_seconds: WARMUP_SECONDS,
        max_steps_per_endpoint: MAX_STEPS,
        sustained: "all responses 2xx, no errors or timeouts, p95 < target, in the best step and in its confirmation re-run",
      },
      service: {
        process: "node --import tsx app/src/main.ts",
        postgres: "15, loopback, synchronous_commit on, fsync on",
        redis: "loopback, no persistence",
        auth: "RS256 bearer tokens from a loopback OIDC issuer (Okta layout)",
        settings: { KNHK_RATE_LIMIT_MAX: serviceEnv.KNHK_RATE_LIMIT_MAX, KNHK_MAPE_K_INTERVAL_SECONDS: serviceEnv.KNHK_MAPE_K_INTERVAL_SECONDS, KNHK_LOG_LEVEL: `${serviceEnv.KNHK_LOG_LEVEL} (request log to /dev/null)` },
        pool: "defaults (DB_POOL_MIN_CONNECTIONS 10, DB_POOL_MAX_CONNECTIONS 50)",
      },
      reference: { single_row_commit: commit },
      endpoints: results,
      ingest,
      memory: { rss_max_bytes: rssMax, ratio: rssMax / MEMORY_REQUEST_BYTES, met: rssMax < MEMORY_REQUEST_BYTES },
      met: serviceResults.every((r) => r.met) && ingest.single.met && ingest.batch.met && rssMax < MEMORY_REQUEST_BYTES,
      wall_seconds: Math.round((Date.now() - startedAt) / 1000),
      load_average_at_end: loadavg().map((l) => Math.round(l * 10) / 10),
    });
    console.log(`written ${path.relative(root, file)} in ${Math.round((Date.now() - startedAt) / 1000)} s`);
  } catch (error) {
    if (service) process.stderr.write(`service stderr (last lines):\n${service.stderrTail.join("\n")}\n`);
    throw error;
  } finally {
    await service?.stop().catch(() => undefined);
    await oidc?.close().catch(() => undefined);
    await redis?.destroy().catch(() => undefined);
    await pg?.destroy().catch(() => undefined);
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.stack ?? error.message : error);
  process.exit(1);
});
