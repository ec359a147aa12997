/**
 * Sentinel mode: the service finds its Redis primary through a real redis-sentinel
 * (REDIS_SENTINELS + REDIS_SENTINEL_MASTER), reports it healthy, and shares state through it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { startRedis, type TestRedis } from "../support/redis";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

let pg: TestPostgres;
let redis: TestRedis;
let oidc: TestOidc;
let sentinel: TrackedProcess | undefined;
let sentinelDir: string;
let svc: ServiceUnderTest;

function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let data = "";
    socket.once("error", reject);
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      data += chunk;
      if (data.endsWith("\r\n")) {
        socket.destroy();
        resolve(data);
      }
    });
  });
}

beforeAll(async () => {
  [pg, redis, oidc] = await Promise.all([startPostgres(), startRedis(), startOidc()]);
  sentinelDir = mkdtempSync(join(tmpdir(), "knhk-sentinel-"));
  const port = await freePort();
  const conf = join(sentinelDir, "sentinel.conf");
  writeFileSync(conf, [`port ${port}`, "bind 127.0.0.1", `dir ${sentinelDir}`, `sentinel monitor knhk-master 127.0.0.1 ${redis.port} 1`, "sentinel down-after-milliseconds knhk-master 2000", ""].join("\n"));
  sentinel = spawnTracked("redis-sentinel", [conf], { stdio: "ignore" });
  await waitFor("sentinel knows the primary", async () => (await redisCommand(port, "SENTINEL get-master-addr-by-name knhk-master")).includes(String(redis.port)), 15_000);
  svc = await startTestService(pg, { ...oidc.env(), REDIS_SENTINELS: `127.0.0.1:${port}`, REDIS_SENTINEL_MASTER: "knhk-master", KNHK_RATE_LIMIT_MAX: "3", KNHK_RATE_LIMIT_WINDOW_SECONDS: "3600" });
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await sentinel?.stop("SIGKILL");
  if (sentinelDir) rmSync(sentinelDir, { recursive: true, force: true });
  await oidc?.close();
  await redis?.destroy();
  await pg?.destroy();
});

test("the primary found through Sentinel is healthy in /health", async () => {
  await waitFor("redis via sentinel", async () => (await svc.api("/health")).body.dependencies.redis === "healthy", 20_000);
  expect((await svc.api("/health")).body.status).toBe("healthy");
});

test("rate-limit counters live in the primary Sentinel names", async () => {
  const token = await oidc.roleToken("observer", "sentinel-user");
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await svc.api("/api/v1/snapshots", { token })).status);
  expect(statuses).toEqual([200, 200, 200, 429]);
  const keys = await redisCommand(redis.port, "KEYS knhk:ratelimit:*sentinel-user*");
  expect(keys).toContain("knhk:ratelimit:sub:okta:sentinel-user:");
});
