/**
 * The generated redis.conf, sentinel.conf and init scripts start real redis-server and
 * redis-sentinel processes (Debian packages) on loopback: CONFIG GET shows the configured
 * values, the replica follows the primary Sentinel reports, three Sentinels agree on the
 * primary, and they fail over to the replica when the primary dies. A primary without a replica
 * in sync refuses writes (min-replicas-to-write) and takes them once its replica follows.
 *
 * Pods address each other by DNS name (`<pod>.<domain>`); here the "pod names" are loopback
 * prefixes so the same scripts resolve to 127.0.0.1 (primary) and 127.0.0.2 (replica).
 */
import { execFile } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Redis from "ioredis";
import { redisInitScript, RedisTopology, renderRedisConf, renderSentinelConf, sentinelInitScript } from "../../infra/render/redis";
import { freePort, waitFor } from "../support/ports";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { testStackConfig } from "../support/stack-identifiers";

const run = promisify(execFile);
const cfg = testStackConfig("prod").redis;
const MASTER = "knhk";

describe("redis.conf and sentinel.conf with real redis-server / redis-sentinel", () => {
  let root: string;
  let port: number;
  const sentinelPorts: number[] = [];
  const children = new Map<string, TrackedProcess>();
  const clients: Redis[] = [];

  const client = (host: string, p: number) => {
    const c = new Redis({ host, port: p, maxRetriesPerRequest: 1, connectTimeout: 1000, retryStrategy: () => 200 });
    c.on("error", () => undefined);
    clients.push(c);
    return c;
  };
  const start = (name: string, cmd: string, conf: string) => {
    const out = openSync(join(root, `${name}.log`), "a");
    children.set(name, spawnTracked(cmd, [conf], { stdio: ["ignore", out, out] }));
    closeSync(out);
  };
  const stop = async (name: string, signal: NodeJS.Signals = "SIGTERM") => {
    const child = children.get(name);
    children.delete(name);
    await child?.stop(signal);
  };
  /** Runs an init script with the pod's HOSTNAME, as the init container does. */
  const init = async (script: string, hostname: string) => {
    const file = join(root, `init-${hostname}-${Math.random().toString(36).slice(2)}.sh`);
    writeFileSync(file, script);
    await run("/bin/sh", [file], { env: { ...process.env, HOSTNAME: hostname }, timeout: 30_000 });
  };
  const topology = (podDomain: string): RedisTopology => ({
    redisDomain: podDomain,
    sentinelHost: "127.0.0.1",
    masterName: MASTER,
    initialPrimary: "127.0.0",
    port,
    sentinelPort: sentinelPorts[0],
  });
  const redisConf = (bind: string, dir: string) =>
    renderRedisConf({
      bind: [bind],
      port,
      dir,
      maxmemory: cfg.maxmemory,
      maxmemoryPolicy: cfg.maxmemoryPolicy,
      minReplicasToWrite: cfg.minReplicasToWrite,
      minReplicasMaxLag: cfg.minReplicasMaxLag,
    });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "knhk-redis-sentinel-"));
    port = await freePort();
    for (let i = 0; i < 3; i++) sentinelPorts.push(await freePort());
    for (const d of ["primary", "replica", "sentinel-0", "sentinel-1", "sentinel-2"]) mkdirSync(join(root, d));
  });

  afterAll(async () => {
    clients.forEach((c) => c.disconnect());
    for (const name of [...children.keys()]) await stop(name, "SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  it("the primary starts from redis.conf with AOF everysec, maxmemory and the eviction policy", async () => {
    writeFileSync(join(root, "primary", "source.conf"), redisConf("127.0.0.1", join(root, "primary")));
    // No Sentinel answers yet: the init script keeps the initial primary as primary.
    await init(redisInitScript(topology("1"), join(root, "primary", "source.conf"), join(root, "primary", "redis.conf")), "127.0.0");
    expect(readFileSync(join(root, "primary", "redis.conf"), "utf8")).not.toMatch(/^replicaof/m);
    start("primary", "redis-server", join(root, "primary", "redis.conf"));
    const primary = client("127.0.0.1", port);
    await waitFor("primary", async () => (await primary.ping()) === "PONG", 15_000);
    const get = async (key: string) => ((await primary.config("GET", key)) as string[])[1];
    expect(await get("appendonly")).toBe("yes");
    expect(await get("appendfsync")).toBe("everysec");
    expect(await get("maxmemory")).toBe(String(256 * 1024 * 1024));
    expect(await get("maxmemory-policy")).toBe("allkeys-lru");
    expect(await get("replica-announce-ip")).toBe("127.0.0.1");
    expect(await get("min-replicas-to-write")).toBe(String(cfg.minReplicasToWrite));
    expect(await get("min-replicas-max-lag")).toBe(String(cfg.minReplicasMaxLag));
  });

  it("the primary without a replica in sync refuses writes (NOREPLICAS) and reads still work", async () => {
    const primary = client("127.0.0.1", port);
    await expect(primary.set("knhk:probe", "lost-at-failover")).rejects.toThrow(/^NOREPLICAS/);
    expect(await primary.get("knhk:probe")).toBeNull();
  });

  it("three Sentinels start from sentinel.conf and monitor the primary with the configured quorum", async () => {
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `sentinel-${i}`);
      writeFileSync(
        join(dir, "source.conf"),
        renderSentinelConf({
          bind: ["127.0.0.1"],
          port: sentinelPorts[i],
          dir,
          masterName: MASTER,
          master: { host: "127.0.0.1", port },
          quorum: cfg.quorum,
          downAfterMilliseconds: cfg.downAfterMilliseconds,
          failoverTimeout: cfg.failoverTimeout,
        }),
      );
      await init(sentinelInitScript(topology("1"), "1", join(dir, "source.conf"), join(dir, "sentinel.conf")), "127.0.0");
      start(`sentinel-${i}`, "redis-sentinel", join(dir, "sentinel.conf"));
    }
    const sentinel = client("127.0.0.1", sentinelPorts[0]);
    await waitFor("sentinels to know each other", async () => {
      const master = toMap((await sentinel.call("SENTINEL", "MASTER", MASTER)) as string[]);
      return master["num-other-sentinels"] === "2";
    }, 60_000, 250);
    const master = toMap((await sentinel.call("SENTINEL", "MASTER", MASTER)) as string[]);
    expect(master).toMatchObject({ ip: "127.0.0.1", port: String(port), quorum: String(cfg.quorum), "down-after-milliseconds": String(cfg.downAfterMilliseconds), "failover-timeout": String(cfg.failoverTimeout) });
    expect(((await sentinel.call("SENTINEL", "CONFIG", "GET", "resolve-hostnames")) as string[])[1]).toBe("yes");
  }, 90_000);

  it("the replica's init script follows the primary Sentinel reports", async () => {
    writeFileSync(join(root, "replica", "source.conf"), redisConf("127.0.0.2", join(root, "replica")));
    await init(redisInitScript(topology("2"), join(root, "replica", "source.conf"), join(root, "replica", "redis.conf")), "127.0.0");
    expect(readFileSync(join(root, "replica", "redis.conf"), "utf8")).toMatch(new RegExp(`^replicaof 127\\.0\\.0\\.1 ${port}$`, "m"));
    start("replica", "redis-server", join(root, "replica", "redis.conf"));
    const replica = client("127.0.0.2", port);
    await waitFor("replication link", async () => /master_link_status:up/.test(await replica.info("replication")), 60_000, 250);
    expect(((await replica.config("GET", "replicaof")) as string[])[1]).toBe(`127.0.0.1 ${port}`);
    expect(((await replica.config("GET", "replica-read-only")) as string[])[1]).toBe("yes");
    expect(((await replica.config("GET", "appendfsync")) as string[])[1]).toBe("everysec");
    const sentinel = client("127.0.0.1", sentinelPorts[1]);
    await waitFor("sentinel to see the replica", async () => toMap((await sentinel.call("SENTINEL", "MASTER", MASTER)) as string[])["num-slaves"] === "1", 60_000, 250);
  }, 150_000);

  it("with its replica in sync the primary takes writes, and the replica has them", async () => {
    const primary = client("127.0.0.1", port);
    await waitFor("the primary to count its replica", async () => /min_slaves_good_slaves:1/.test(await primary.info("replication")), 30_000, 100);
    expect(await primary.set("knhk:probe", "kept")).toBe("OK");
    const replica = client("127.0.0.2", port);
    await waitFor("the write on the replica", async () => (await replica.get("knhk:probe")) === "kept", 30_000, 100);
  });

  it("the Sentinels fail over to the replica when the primary dies (figure: time to promotion)", async () => {
    const sentinel = client("127.0.0.1", sentinelPorts[2]);
    const started = Date.now();
    await stop("primary", "SIGKILL");
    await waitFor("promotion of 127.0.0.2", async () => ((await sentinel.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)) as string[])[0] === "127.0.0.2", 150_000, 250);
    console.log(`redis failover: replica promoted ${((Date.now() - started) / 1000).toFixed(1)} s after the primary was killed (down-after ${cfg.downAfterMilliseconds} ms)`);
    const promoted = client("127.0.0.2", port);
    await waitFor("role master", async () => /role:master/.test(await promoted.info("replication")), 30_000, 250);
    // A split Sentinel vote is retried only after 2 x failover-timeout, hence the long wait.
  }, 200_000);
});

function toMap(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}
