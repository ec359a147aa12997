/**
 * The telemetry contract on the real service: /metrics on the metrics port serves exactly the
 * registry's metrics plus the declared defaults (both directions), with route templates as
 * labels, pool gauges from the real pool and closed label sets enforced. (OpenTelemetry export is
 * tested on the spawned service in health-embedded.test.ts: the OTLP exporter loads its transport
 * with a dynamic import that jest's CommonJS runtime cannot run.)
 */
import { loadRegistry } from "../../registry";
import { ServiceMetrics } from "../../app/src/telemetry/metrics";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
  svc = await startTestService(pg, oidc.env());
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
});

const scrape = async () => (await fetch(`${svc.service.metricsUrl}/metrics`)).text();
const typeNames = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));

describe("the served metrics equal the registry", () => {
  test("every exported metric is declared, and every declared metric is exported", async () => {
    const registry = loadRegistry();
    const declared = new Set([...registry.service.map((m) => m.name), ...registry.defaults]);
    const served = typeNames(await scrape());
    expect([...served].filter((n) => !declared.has(n))).toEqual([]);
    expect([...declared].filter((n) => !served.has(n))).toEqual([]);
  });

  test("types, help and label names are the registry's", async () => {
    const text = await scrape();
    for (const metric of loadRegistry().service) {
      expect(text).toContain(`# TYPE ${metric.name} ${metric.type}\n`);
      expect(text).toContain(`# HELP ${metric.name} ${metric.help}\n`);
      const sample = text.split("\n").find((l) => l.startsWith(`${metric.name}{`) || l.startsWith(`${metric.name}_bucket{`));
      if (sample) {
        const labels = [...sample.matchAll(/([a-z_]+)="/g)].map((m) => m[1]).filter((l) => l !== "le");
        expect(labels.sort()).toEqual(Object.keys(metric.labels).sort());
      }
    }
  });

  test("/metrics is served on the metrics port only", async () => {
    expect((await fetch(`${svc.service.apiUrl}/metrics`)).status).toBe(404);
  });
});

describe("what the service records", () => {
  test("requests are counted by route template, never by raw id", async () => {
    const admin = await oidc.roleToken("administrator");
    const created = await svc.api("/api/v1/observations", { method: "POST", token: admin, json: { event_type: "tele.one", value: 3, sector: "generic" } });
    expect(created.status).toBe(201);
    await svc.api(`/api/v1/observations/${created.body.id}`, { token: admin });
    await svc.api("/api/v1/observations", { token: "garbage" });
    const text = await scrape();
    expect(text).toMatch(/^knhk_http_requests_total\{method="GET",route="\/api\/v1\/observations\/:id",status_class="2xx"\} [1-9]/m);
    expect(text).toMatch(/^knhk_http_requests_total\{method="POST",route="\/api\/v1\/observations",status_class="2xx"\} [1-9]/m);
    expect(text).not.toContain(created.body.id);
    expect(text).toMatch(/^knhk_auth_decisions_total\{decision="allow"\} [1-9]/m);
    expect(text).toMatch(/^knhk_auth_decisions_total\{decision="deny_unauthenticated"\} [1-9]/m);
    expect(text).toMatch(/^knhk_hot_path_ticks_count\{operation="OBSERVATION_APPEND"\} [1-9]/m);
    expect(text).toMatch(/^knhk_receipts_appended_total [1-9]/m);
  });

  test("pool gauges come from the real pool", async () => {
    const text = await scrape();
    expect(text).toMatch(/^knhk_db_pool_max_connections 10$/m);
    const active = Number(/^knhk_db_pool_connections\{state="active"\} (\d+)/m.exec(text)![1]);
    const idle = Number(/^knhk_db_pool_connections\{state="idle"\} (\d+)/m.exec(text)![1]);
    expect(active + idle).toBeGreaterThanOrEqual(1);
    expect(active + idle).toBeLessThanOrEqual(10);
    expect(text).toMatch(/^knhk_dependency_up\{dependency="database"\} 1$/m);
  });

  test("label values outside a closed set become \"other\" and count as schema violations", async () => {
    const metrics = new ServiceMetrics(loadRegistry(), { defaultMetrics: false });
    metrics.inc("knhk_mape_k_cycles_total", { outcome: "exploded", trigger: "on_demand" });
    metrics.observe("knhk_hot_path_ticks", { operation: "DROP_TABLE" }, 3);
    metrics.inc("knhk_not_in_the_registry_total");
    metrics.inc("knhk_rate_limited_total", { unexpected: "label" });
    const text = (await metrics.exposition()).body;
    expect(text).toContain('knhk_mape_k_cycles_total{outcome="other",trigger="on_demand"} 1');
    expect(text).toContain('knhk_hot_path_ticks_count{operation="other"} 1');
    expect(text).not.toContain("exploded");
    expect(text).not.toContain("DROP_TABLE");
    expect(text).not.toContain("# TYPE knhk_not_in_the_registry_total");
    expect(text).toContain('knhk_telemetry_schema_violations_total{metric="knhk_mape_k_cycles_total"} 1');
    expect(text).toContain('knhk_telemetry_schema_violations_total{metric="knhk_hot_path_ticks"} 1');
    expect(text).toContain('knhk_telemetry_schema_violations_total{metric="knhk_not_in_the_registry_total"} 1');
    expect(text).toContain('knhk_telemetry_schema_violations_total{metric="knhk_rate_limited_total"} 1');
    expect(text).toContain("knhk_rate_limited_total 1");
  });

  test("values inside the closed sets are not violations", async () => {
    const metrics = new ServiceMetrics(loadRegistry(), { defaultMetrics: false });
    metrics.inc("knhk_mape_k_cycles_total", { outcome: "success", trigger: "scheduled" });
    const text = (await metrics.exposition()).body;
    expect(text).not.toMatch(/knhk_telemetry_schema_violations_total\{/);
  });
});
