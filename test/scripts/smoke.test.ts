/**
 * `npm run smoke-test` against the real service (`npm run service` as its own process) on
 * loopback, with real PostgreSQL 15 and Redis and a local OIDC issuer: every check passes;
 * with the database stopped it fails and names the check.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { freePort, waitFor } from "../support/ports";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startRedis, type TestRedis } from "../support/redis";
import { startOidc, type TestOidc } from "../app/shell/oidc";
import { metricsContractProblems, percentile } from "../../scripts/lib/smoke";
import { loadRegistry } from "../../registry";

const REPO = join(__dirname, "..", "..");

let pg: TestPostgres;
let redis: TestRedis;
let oidc: TestOidc;
let service: TrackedProcess | undefined;
let apiUrl: string;
let metricsUrl: string;
let tokens: { KNHK_SMOKE_TOKEN: string; KNHK_SMOKE_INGEST_TOKEN: string };
const serviceLog: string[] = [];

beforeAll(async () => {
  [pg, redis, oidc] = await Promise.all([startPostgres(), startRedis(), startOidc()]);
  await pg.createDatabase("knhk_smoke");
  const [port, metricsPort] = [await freePort(), await freePort()];
  apiUrl = `http://127.0.0.1:${port}`;
  metricsUrl = `http://127.0.0.1:${metricsPort}`;
  // `npx` runs the service in a child of its own: only stopping the whole group ends it.
  service = spawnTracked("npx", ["tsx", "app/src/main.ts"], {
    cwd: REPO,
    env: {
      ...process.env,
      ...oidc.env(),
      DATABASE_URL: pg.url("knhk_smoke"),
      REDIS_URL: redis.url,
      KNHK_HOST: "127.0.0.1",
      KNHK_PORT: String(port),
      KNHK_METRICS_PORT: String(metricsPort),
      KNHK_MAPE_K_INTERVAL_SECONDS: "0",
      DB_POOL_MIN_CONNECTIONS: "0",
      DB_POOL_MAX_CONNECTIONS: "5",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  service.child.stdout!.on("data", (d) => serviceLog.push(String(d)));
  service.child.stderr!.on("data", (d) => serviceLog.push(String(d)));
  await waitFor("the service's /health", async () => (await fetch(`${apiUrl}/health`)).ok, 120_000, 250).catch((error) => {
    throw new Error(`${(error as Error).message}\nservice log:\n${serviceLog.join("").slice(-3000)}`);
  });
  tokens = {
    KNHK_SMOKE_TOKEN: await oidc.token("okta", { claims: { sub: "smoke-test", groups: ["knhk-analysts", "knhk-operators"] } }),
    KNHK_SMOKE_INGEST_TOKEN: await oidc.roleToken("ingestor", "smoke-ingest"),
  };
}, 240_000);

afterAll(async () => {
  await service?.stop("SIGTERM");
  await oidc?.close();
  await redis?.stop();
  await pg?.destroy();
});

/**
 * Runs the CLI asynchronously: the OIDC issuer's JWKS endpoint lives in this process and must
 * keep answering while the smoke test runs.
 */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("npx", ["tsx", "scripts/smoke-test.ts", ...args], { cwd: REPO, env, encoding: "utf8", timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const smoke = (...extra: string[]) => cli(["--url", apiUrl, "--metrics-url", metricsUrl, "--latency-samples", "5", ...extra], { ...process.env, ...tokens });

describe("smoke test against the running service", () => {
  test("every check passes", async () => {
    const r = await smoke();
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: expect.stringContaining("smoke test passed (8 checks)") });
    for (const check of ["health", "dependencies", "ready", "observation-round-trip", "pattern-detection", "metrics-contract", "receipts-verify", "latency"]) {
      expect(r.stdout).toMatch(new RegExp(`^ok   ${check}: `, "m"));
    }
  }, 150_000);

  test("missing tokens are a usage error naming the variable", async () => {
    const r = await cli(["--url", apiUrl, "--metrics-url", metricsUrl], { ...process.env, KNHK_SMOKE_TOKEN: "", KNHK_SMOKE_INGEST_TOKEN: "" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("KNHK_SMOKE_TOKEN is not set");
  }, 60_000);

  test("with the database stopped it fails and names the check", async () => {
    await pg.stop();
    try {
      const r = await smoke();
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/^ok   health: /m);
      expect(r.stdout).toMatch(/smoke test FAILED at check "dependencies": database is (down|degraded)/);
    } finally {
      await pg.start();
    }
  }, 150_000);
});

describe("smoke helpers", () => {
  test("the metrics contract flags missing, mistyped and undeclared metrics", () => {
    const registry = loadRegistry();
    const [first, second] = registry.service;
    const full = registry.service.map((m) => `# TYPE ${m.name} ${m.type}`).join("\n");
    expect(metricsContractProblems(full)).toEqual([]);
    const broken = full
      .replace(`# TYPE ${first.name} ${first.type}\n`, "")
      .replace(`# TYPE ${second.name} ${second.type}`, `# TYPE ${second.name} summary`)
      .concat("\n# TYPE knhk_surprise_total counter");
    expect(metricsContractProblems(broken)).toEqual([
      `${first.name} is not exported`,
      `${second.name} is exported as summary, the registry says ${second.type}`,
      "knhk_surprise_total is exported but not declared in registry/metrics.yaml",
    ]);
  });

  test("percentile picks the nearest rank", () => {
    expect(percentile([5, 1, 3, 2, 4], 95)).toBe(5);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 95)).toBe(95);
  });
});
