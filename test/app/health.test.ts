/**
 * Dependency outages against the real service: Redis killed mid-test (requests keep succeeding
 * on in-process fallbacks, /health says redis degraded, recovery when it returns) and PostgreSQL
 * stopped (/ready 503, /health database down, API 503 not 500, recovery when it returns).
 */
import { waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startRedis, type TestRedis } from "../support/redis";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

let pg: TestPostgres;
let redis: TestRedis;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let admin: string;

beforeAll(async () => {
  [pg, redis, oidc] = await Promise.all([startPostgres(), startRedis(), startOidc()]);
  svc = await startTestService(pg, { ...oidc.env(), REDIS_URL: redis.url });
  admin = await oidc.roleToken("administrator");
  await waitFor("redis connected", async () => (await svc.api("/health")).body.dependencies.redis === "healthy", 15_000);
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await redis?.destroy();
  await pg?.destroy();
});

const metric = async (line: RegExp): Promise<number> => {
  const text = await (await fetch(`${svc.service.metricsUrl}/metrics`)).text();
  const match = text.split("\n").find((l) => line.test(l));
  if (!match) throw new Error(`no series matching ${line}`);
  return Number(match.split(" ").pop());
};

test("/health reports the documented shape, all healthy", async () => {
  const response = await svc.api("/health");
  expect(response.status).toBe(200);
  expect(response.body).toEqual({
    status: "healthy",
    timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    uptime_seconds: expect.any(Number),
    dependencies: { database: "healthy", redis: "healthy" },
  });
  expect((await svc.api("/ready")).status).toBe(200);
  expect(await metric(/^knhk_dependency_up\{dependency="redis"\}/)).toBe(1);
});

describe("Redis killed mid-test", () => {
  beforeAll(async () => {
    await redis.stop();
    await waitFor("redis seen down", async () => (await svc.api("/health")).body.dependencies.redis === "degraded", 15_000);
  });

  test("/health says degraded with redis degraded, database healthy; /ready stays 200", async () => {
    const response = await svc.api("/health");
    expect(response.status).toBe(200);
    expect(response.body.status).toBe("degraded");
    expect(response.body.dependencies).toEqual({ database: "healthy", redis: "degraded" });
    expect((await svc.api("/ready")).status).toBe(200);
    expect(await metric(/^knhk_dependency_up\{dependency="redis"\}/)).toBe(0);
  });

  test("reads, writes, the current-snapshot cache and rate limiting keep working", async () => {
    const created = await svc.api("/api/v1/observations", { method: "POST", token: admin, json: { event_type: "outage.redis", value: 1, sector: "generic" } });
    expect(created.status).toBe(201);
    expect(created.headers.get("x-ratelimit-remaining")).toEqual(expect.any(String));
    expect((await svc.api(`/api/v1/observations/${created.body.id}`, { token: admin })).status).toBe(200);
    expect((await svc.api("/api/v1/snapshots/current", { token: admin })).status).toBe(200);
    expect((await svc.api("/api/v1/mape-k/execute", { method: "POST", token: admin })).status).toBe(200);
  });

  test("Redis back: /health returns to healthy", async () => {
    await redis.start();
    await waitFor("redis reconnected", async () => (await svc.api("/health")).body.status === "healthy", 20_000);
    expect((await svc.api("/health")).body.dependencies.redis).toBe("healthy");
  });
});

describe("PostgreSQL stopped", () => {
  beforeAll(async () => {
    await pg.stop();
  });

  test("/ready is 503 and /health reports database down", async () => {
    const ready = await svc.api("/ready");
    expect(ready.status).toBe(503);
    expect(ready.body.reason).toMatch(/database/);
    const health = await svc.api("/health");
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("down");
    expect(health.body.dependencies.database).toBe("down");
    expect(await metric(/^knhk_dependency_up\{dependency="database"\}/)).toBe(0);
  });

  test("API requests get 503 (not 500) and the process stays up", async () => {
    const response = await svc.api("/api/v1/observations?limit=1", { token: admin });
    expect(response.status).toBe(503);
    expect(response.body.error).toBe("unavailable");
    expect((await svc.api("/health")).status).toBe(200);
  });

  test("PostgreSQL back: /ready, /health and the API recover", async () => {
    await pg.start();
    await waitFor("ready again", async () => (await svc.api("/ready")).status === 200, 30_000);
    expect((await svc.api("/health")).body.dependencies.database).toBe("healthy");
    const response = await svc.api("/api/v1/observations", { method: "POST", token: admin, json: { event_type: "outage.pg", value: 2, sector: "generic" } });
    expect(response.status).toBe(201);
  });
});
