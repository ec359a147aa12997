/**
 * The smoke test: a fixed sequence of checks against one KNHK endpoint (a colour's Service
 * before the switch, or the live Service). Stops at the first failure and names it.
 *
 *   health                  GET /health answers 200 with the health document
 *   dependencies            database and redis report healthy
 *   ready                   GET /ready answers 200
 *   observation-round-trip  POST an observation in sector smoke (ingestor token), read it back (reader token)
 *   pattern-detection       POST /api/v1/patterns/detect over sector smoke sees the observation
 *
 * Every write is in the sector `smoke` (app/src/domain/scope.ts): marked in the receipts, left out
 * of analytics, the ledger-wide pattern detection and the MAPE-K loop.
 *   metrics-contract        /metrics exports every registry metric with its type, nothing undeclared
 *   receipts-verify         POST /api/v1/receipts/verify over the last receipts: chain intact
 *   latency                 p95 of /health below the limit
 */
import { randomUUID } from "node:crypto";
import { exposedSeriesNames, loadRegistry, type TelemetryRegistry } from "../../registry";
import { SMOKE_SECTOR } from "../../app/src/domain/types";
import type { Clock } from "./deploy/ports";

export interface SmokeTarget {
  readonly apiUrl: string;
  readonly metricsUrl: string;
}

export interface SmokeOptions {
  /** Bearer token with the ingestor role (POST observations). */
  readonly ingestToken: string;
  /** Bearer token that may read observations, detect patterns and verify receipts (e.g. operator + analyst). */
  readonly token: string;
  /** Dependencies allowed to be `degraded` (never `down`). */
  readonly allowDegraded: readonly string[];
  /** How many latest receipts to verify. */
  readonly receiptLimit: number;
  readonly latencySamples: number;
  readonly maxP95Ms: number;
  readonly timeoutMs: number;
}

export const DEFAULT_SMOKE: Omit<SmokeOptions, "ingestToken" | "token"> = {
  allowDegraded: [],
  receiptLimit: 100,
  latencySamples: 20,
  maxP95Ms: 500,
  timeoutMs: 10_000,
};

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface SmokeResult {
  readonly ok: boolean;
  readonly checks: CheckResult[];
  readonly failedCheck?: string;
  readonly message?: string;
}

export const CHECK_NAMES = ["health", "dependencies", "ready", "observation-round-trip", "pattern-detection", "metrics-contract", "receipts-verify", "latency"] as const;

class CheckFailure extends Error {}

const fail = (message: string): never => {
  throw new CheckFailure(message);
};

interface Http {
  (method: string, url: string, options?: { token?: string; body?: unknown }): Promise<{ status: number; text: string; json: () => any }>;
}

