/**
 * performance/load-test.yml with Artillery against the service on loopback (its own process,
 * knhk_app login, PostgreSQL 15, Redis, a local OIDC issuer): the CI environment's short run
 * passes the guide's thresholds; the same run through a proxy that delays every response by
 * 150 ms fails, and Artillery names the broken threshold and exits 1.
 */
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROLE_GROUPS } from "../../app/src/auth/roles";
import { startOidc, type TestOidc } from "../app/shell/oidc";
import { startKnhkService, type KnhkService } from "../support/knhk-service";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { spawnTracked } from "../support/processes";
import { startRedis, type TestRedis } from "../support/redis";

const REPO = join(__dirname, "..", "..");
const ARTILLERY = join(REPO, "performance", "node_modules", ".bin", "artillery");
const SCRIPT = join(REPO, "performance", "load-test.yml");
const INJECTED_DELAY_MS = 150;
/** Smoke observations seeded before the run: above the default high-frequency threshold of 100 per window. */
const SEEDED_SMOKE = 150;
/** Every named request of performance/load-test.yml, with the status it expects. */
const STEPS: Record<string, number> = {
  ingest: 201,
  "read-observation": 200,
  "ingest-batch": 201,
  "observation-proof": 200,
  "list-observations": 200,
  "list-snapshots": 200,
  "list-receipts": 200,
  detect: 200,
  "generate-proposal": 201,
  "validate-proposal": 200,
};

let pg: TestPostgres;
let redis: TestRedis;
let oidc: TestOidc;
let service: KnhkService;
let tokens: { KNHK_LOAD_TOKEN: string; KNHK_LOAD_INGEST_TOKEN: string };

beforeAll(async () => {
  [pg, redis, oidc] = await Promise.all([startPostgres(), startRedis(), startOidc()]);
  service = await startKnhkService({ pg, database: "knhk_load", env: { ...oidc.env(), REDIS_URL: redis.url, KNHK_MAPE_K_INTERVAL_SECONDS: "0" } });
  const groups = (["analyst", "proposer", "validator"] as const).map((role) => ROLE_GROUPS[role][0]);
  tokens = {
    KNHK_LOAD_TOKEN: await oidc.token("okta", { claims: { sub: "load-test", groups }, expiresIn: 3600 }),
    KNHK_LOAD_INGEST_TOKEN: await oidc.token("okta", { claims: { sub: "load-test-ingest", groups: [ROLE_GROUPS.ingestor[0]] }, expiresIn: 3600 }),
  };
  // A smoke stream above the high-frequency threshold (one batch), so the run's detections find
  // a smoke pattern and its proposal and validation steps run too, as they would on staging.
  const seeded = await fetch(`${service.apiUrl}/api/v1/observations/batch`, {
    method: "POST",
    headers: { authorization: `Bearer ${tokens.KNHK_LOAD_INGEST_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ items: Array.from({ length: SEEDED_SMOKE }, (_, i) => ({ event_type: "load.seed", value: i, sector: "smoke" })) }),
  });
  if (seeded.status !== 201) throw new Error(`seeding the smoke stream: ${seeded.status} ${await seeded.text()}`);
}, 240_000);

afterAll(async () => {
  await service?.stop();
  await Promise.all([pg?.destroy(), redis?.stop(), oidc?.close()]);
});

/** `artillery run --environment ci` against `target`; its exit code and everything it printed. */
async function artillery(target: string): Promise<{ code: number | null; output: string; report: any }> {
  const reportPath = join(mkdtempSync(join(tmpdir(), "knhk-artillery-")), "report.json");
  const proc = spawnTracked(ARTILLERY, ["run", "--environment", "ci", "--output", reportPath, SCRIPT], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ARTILLERY_DISABLE_TELEMETRY: "true", KNHK_LOAD_TARGET: target, ...tokens },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  proc.child.stdout!.on("data", (d) => output.push(String(d)));
  proc.child.stderr!.on("data", (d) => output.push(String(d)));
  const { code } = await proc.exited;
  return { code, output: output.join(""), report: JSON.parse(readFileSync(reportPath, "utf8")) };
}

/** A loopback HTTP proxy to the service that holds every request `delayMs` before forwarding it. */
async function delayingProxy(upstream: string, delayMs: number): Promise<Server> {
  const to = new URL(upstream);
  const server = createServer((req, res) => {
    setTimeout(() => {
      const forward = httpRequest({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on("error", () => res.destroy());
      req.pipe(forward);
    }, delayMs);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

test("the CI run passes the guide's thresholds against the local service", async () => {
  const run = await artillery(service.apiUrl);
  if (run.code !== 0) throw new Error(`artillery exited ${run.code}:\n${run.output.slice(-4000)}\n${service.log()}`);
  expect(run.output).toContain("ok: http.response_time.p95 < 100");
  expect(run.output).toContain("ok: maxErrorRate < 0.1");
  const counters = run.report.aggregate.counters;
  // Every step of every flow ran and got its status, proposal generation and validation included.
  const ran = Object.fromEntries(Object.entries(STEPS).map(([name, status]) => [name, (counters[`plugins.metrics-by-endpoint.${name}.codes.${status}`] ?? 0) > 0]));
  expect(ran).toEqual(Object.fromEntries(Object.keys(STEPS).map((name) => [name, true])));
  expect(counters["vusers.failed"] ?? 0).toBe(0);
}, 120_000);

test("an injected delay breaks the p95 threshold: artillery names it and exits 1", async () => {
  const proxy = await delayingProxy(service.apiUrl, INJECTED_DELAY_MS);
  try {
    const run = await artillery(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
    expect(run.code).toBe(1);
    expect(run.output).toContain("fail: http.response_time.p95 < 100");
    expect(run.output).toContain("ok: maxErrorRate < 0.1");
  } finally {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
  }
}, 120_000);
