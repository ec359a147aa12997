/**
 * The generated patroni.yml, checked by Patroni itself:
 * - the Kubernetes variant rendered for every stack passes `patroni --validate-config` of
 *   Debian's Patroni and of the pinned Patroni the image deploys (which knows the role label
 *   keys the Services depend on);
 * - the etcd variant boots a real 2-member cluster (Debian postgresql-15 + patroni + etcd on
 *   loopback) that elects a leader, reports a synchronous standby, runs the post-bootstrap
 *   script, and fails over to the standby when the leader dies.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { parseStackConfig } from "../../infra/config";
import { readStackConfigFile, renderStack } from "../../infra/testing/render";
import { startEtcd, startPatroniCluster, TestEtcd, TestPatroniCluster } from "../support/patroni";
import { waitFor } from "../support/ports";

const run = promisify(execFile);
const DEBIAN_PATRONI = "/usr/bin/patroni";
const PINNED_PATRONI = join(__dirname, "..", "..", ".tools", "patroni", "bin", "patroni");

/** The environment the StatefulSet gives each pod (see PatroniCluster). */
const POD_ENV = {
  PATRONI_NAME: "postgres-0",
  PATRONI_KUBERNETES_POD_IP: "10.1.2.3",
  PATRONI_POSTGRESQL_CONNECT_ADDRESS: "postgres-0.postgres.knhk.svc.cluster.local:5432",
  PATRONI_RESTAPI_CONNECT_ADDRESS: "postgres-0.postgres.knhk.svc.cluster.local:8008",
  PATRONI_SUPERUSER_PASSWORD: "validate-only",
  PATRONI_REPLICATION_PASSWORD: "validate-only",
};

