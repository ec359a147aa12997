/**
 * A real Prometheus (Debian package) on loopback loads the rendered rules and scrapes the real
 * KNHK service (`app/src/main.ts` on embedded PGlite, no Redis); through its HTTP API every rule
 * evaluates without error and every dashboard query parses and runs.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { dashboardQueries, DASHBOARDS } from "../../dashboards";
import { freePort, waitFor } from "../support/ports";
import { spawnTracked } from "../support/processes";
import { startPrometheus, type RunningServer } from "./servers";
import { tempDir, testRuleGroups, writeRuleFile, writeYaml, removeTempDirs } from "./tools";

afterAll(removeTempDirs);

jest.setTimeout(180_000);

const REPO = join(__dirname, "..", "..");

interface RunningService {
  readonly metricsUrl: string;
  readonly apiUrl: string;
  stop(): Promise<void>;
}

/** `npm run service` in-process equivalent: node --import tsx app/src/main.ts. */
async function startService(): Promise<RunningService> {
  const dataDir = tempDir("service-data");
  const [apiPort, metricsPort] = [await freePort(), await freePort()];
  let log = "";
  const child = spawnTracked(process.execPath, ["--import", "tsx", "app/src/main.ts"], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KNHK_HOST: "127.0.0.1",
      KNHK_PORT: String(apiPort),
      KNHK_METRICS_PORT: String(metricsPort),
      KNHK_EMBEDDED_DATA_DIR: dataDir,
      KNHK_MAPE_K_INTERVAL_SECONDS: "1",
      KNHK_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  child.child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const stop = async () => {
    // The whole group, SIGKILL after the grace period, awaited.
    await child.stop("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  };
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  try {
    await waitFor("the KNHK service's /metrics", async () => {
      if (child.hasExited()) throw new Error(`service exited:\n${log}`);
      return (await fetch(`${metricsUrl}/metrics`)).ok;
    }, 120_000, 500);
  } catch (error) {
    await stop();
    throw error;
  }
  return { metricsUrl, apiUrl: `http://127.0.0.1:${apiPort}`, stop };
}

interface PromResponse<T> {
  status: string;
  error?: string;
  data: T;
}
interface RuleStatus {
  name: string;
  health: string;
  lastError?: string;
  lastEvaluation: string;
  type: string;
}

describe("a real Prometheus with the rendered rules, scraping the real service", () => {
  let service: RunningService;
  let prometheus: RunningServer;
  const api = async <T>(path: string): Promise<PromResponse<T>> => (await (await fetch(`${prometheus.url}${path}`)).json()) as PromResponse<T>;
  const rules = async () =>
    (await api<{ groups: { name: string; rules: RuleStatus[] }[] }>("/api/v1/rules")).data.groups.flatMap((g) => g.rules.map((r) => ({ group: g.name, ...r })));

  beforeAll(async () => {
    service = await startService();
    // traffic for the request metrics: health checks and unauthenticated API calls (401)
    for (let i = 0; i < 5; i++) {
      await fetch(`${service.apiUrl}/health`);
      await fetch(`${service.apiUrl}/api/v1/observations`);
    }
    const dir = tempDir("prometheus-config");
    const rulesPath = writeRuleFile(dir);
    const config = writeYaml(join(dir, "prometheus.yml"), {
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [rulesPath],
      scrape_configs: [{ job_name: "knhk-service", static_configs: [{ targets: [service.metricsUrl.replace("http://", "")] }] }],
    });
    prometheus = await startPrometheus(config);
    await waitFor("the service scraped", async () => {
      const r = await api<{ result: unknown[] }>(`/api/v1/query?query=${encodeURIComponent('up{job="knhk-service"} == 1')}`);
      return r.data.result.length === 1;
    }, 30_000);
    // several scrapes, so rates over a window have two samples
    await waitFor("every rule evaluated", async () => (await rules()).every((r) => r.health !== "unknown" && !r.lastEvaluation.startsWith("0001")), 30_000);
    await new Promise((r) => setTimeout(r, 3000));
  });

  afterAll(async () => {
    await prometheus?.stop();
    await service?.stop();
  });

  test("loads every rendered rule", async () => {
    const loaded = (await rules()).map((r) => r.name).sort();
    const rendered = testRuleGroups().flatMap((g) => g.rules.map((r) => ("alert" in r ? r.alert : r.record))).sort();
    expect(loaded).toEqual(rendered);
  });

  test("every rule evaluates without error (health ok, no lastError)", async () => {
    const bad = (await rules()).filter((r) => r.health !== "ok" || (r.lastError ?? "") !== "");
    expect(bad).toEqual([]);
  });

  const queries = DASHBOARDS.flatMap((d) => dashboardQueries(d.build()).map((q) => ({ dashboard: d.uid, ...q })));

  test.each(queries.map((q, i) => [`#${i + 1} ${q.dashboard} / ${q.panel}`, q.expr] as const))("dashboard query %s parses and runs", async (_where, expr) => {
    // Grafana replaces $__rate_interval with max(4 x scrape interval, step + scrape interval).
    const promql = expr.replace(/\$__rate_interval/g, "1m");
    expect(promql).not.toMatch(/\$/);
    const r = await api<{ resultType: string; result: unknown[] }>(`/api/v1/query?query=${encodeURIComponent(promql)}`);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe("success");
    expect(Array.isArray(r.data.result)).toBe(true);
  });

  test("a query Prometheus cannot parse is reported as an error (the check is real)", async () => {
    const r = await api<unknown>(`/api/v1/query?query=${encodeURIComponent("sum(rate(knhk_http_requests_total[1m])")}`);
    expect(r.status).toBe("error");
    expect(r.error).toMatch(/parse error/);
  });

  test.each([
    ["knhk-overview", "Request rate"],
    ["knhk-overview", "Error rate %"],
    ["knhk-overview", "Database connection pool"],
    ["knhk-overview", "Instances up"],
    ["knhk-overview", "Receipt chain integrity"],
    ["knhk-overview", "CPU"],
    ["knhk-overview", "Memory"],
    ["knhk-mape-k", "Loop leader"],
  ])("%s panel %s shows data from the running service", async (uid, panel) => {
    const exprs = queries.filter((q) => q.dashboard === uid && q.panel === panel).map((q) => q.expr.replace(/\$__rate_interval/g, "1m"));
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) {
      const r = await api<{ result: unknown[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      expect({ expr, series: r.data.result.length }).toEqual({ expr, series: expect.any(Number) });
      expect(r.data.result.length).toBeGreaterThan(0);
    }
  });
});
