/**
 * The exporters the stack deploys, run as the pods run them, against real servers, scraped by a
 * real Prometheus with the Monitoring component's scrape jobs:
 * - postgres_exporter (the version of the pods' image, built from the Go module proxy by
 *   scripts/exporters-build.sh) as a sidecar of each member of a 2-member Patroni cluster (the
 *   deployed post-bootstrap script creates its pg_monitor login, pg_stat_statements preloaded,
 *   PostgreSQL serving TLS with `hostssl` only), with the container's own arguments and
 *   environment from the rendered prod StatefulSet;
 * - redis_exporter beside a Redis primary and replica (rendered redis.conf) and, through its
 *   multi-target `/scrape` endpoint, for a Sentinel (rendered sentinel.conf).
 * Checked: every exporter metric the registry declares for them is a series Prometheus holds;
 * every series selector of an alert rule or dashboard panel on these jobs matches series (so a
 * rule cannot wait on a name, label or value the exporter never produces); the Redis hit and
 * miss counters move by exactly the GETs the test made and the hit-rate panel reads them; the
 * slowest-statements panel names statements of the service's database.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import { DASHBOARDS, dashboardQueries } from "../../dashboards";
import { loadRegistry } from "../../registry";
import { renderRedisConf, renderSentinelConf } from "../../infra/render/redis";
import { podMonitorSpec, SCRAPE_JOBS, type ScrapeJobName } from "../../infra/render/scrape-targets";
import { POSTGRES, REDIS } from "../../infra/render/topology";
import { parsePromql, type SelectorUse } from "../contract/promql";
import { startPrometheus, type RunningServer } from "../rules/servers";
import { removeTempDirs, tempDir, testRuleGroups, writeYaml } from "../rules/tools";
import { PINNED_PATRONI, startEtcd, startPatroniCluster, type TestEtcd, type TestPatroniCluster } from "../support/patroni";
import { freePort, waitFor } from "../support/ports";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { renderTestStack, testStackConfig } from "../support/stack-identifiers";
import { makeTestPki } from "../support/tls";

jest.setTimeout(600_000);

const REPO = join(__dirname, "..", "..");
const JOBS: readonly ScrapeJobName[] = ["postgres-exporter", "redis-exporter", "redis-sentinel"];
const NAMESPACE = "knhk";

interface Container {
  readonly name: string;
  readonly args?: string[];
  readonly env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { key: string } } }>;
}

/** A container of a rendered StatefulSet of the prod stack. */
function podContainer(objects: readonly { kind: string; metadata: { name: string } }[], statefulSet: string, container: string): Container {
  const sts = objects.find((o) => o.kind === "StatefulSet" && o.metadata.name === statefulSet) as unknown as { spec: { template: { spec: { containers: Container[] } } } } | undefined;
  const found = sts?.spec.template.spec.containers.find((c) => c.name === container);
  if (!found) throw new Error(`the prod render has no container ${container} in StatefulSet ${statefulSet}`);
  return found;
}

/** The container's environment with its literal values; `secrets` gives the values of secret references (by variable name). */
function containerEnv(c: Container, secrets: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const value = e.value ?? secrets[e.name];
    if (value === undefined) throw new Error(`container ${c.name}: no value for ${e.name}`);
    env[e.name] = value;
  }
  return env;
}

/** Rewrites a pod's `:port` listen address or `host:port` address to a loopback one. */
const onLoopback = (text: string, podPort: number, port: number) => text.replace(new RegExp(`(^|[=:/@])(localhost|127\\.0\\.0\\.1)?:${podPort}\\b`), (_m, lead: string) => `${lead}127.0.0.1:${port}`);