async function validate(bin: string, yamlText: string): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), "knhk-patroni-validate-"));
  const file = join(dir, "patroni.yml");
  writeFileSync(file, yamlText);
  try {
    const { stdout, stderr } = await run(bin, ["--validate-config", file], { env: { ...process.env, ...POD_ENV }, timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("patroni --validate-config on the rendered ConfigMap", () => {
  const yamls: Record<string, string> = {};

  beforeAll(async () => {
    for (const stack of ["local", "prod"]) {
      const { k8sObjects } = await renderStack(stack);
      const cm = k8sObjects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "postgres-patroni");
      yamls[stack] = (cm as unknown as { data: Record<string, string> }).data["patroni.yml"];
    }
  }, 120_000);

  it("the pinned Patroni of the image is installed (scripts/install-deps.sh)", () => {
    expect(existsSync(PINNED_PATRONI)).toBe(true);
  });

  it.each(["local", "prod"])("%s: passes Debian's and the pinned Patroni's validator", async (stack) => {
    const debian = await validate(DEBIAN_PATRONI, yamls[stack]);
    expect(debian.out).toBe("");
    expect(debian.code).toBe(0);
    const pinned = await validate(PINNED_PATRONI, yamls[stack]);
    expect(pinned.out).toBe("");
    expect(pinned.code).toBe(0);
  });

  it("the rendered config carries the safety settings and the explicit role labels", () => {
    const doc = parse(yamls.prod, { version: "1.1" });
    expect(doc.bootstrap.dcs).toMatchObject({ synchronous_mode: true, synchronous_mode_strict: true, failsafe_mode: true, ttl: 20, loop_wait: 5, retry_timeout: 5 });
    expect(doc.bootstrap.dcs.postgresql.use_pg_rewind).toBe(true);
    expect(doc.bootstrap.dcs.postgresql.parameters).toMatchObject({ archive_mode: "on", archive_timeout: 300 });
    expect(doc.kubernetes).toMatchObject({ role_label: "role", leader_label_value: "primary", follower_label_value: "replica" });
  });

  it("the validators are not vacuous: a bad value fails both", async () => {
    const broken = yamls.prod.replace(/loop_wait: 5/, "loop_wait: soon").replace(/listen: 0\.0\.0\.0:5432/, "listen: nowhere");
    expect(broken).not.toBe(yamls.prod);
    const debian = await validate(DEBIAN_PATRONI, broken);
    expect(debian.code).not.toBe(0);
    const pinned = await validate(PINNED_PATRONI, broken);
    expect(pinned.code).not.toBe(0);
    expect(pinned.out).toMatch(/loop_wait|listen/);
  });
});

describe("a real Patroni cluster from the builder's output (etcd DCS, 2 members)", () => {
  let etcd: TestEtcd;
  let cluster: TestPatroniCluster;
  const timing = (() => {
    const p = parseStackConfig("prod", readStackConfigFile("prod")).patroni;
    return { ttl: p.ttl, loopWait: p.loopWait, retryTimeout: p.retryTimeout, primaryStartTimeout: p.primaryStartTimeout, maximumLagOnFailover: p.maximumLagOnFailover };
  })();

  beforeAll(async () => {
    etcd = await startEtcd();
    cluster = await startPatroniCluster({ etcd, members: 2, patroniBin: DEBIAN_PATRONI, timing });
  }, 180_000);

  afterAll(async () => {
    await cluster?.destroy();
    await etcd?.destroy();
  });

  it("elects one leader and reports the other member as synchronous standby", async () => {
    const members = await cluster.waitForHealthy(150_000);
    expect(members.map((m) => m.role).sort()).toEqual(["leader", "sync_standby"]);
  }, 160_000);

  it("the leader replicates synchronously (RPO 0) and the post-bootstrap script ran", async () => {
    const status = await cluster.clusterStatus();
    const leader = cluster.members.find((m) => m.name === status.find((s) => s.role === "leader")!.name)!;
    expect(await cluster.psql(leader, "SELECT sync_state FROM pg_stat_replication")).toBe("sync");
    expect(await cluster.psql(leader, "SHOW synchronous_commit")).toBe("on");
    expect(await cluster.psql(leader, "SHOW archive_mode")).toBe("on");
    expect(await cluster.psql(leader, "SELECT datname FROM pg_database WHERE datname = 'knhk'")).toBe("knhk");
    expect(await cluster.psql(leader, "SELECT pg_has_role('postgres_exporter', 'pg_monitor', 'member')")).toBe("t");
    await cluster.psql(leader, "CREATE TABLE receipts_probe (seq int PRIMARY KEY); INSERT INTO receipts_probe VALUES (1)", "knhk");
    const standby = cluster.members.find((m) => m.name !== leader.name)!;
    await waitFor("the row on the standby", async () => (await cluster.psql(standby, "SELECT count(*) FROM receipts_probe", "knhk")) === "1", 30_000);
  }, 60_000);

  it("fails over to the synchronous standby when the leader dies (figure: time to new leader)", async () => {
    const before = await cluster.clusterStatus();
    const oldLeader = before.find((m) => m.role === "leader")!.name;
    const standby = before.find((m) => m.role === "sync_standby")!.name;
    const started = Date.now();
    await cluster.killMember(oldLeader);
    await waitFor(
      "the standby to take over",
      async () => (await cluster.clusterStatus()).some((m) => m.name === standby && m.role === "leader" && m.state === "running"),
      90_000,
      250,
    );
    const newLeader = cluster.members.find((m) => m.name === standby)!;
    // Patroni takes the leader key first, then promotes: wait for the promotion itself.
    await waitFor("promotion", async () => (await cluster.psql(newLeader, "SELECT pg_is_in_recovery()")) === "f", 30_000, 250);
    console.log(`patroni failover: ${standby} promoted ${((Date.now() - started) / 1000).toFixed(1)} s after ${oldLeader} was killed (ttl ${timing.ttl}, loop_wait ${timing.loopWait})`);
    expect(await cluster.psql(newLeader, "SELECT count(*) FROM receipts_probe", "knhk")).toBe("1");
  }, 120_000);
});
