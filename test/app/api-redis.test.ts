/**
 * Two replicas of the real service on one PostgreSQL and one Redis: the per-principal rate limit
 * is shared through Redis, a promotion on one replica reaches the other through pub/sub, and with
 * Redis gone each replica limits in process.
 */
import { waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startRedis, type TestRedis } from "../support/redis";
import { startService, type RunningService } from "../../app/src/server/service";
import { passedProposal } from "./shell/fixtures";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, TEST_SERVICE_SETTINGS, type ServiceUnderTest } from "./shell/service";

let pg: TestPostgres;
let redis: TestRedis;
let oidc: TestOidc;
let a: ServiceUnderTest;
let b: RunningService;
const LIMIT = 5;

beforeAll(async () => {
  [pg, redis, oidc] = await Promise.all([startPostgres(), startRedis(), startOidc()]);
  const env = { ...oidc.env(), REDIS_URL: redis.url, KNHK_RATE_LIMIT_MAX: String(LIMIT), KNHK_RATE_LIMIT_WINDOW_SECONDS: "3600" };
  a = await startTestService(pg, env);
  // Replica b: same database (already migrated), same Redis; least-privileged like a, with the
  // owner identity (DATABASE_MIGRATION_URL) to register its signing key.
  b = await startService(
    {
      ...env,
      DATABASE_URL: pg.url(a.database, "knhk_app"),
      DATABASE_MIGRATION_URL: pg.url(a.database),
      KNHK_MIGRATE_ON_START: "false",
      ...TEST_SERVICE_SETTINGS,
    },
    () => undefined,
  );
  for (const url of [a.service.apiUrl, b.apiUrl]) {
    await waitFor("redis connected", async () => (await (await fetch(`${url}/health`)).json()).dependencies.redis === "healthy", 15_000);
  }
}, 180_000);

afterAll(async () => {
  await b?.stop();
  await a?.stop();
  await oidc?.close();
  await redis?.destroy();
  await pg?.destroy();
});

async function get(base: string, path: string, token: string) {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

test("the rate limit is shared by both replicas and is per principal", async () => {
  const alice = await oidc.roleToken("observer", "alice");
  const statuses: number[] = [];
  for (let i = 0; i < LIMIT + 1; i++) {
    const base = i % 2 === 0 ? a.service.apiUrl : b.apiUrl;
    statuses.push((await get(base, "/api/v1/snapshots/current", alice)).status);
  }
  expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  const refused = await get(b.apiUrl, "/api/v1/snapshots/current", alice);
  expect(refused.status).toBe(429);
  expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  expect(refused.body.error).toBe("rate_limited");
  // Another principal has its own budget.
  expect((await get(a.service.apiUrl, "/api/v1/snapshots/current", await oidc.roleToken("observer", "bob"))).status).toBe(200);
  const metrics = await (await fetch(`${b.metricsUrl}/metrics`)).text();
  expect(metrics).toMatch(/^knhk_rate_limited_total [1-9]/m);
});

test("a promotion on replica a reaches replica b's current snapshot through pub/sub", async () => {
  const admin = await oidc.roleToken("administrator", "promoter");
  const before = await get(b.apiUrl, "/api/v1/snapshots/current", admin);
  expect(before.status).toBe(200);
  // b now holds the current snapshot in its in-process cache (and Redis holds it too).
  const proposal = await passedProposal(a.service.domain);
  const promoted = await fetch(`${a.service.apiUrl}/api/v1/snapshots/${proposal.snapshot_id}/promote`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}` },
  });
  expect(promoted.status).toBe(200);
  await waitFor("b sees the promotion", async () => (await b.domain.snapshots.current()).id === proposal.snapshot_id, 10_000);
  const after = await get(b.apiUrl, "/api/v1/snapshots/current", admin);
  expect(after.body.id).toBe(proposal.snapshot_id);
  expect(after.body.id).not.toBe(before.body.id);
});

test("Redis gone: each replica limits in process, and requests within the limit succeed", async () => {
  await redis.stop();
  await waitFor("a sees redis down", async () => (await (await fetch(`${a.service.apiUrl}/health`)).json()).dependencies.redis === "degraded", 15_000);
  const carol = await oidc.roleToken("observer", "carol");
  const onA: number[] = [];
  for (let i = 0; i < LIMIT + 1; i++) onA.push((await get(a.service.apiUrl, "/api/v1/snapshots/current", carol)).status);
  expect(onA).toEqual([200, 200, 200, 200, 200, 429]);
  // b never saw carol: its in-process budget is untouched.
  expect((await get(b.apiUrl, "/api/v1/snapshots/current", carol)).status).toBe(200);
});