describe("the deployed exporters against real PostgreSQL (Patroni), Redis and Sentinel, scraped by a real Prometheus", () => {
  let etcd: TestEtcd;
  let cluster: TestPatroniCluster;
  let prometheus: RunningServer;
  const processes: TrackedProcess[] = [];
  const logs: string[] = [];
  const clients: Redis[] = [];
  let redisPort: number;
  let redisExporterPort: number;
  let sentinelPort: number;

  const spawnLogged = (name: string, command: string, args: string[], env: Record<string, string>) => {
    const file = join(tempDir(`log-${name}`), `${name}.log`);
    logs.push(file);
    const out = openSync(file, "a");
    processes.push(spawnTracked(command, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ["ignore", out, out] }));
    closeSync(out);
  };
  const client = (port: number) => {
    const c = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 1, connectTimeout: 1000 });
    c.on("error", () => undefined);
    clients.push(c);
    return c;
  };
  const query = async (expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
    const body = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`)).json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
    return body.data.result;
  };
  const scalar = async (expr: string) => Number((await query(expr))[0]?.value[1] ?? NaN);

  beforeAll(async () => {
    const bin = execFileSync("bash", [join(REPO, "scripts", "exporters-build.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    const { k8sObjects } = await renderTestStack("prod");
    const objects = k8sObjects as unknown as { kind: string; metadata: { name: string } }[];

    // PostgreSQL: the Patroni cluster as the pods run it, with TLS.
    const p = testStackConfig("prod").patroni;
    const pki = await makeTestPki(tempDir("pg-pki"), { dns: ["localhost"], ips: ["127.0.0.1"] });
    etcd = await startEtcd();
    cluster = await startPatroniCluster({
      etcd,
      members: 2,
      patroni: PINNED_PATRONI,
      timing: { ttl: p.ttl, loopWait: p.loopWait, retryTimeout: p.retryTimeout, primaryStartTimeout: p.primaryStartTimeout, maximumLagOnFailover: p.maximumLagOnFailover },
      tls: pki,
    });
    await cluster.waitForHealthy();

    // Redis primary and replica from the rendered redis.conf, and one Sentinel from sentinel.conf.
    const redisCfg = testStackConfig("prod").redis;
    redisPort = await freePort();
    const replicaPort = await freePort();
    sentinelPort = await freePort();
    for (const [name, port, extra] of [["redis-primary", redisPort, ""], ["redis-replica", replicaPort, `replicaof 127.0.0.1 ${redisPort}\n`]] as const) {
      const dir = tempDir(name);
      const conf = renderRedisConf({ bind: ["127.0.0.1"], port, dir, maxmemory: redisCfg.maxmemory, maxmemoryPolicy: redisCfg.maxmemoryPolicy, minReplicasToWrite: redisCfg.minReplicasToWrite, minReplicasMaxLag: redisCfg.minReplicasMaxLag }) + extra;
      spawnLogged(name, "redis-server", [writeConf(join(dir, "redis.conf"), conf)], {});
    }
    const sentinelDir = tempDir("sentinel");
    const sentinelConf = renderSentinelConf({ bind: ["127.0.0.1"], port: sentinelPort, dir: sentinelDir, masterName: REDIS.masterName, master: { host: "127.0.0.1", port: redisPort }, quorum: redisCfg.quorum, downAfterMilliseconds: redisCfg.downAfterMilliseconds, failoverTimeout: redisCfg.failoverTimeout });
    spawnLogged("sentinel", "redis-sentinel", [writeConf(join(sentinelDir, "sentinel.conf"), sentinelConf)], {});
    const primary = client(redisPort);
    await waitFor("the replica in sync with the primary", async () => /connected_slaves:1/.test(await primary.info("replication").catch(() => "")), 30_000);

    // The exporters with the containers' own arguments and environment, on loopback ports.
    const pgContainer = podContainer(objects, POSTGRES.statefulSet, "postgres-exporter");
    const pgExporterPorts: number[] = [];
    for (const member of cluster.members) {
      const port = await freePort();
      pgExporterPorts.push(port);
      const env = containerEnv(pgContainer, { DATA_SOURCE_PASS: cluster.env.EXPORTER_PASSWORD });
      env.DATA_SOURCE_URI = onLoopback(env.DATA_SOURCE_URI, 5432, member.pgPort);
      expect(env.DATA_SOURCE_URI).toMatch(/sslmode=require/);
      spawnLogged(`postgres-exporter-${member.name}`, join(bin, "postgres_exporter"), (pgContainer.args ?? []).map((a) => onLoopback(a, 9187, port)), env);
    }
    const redisContainer = podContainer(objects, REDIS.statefulSet, "redis-exporter");
    redisExporterPort = await freePort();
    const redisEnv = containerEnv(redisContainer, {});
    redisEnv.REDIS_ADDR = onLoopback(redisEnv.REDIS_ADDR, 6379, redisPort);
    redisEnv.REDIS_EXPORTER_WEB_LISTEN_ADDRESS = onLoopback(redisEnv.REDIS_EXPORTER_WEB_LISTEN_ADDRESS, 9121, redisExporterPort);
    spawnLogged("redis-exporter", join(bin, "redis_exporter"), redisContainer.args ?? [], redisEnv);

    // Prometheus with the PodMonitors' endpoints as static targets: their path, scheme and
    // relabelings (the operator's translation), the pod labels the operator adds, and a 1 s
    // interval. The one change: the Sentinel job's exporter address is this test's exporter,
    // not the cluster DNS name of the Redis pods' exporter.
    const targets: Record<ScrapeJobName, Array<{ address: string; pod: string }>> = {
      "postgres-exporter": cluster.members.map((m, i) => ({ address: `127.0.0.1:${pgExporterPorts[i]}`, pod: `postgres-${i}` })),
      "redis-exporter": [{ address: `127.0.0.1:${redisExporterPort}`, pod: "redis-0" }],
      "redis-sentinel": [{ address: `127.0.0.1:${sentinelPort}`, pod: "redis-sentinel-0" }],
    } as Record<ScrapeJobName, Array<{ address: string; pod: string }>>;
    const scrapeConfigs = JOBS.map((job) => {
      const spec = podMonitorSpec(SCRAPE_JOBS[job], { namespace: NAMESPACE, patroniTlsSecret: "unused", patroniTlsServerName: "unused" }) as { podMetricsEndpoints: Array<{ path: string; scheme: string; relabelings: Array<Record<string, unknown>> }> };
      const endpoint = spec.podMetricsEndpoints[0];
      const relabels = endpoint.relabelings.map((r) => ({
        action: r.action,
        ...(r.sourceLabels ? { source_labels: r.sourceLabels } : {}),
        target_label: r.targetLabel,
        replacement: String(r.replacement ?? "$1").replace(`${REDIS.headlessService}.${NAMESPACE}.svc.cluster.local:9121`, `127.0.0.1:${redisExporterPort}`),
      }));
      return {
        job_name: job,
        scrape_interval: "1s",
        scrape_timeout: "1s",
        metrics_path: endpoint.path,
        scheme: endpoint.scheme,
        static_configs: targets[job].map((t) => ({ targets: [t.address], labels: { namespace: NAMESPACE, pod: t.pod } })),
        relabel_configs: relabels,
      };
    });
    const dir = tempDir("exporters-prometheus");
    prometheus = await startPrometheus(writeYaml(join(dir, "prometheus.yml"), { global: { evaluation_interval: "1s" }, scrape_configs: scrapeConfigs }));
    await waitFor(
      "every target up",
      async () => (await query("up")).filter((r) => r.value[1] === "1").length === cluster.members.length + 2,
      60_000,
      500,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}\nexporter logs: ${logs.join(", ")}`);
    });
  });

  afterAll(async () => {
    clients.forEach((c) => c.disconnect());
    await prometheus?.stop();
    for (const p of processes) await p.stop("SIGKILL");
    await cluster?.destroy();
    await etcd?.destroy();
    removeTempDirs();
  });

  it("every exporter metric the registry declares for these exporters is produced by the real exporter", async () => {
    const { exporters } = loadRegistry();
    const missing: string[] = [];
    for (const [exporter, job] of [["postgres_exporter", "postgres-exporter"], ["redis_exporter", "redis-exporter"]] as const) {
      for (const name of exporters[exporter] ?? []) {
        // Sentinel's series come through the Sentinel job, the rest through the exporter's own.
        const jobs = name.startsWith("redis_sentinel_") ? ["redis-sentinel"] : [job];
        await waitFor(`${name}`, async () => (await query(`count({__name__="${name}", job=~"${jobs.join("|")}"})`)).length > 0, 20_000, 500).catch(() => missing.push(`${name} (job ${jobs.join("|")})`));
      }
    }
    expect(missing).toEqual([]);
  });

  it("every series selector of an alert rule or dashboard panel on these jobs matches series the exporters produce", async () => {
    // Statements in the service's database, so pg_stat_statements has rows for it.
    const leader = cluster.member((await cluster.clusterStatus()).find((m) => m.role === "leader")!.name);
    await cluster.psql(leader, "CREATE TABLE IF NOT EXISTS exporter_probe (n int); INSERT INTO exporter_probe SELECT generate_series(1, 10); SELECT count(*) FROM exporter_probe", POSTGRES.database);
    const uses: Array<{ where: string; selector: SelectorUse }> = [];
    for (const group of testRuleGroups()) {
      for (const rule of group.rules) for (const selector of parsePromql(rule.expr).selectors) uses.push({ where: `rule ${"alert" in rule ? rule.alert : rule.record}`, selector });
    }
    for (const dashboard of DASHBOARDS) {
      for (const { panel, expr } of dashboardQueries(dashboard.build())) for (const selector of parsePromql(expr.replace(/\$__rate_interval/g, "1m")).selectors) uses.push({ where: `panel ${panel}`, selector });
    }
    const onJobs = uses.filter((u) => u.selector.matchers.some((m) => m.label === "job" && m.op === "=" && (JOBS as readonly string[]).includes(m.value)));
    expect(onJobs.length).toBeGreaterThan(15);
    const unmatched: string[] = [];
    for (const { where, selector } of onJobs) {
      const text = `${selector.metric}{${selector.matchers.map((m) => `${m.label}${m.op}${JSON.stringify(m.value)}`).join(",")}}`;
      const matched = await waitFor(text, async () => (await query(`count(${text})`)).length > 0, 20_000, 500).then(() => true, () => false);
      if (!matched) unmatched.push(`${where}: ${text}`);
    }
    expect(unmatched).toEqual([]);
  });

  it("the Redis hit and miss counters move by exactly the GETs made, and the hit-rate panel reads them", async () => {
    const primary = client(redisPort);
    await primary.set("knhk:exporter-probe", "1");
    const counter = (name: string) => scalar(`sum(${name}{job="redis-exporter"})`);
    await waitFor("the counters scraped", async () => Number.isFinite(await counter("redis_keyspace_hits_total")), 20_000, 500);
    const [hits, misses] = [await counter("redis_keyspace_hits_total"), await counter("redis_keyspace_misses_total")];
    for (let i = 0; i < 30; i++) await primary.get("knhk:exporter-probe");
    for (let i = 0; i < 10; i++) await primary.get(`knhk:exporter-absent-${i}`);
    await waitFor("30 hits and 10 misses scraped", async () => (await counter("redis_keyspace_hits_total")) === hits + 30 && (await counter("redis_keyspace_misses_total")) === misses + 10, 20_000, 500);
    const panel = dashboardQueries(DASHBOARDS.find((d) => d.uid === "knhk-postgres")!.build()).find((q) => q.panel === "Redis cache hit rate")!;
    const rate = await scalar(panel.expr.replace(/\$__rate_interval/g, "30s"));
    expect(rate).toBeGreaterThan(0);
    expect(rate).toBeLessThan(1);
  });

  it("the slowest-statements panel names statements of the service's database", async () => {
    const leader = cluster.member((await cluster.clusterStatus()).find((m) => m.role === "leader")!.name);
    const panel = dashboardQueries(DASHBOARDS.find((d) => d.uid === "knhk-postgres")!.build()).find((q) => q.panel === "Slowest statements")!;
    let rows: Array<{ metric: Record<string, string> }> = [];
    await waitFor(
      "a statement of the service's database on the panel",
      async () => {
        await cluster.psql(leader, "SELECT count(*) FROM exporter_probe WHERE n > 3", POSTGRES.database);
        rows = await query(panel.expr.replace(/\$__rate_interval/g, "10s"));
        return rows.length > 0;
      },
      60_000,
      1000,
    );
    expect(rows.every((r) => /^-?\d+$/.test(r.metric.queryid ?? ""))).toBe(true);
  });
});

function writeConf(file: string, text: string): string {
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, text);
  return file;
}