function httpClient(timeoutMs: number): Http {
  return async (method, url, options = {}) => {
    const headers: Record<string, string> = { accept: "application/json" };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return fail(`${method} ${new URL(url).pathname} failed: ${cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    return {
      status: response.status,
      text,
      json: () => {
        try {
          return JSON.parse(text);
        } catch {
          return fail(`${method} ${new URL(url).pathname} answered ${response.status} with non-JSON: ${text.slice(0, 120)}`);
        }
      },
    };
  };
}

function expectStatus(what: string, r: { status: number; text: string }, expected: number): void {
  if (r.status !== expected) fail(`${what} answered ${r.status}, expected ${expected}: ${r.text.slice(0, 200)}`);
}

/** Problems of a /metrics text against the telemetry registry. */
export function metricsContractProblems(text: string, registry: TelemetryRegistry = loadRegistry()): string[] {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1], m[2]);
  const problems: string[] = [];
  const declared = new Set<string>();
  for (const metric of registry.service) {
    declared.add(metric.name);
    // prom-client writes counters as `# TYPE x_total counter`; some exporters drop `_total` in TYPE.
    const type = types.get(metric.name) ?? types.get(metric.name.replace(/_total$/, ""));
    if (type === undefined) problems.push(`${metric.name} is not exported`);
    else if (type !== metric.type) problems.push(`${metric.name} is exported as ${type}, the registry says ${metric.type}`);
    for (const series of exposedSeriesNames(metric)) declared.add(series);
  }
  for (const name of types.keys()) {
    if (name.startsWith("knhk_") && !declared.has(name) && !declared.has(`${name}_total`)) problems.push(`${name} is exported but not declared in registry/metrics.yaml`);
  }
  return problems;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function runSmokeTest(target: SmokeTarget, options: SmokeOptions, clock: Pick<Clock, "now"> = { now: () => new Date() }, log: (line: string) => void = () => undefined): Promise<SmokeResult> {
  const http = httpClient(options.timeoutMs);
  const api = (path: string) => new URL(path, target.apiUrl).toString();
  const runId = randomUUID();
  let observationId: string | undefined;

  const checks: Record<(typeof CHECK_NAMES)[number], () => Promise<string>> = {
    health: async () => {
      const r = await http("GET", api("/health"));
      expectStatus("GET /health", r, 200);
      const body = r.json();
      if (typeof body?.status !== "string" || typeof body?.dependencies !== "object") fail(`GET /health returned no status/dependencies: ${r.text.slice(0, 200)}`);
      return `status ${body.status}, up ${Math.round(body.uptime_seconds ?? 0)} s`;
    },
    dependencies: async () => {
      const body = (await http("GET", api("/health"))).json();
      const deps = body.dependencies as Record<string, string>;
      const bad = ["database", "redis"]
        .map((name) => [name, deps?.[name] ?? "missing"] as const)
        .filter(([name, state]) => state !== "healthy" && !(state === "degraded" && options.allowDegraded.includes(name)));
      if (bad.length > 0) fail(bad.map(([name, state]) => `${name} is ${state}`).join(", "));
      return Object.entries(deps).map(([k, v]) => `${k} ${v}`).join(", ");
    },
    ready: async () => {
      const r = await http("GET", api("/ready"));
      expectStatus("GET /ready", r, 200);
      return "ready";
    },
    "observation-round-trip": async () => {
      // Sector smoke: the write is marked in the ledger and left out of analytics and the MAPE-K loop.
      const body = { event_type: "smoke.test", value: { run: runId }, sector: SMOKE_SECTOR, metadata: { smoke_run: runId } };
      const created = await http("POST", api("/api/v1/observations"), { token: options.ingestToken, body });
      expectStatus("POST /api/v1/observations", created, 201);
      observationId = created.json().id;
      if (typeof observationId !== "string") fail(`POST /api/v1/observations returned no id: ${created.text.slice(0, 200)}`);
      const read = await http("GET", api(`/api/v1/observations/${encodeURIComponent(observationId!)}`), { token: options.token });
      expectStatus(`GET /api/v1/observations/${observationId}`, read, 200);
      const stored = read.json();
      if (stored.id !== observationId || JSON.stringify(stored.value) !== JSON.stringify(body.value)) {
        fail(`observation ${observationId} read back differs: ${read.text.slice(0, 200)}`);
      }
      return `observation ${observationId} stored and read back`;
    },
    "pattern-detection": async () => {
      // Detection over the smoke sector alone: its patterns and receipt carry the sector too.
      const r = await http("POST", api("/api/v1/patterns/detect"), { token: options.token, body: { window_seconds: 300, sector: SMOKE_SECTOR } });
      expectStatus("POST /api/v1/patterns/detect", r, 200);
      const result = r.json();
      if (!Array.isArray(result.patterns)) fail(`pattern detection returned no patterns array: ${r.text.slice(0, 200)}`);
      if (!(result.observations_in_window >= 1)) fail(`pattern detection saw ${result.observations_in_window} observations in its window; the smoke observation is missing`);
      return `${result.patterns.length} pattern(s) over ${result.observations_in_window} observation(s)`;
    },
    "metrics-contract": async () => {
      const r = await http("GET", new URL("/metrics", target.metricsUrl).toString());
      expectStatus("GET /metrics", r, 200);
      const problems = metricsContractProblems(r.text);
      if (problems.length > 0) fail(problems.slice(0, 5).join("; ") + (problems.length > 5 ? ` (+${problems.length - 5} more)` : ""));
      return "every registry metric exported with its type";
    },
    "receipts-verify": async () => {
      const r = await http("POST", api("/api/v1/receipts/verify"), { token: options.token, body: { limit: options.receiptLimit } });
      expectStatus("POST /api/v1/receipts/verify", r, 200);
      const report = r.json();
      const broken = ["chain_breaks", "signature_failures", "retrocausation_violations"].filter((k) => !Array.isArray(report[k]) || report[k].length > 0);
      if (report.ok !== true || broken.length > 0) fail(`receipt chain not intact: ${broken.map((k) => `${k} ${JSON.stringify(report[k])}`).join(", ") || r.text.slice(0, 200)}`);
      return `${report.verified_count}/${report.total_count} receipts verified`;
    },
    latency: async () => {
      const samples: number[] = [];
      for (let i = 0; i < options.latencySamples; i++) {
        const start = clock.now().getTime();
        const r = await http("GET", api("/health"));
        expectStatus("GET /health", r, 200);
        samples.push(clock.now().getTime() - start);
      }
      const p95 = percentile(samples, 95);
      if (p95 > options.maxP95Ms) fail(`p95 of GET /health is ${p95} ms, limit ${options.maxP95Ms} ms`);
      return `p95 ${p95} ms over ${samples.length} requests`;
    },
  };

  const results: CheckResult[] = [];
  for (const name of CHECK_NAMES) {
    try {
      const detail = await checks[name]();
      results.push({ name, ok: true, detail });
      log(`ok   ${name}: ${detail}`);
    } catch (error) {
      if (!(error instanceof CheckFailure)) throw error;
      results.push({ name, ok: false, detail: error.message });
      log(`FAIL ${name}: ${error.message}`);
      return { ok: false, checks: results, failedCheck: name, message: error.message };
    }
  }
  return { ok: true, checks: results };
}
