/**
 * Smoke writes are marked and kept out of the ledger's analysis: against the service as its own
 * process (knhk_app login) on a real PostgreSQL 15 and Redis, a smoke run (scripts/lib/smoke.ts)
 * passes, every receipt it caused carries the sector `smoke`, and analytics, the ledger-wide
 * pattern detection and the MAPE-K loop's Monitor report exactly what they reported before it.
 */
import { runSmokeTest, DEFAULT_SMOKE } from "../../scripts/lib/smoke";
import { SMOKE_SECTOR } from "../../app/src/domain/types";
import { startOidc, type TestOidc } from "../app/shell/oidc";
import { startKnhkService, type KnhkService } from "../support/knhk-service";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startRedis, type TestRedis } from "../support/redis";

let pg: TestPostgres;
let redis: TestRedis;
let oidc: TestOidc;
let service: KnhkService;
let ingestToken: string;
let token: string;

beforeAll(async () => {
  [pg, redis, oidc] = await Promise.all([startPostgres(), startRedis(), startOidc()]);
  service = await startKnhkService({ pg, database: "knhk_smoke_ledger", env: { ...oidc.env(), REDIS_URL: redis.url, KNHK_MAPE_K_INTERVAL_SECONDS: "0" } });
  ingestToken = await oidc.roleToken("ingestor", "smoke-ingest");
  token = await oidc.token("okta", { claims: { sub: "smoke-test", groups: ["knhk-analysts", "knhk-operators"] } });
}, 240_000);

afterAll(async () => {
  await service?.stop();
  await Promise.all([pg?.destroy(), redis?.stop(), oidc?.close()]);
});

async function api(method: string, path: string, bearer: string, body?: unknown): Promise<any> {
  const r = await fetch(new URL(path, service.apiUrl), {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path} answered ${r.status}: ${text}\n${service.log()}`);
  return JSON.parse(text);
}

/** What the ledger's analysis sees, without the window bounds (they move with the clock). */
async function analysis() {
  const { window_start: _s, window_end: _e, ...analytics } = await api("POST", "/api/v1/analytics/run", token, { window_seconds: 3600 });
  const detection = await api("POST", "/api/v1/patterns/detect", token, { window_seconds: 3600 });
  const cycle = await api("POST", "/api/v1/mape-k/execute", token, {});
  const monitor = cycle.phases.find((p: { phase: string }) => p.phase === "monitor");
  return {
    analytics,
    detected: { observations_in_window: detection.observations_in_window, kinds: detection.patterns.map((p: { kind: string }) => p.kind).sort() },
    monitor: { observations: monitor.detail.observations, errors: monitor.detail.errors, event_types: monitor.detail.event_types },
  };
}

const lastSeq = async (): Promise<number> => {
  let after = 0;
  for (;;) {
    const page = await api("GET", `/api/v1/receipts?after_seq=${after}&limit=1000`, token);
    if (page.items.length === 0) return after;
    after = page.items[page.items.length - 1].seq;
  }
};

test("a smoke run leaves its receipts marked smoke and analytics, detection and MAPE-K Monitor unchanged", async () => {
  for (let i = 0; i < 6; i++) {
    await api("POST", "/api/v1/observations", ingestToken, { event_type: "payment.settled", value: 100 + i, sector: "finance" });
  }
  const before = await analysis();
  expect(before.analytics.total_observations).toBe(6);
  expect(before.monitor.observations).toBe(6);

  const from = await lastSeq();
  const result = await runSmokeTest({ apiUrl: service.apiUrl, metricsUrl: service.metricsUrl }, { ...DEFAULT_SMOKE, ingestToken, token, latencySamples: 3 });
  expect(result).toMatchObject({ ok: true });
  const smokeReceipts = (await api("GET", `/api/v1/receipts?after_seq=${from}&limit=1000`, token)).items as { operation: string; sector: string }[];
  // The observation's ingest and the smoke-scoped detection, nothing else, and both marked.
  expect(smokeReceipts.map((r) => r.operation).sort()).toEqual(["observation.create", "pattern.detect"].sort());
  expect(smokeReceipts.map((r) => r.sector)).toEqual([SMOKE_SECTOR, SMOKE_SECTOR]);

  const smokeObservations = await api("GET", `/api/v1/observations?sector=${SMOKE_SECTOR}`, token);
  expect(smokeObservations.items).toHaveLength(1);

  const after = await analysis();
  expect(after).toEqual(before);
  // The exclusion is a filter, not an empty ledger: asking for the smoke sector by name sees it.
  const scoped = await api("POST", "/api/v1/analytics/run", token, { window_seconds: 3600, sector: SMOKE_SECTOR });
  expect(scoped.by_sector).toEqual([{ sector: SMOKE_SECTOR, count: 1 }]);
}, 120_000);
