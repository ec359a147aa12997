/**
 * The generated patroni.yml, checked by Patroni itself:
 * - the Kubernetes variant rendered for every stack passes `patroni --validate-config` of
 *   Debian's Patroni and of the pinned Patroni the image deploys (which knows the role label
 *   keys the Services depend on);
 * - the etcd variant boots a real 2-member cluster (Debian postgresql-15 + the pinned Patroni
 *   4.0.7 + etcd on loopback) that elects a leader, reports a synchronous standby, runs the
 *   post-bootstrap script, takes the leader out of the readiness path while its PostgreSQL is
 *   crashed, fails over to the standby when the leader dies, and streams to the old leader again
 *   once that node is back (pg_rewind with the rewind user's own credentials).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { POSTGRES } from "../../infra/render/topology";
import { PINNED_PATRONI, PINNED_PATRONI_PACKAGE, startEtcd, startPatroniCluster, TEST_POST_BOOTSTRAP, TestEtcd, TestPatroniCluster } from "../support/patroni";
import { waitFor } from "../support/ports";
import { PG_BIN } from "../support/postgres";
import { renderTestStack, testStackConfig } from "../support/stack-identifiers";

const run = promisify(execFile);
const DEBIAN_PATRONI = "/usr/bin/patroni";
const PINNED_PATRONI_BIN = join(__dirname, "..", "..", ".tools", "patroni", "bin", "patroni");

/** The environment the StatefulSet gives each pod (see PatroniCluster). */
const POD_ENV = {
  PATRONI_NAME: "postgres-0",
  PATRONI_KUBERNETES_POD_IP: "10.1.2.3",
  PATRONI_POSTGRESQL_CONNECT_ADDRESS: "postgres-0.postgres.knhk.svc.cluster.local:5432",
  PATRONI_RESTAPI_CONNECT_ADDRESS: "postgres-0.postgres.knhk.svc.cluster.local:8008",
  PATRONI_SUPERUSER_PASSWORD: "validate-only",
  PATRONI_REPLICATION_PASSWORD: "validate-only",
  PATRONI_REWIND_PASSWORD: "validate-only",
};

/** Whether PostgreSQL on this port accepts connections (pg_isready exits 0). */
async function acceptsConnections(port: number): Promise<boolean> {
  return run(join(PG_BIN, "pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(port)], { timeout: 10_000 }).then(
    () => true,
    () => false,
  );
}

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
      const { k8sObjects } = await renderTestStack(stack);
      const cm = k8sObjects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "postgres-patroni");
      yamls[stack] = (cm as unknown as { data: Record<string, string> }).data["patroni.yml"];
    }
  }, 120_000);

  it("the pinned Patroni of the image is installed (scripts/install-deps.sh)", () => {
    expect(existsSync(PINNED_PATRONI_BIN)).toBe(true);
    expect(existsSync(PINNED_PATRONI_PACKAGE)).toBe(true);
  });

  it.each(["local", "prod"])("%s: passes Debian's and the pinned Patroni's validator", async (stack) => {
    const debian = await validate(DEBIAN_PATRONI, yamls[stack]);
    expect(debian.out).toBe("");
    expect(debian.code).toBe(0);
    const pinned = await validate(PINNED_PATRONI_BIN, yamls[stack]);
    expect(pinned.out).toBe("");
    expect(pinned.code).toBe(0);
  });

  it("the rendered config carries the safety settings and the explicit role labels", () => {
    const doc = parse(yamls.prod, { version: "1.1" });
    expect(doc.bootstrap.dcs).toMatchObject({ synchronous_mode: true, synchronous_mode_strict: true, failsafe_mode: true, ttl: 20, loop_wait: 2, retry_timeout: 5 });
    expect(doc.postgresql.authentication.rewind).toEqual({ username: "rewind_user" });
    expect(doc.bootstrap.dcs.postgresql.use_pg_rewind).toBe(true);
    expect(doc.bootstrap.dcs.postgresql.parameters).toMatchObject({ archive_mode: "on", archive_timeout: 300 });
    expect(doc.kubernetes).toMatchObject({ role_label: "role", leader_label_value: "primary", follower_label_value: "replica" });
  });

  it("the validators are not vacuous: a bad value fails both", async () => {
    const broken = yamls.prod.replace(/loop_wait: 4/, "loop_wait: soon").replace(/listen: 0\.0\.0\.0:5432/, "listen: nowhere");
    expect(broken).not.toBe(yamls.prod);
    const debian = await validate(DEBIAN_PATRONI, broken);
    expect(debian.code).not.toBe(0);
    const pinned = await validate(PINNED_PATRONI_BIN, broken);
    expect(pinned.code).not.toBe(0);
    expect(pinned.out).toMatch(/loop_wait|listen/);
  });
});

describe("a real Patroni cluster from the builder's output (etcd DCS, 2 members)", () => {
  let etcd: TestEtcd;
  let cluster: TestPatroniCluster;
  /** The path the StatefulSet's readiness probe asks the patroni container (decides the Services' endpoints). */
  let readinessPath: string;
  let oldLeader: string;
  let newLeader: string;
  const timing = (() => {
    const p = testStackConfig("prod").patroni;
    return { ttl: p.ttl, loopWait: p.loopWait, retryTimeout: p.retryTimeout, primaryStartTimeout: p.primaryStartTimeout, maximumLagOnFailover: p.maximumLagOnFailover };
  })();

  beforeAll(async () => {
    const { k8sObjects } = await renderTestStack("prod");
    const sts = k8sObjects.find((o) => o.kind === "StatefulSet" && o.metadata.name === "postgres") as unknown as {
      spec: { template: { spec: { containers: Array<{ name: string; readinessProbe: { httpGet: { path: string } } }> } } };
    };
    readinessPath = sts.spec.template.spec.containers.find((c) => c.name === "patroni")!.readinessProbe.httpGet.path;
    etcd = await startEtcd();
    cluster = await startPatroniCluster({ etcd, members: 2, patroni: PINNED_PATRONI, timing });
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

  it("pg_stat_statements is preloaded, and the exporter's role reads every user's statements in the database it connects to", async () => {
    const leader = cluster.member((await cluster.clusterStatus()).find((m) => m.role === "leader")!.name);
    expect(await cluster.psql(leader, "SHOW shared_preload_libraries")).toBe("pg_stat_statements");
    expect(await cluster.psql(leader, "SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'", POSTGRES.database)).toBe("pg_stat_statements");
    // The stat_statements collector's query (PostgreSQL 13+), as the exporter's login, in `postgres`:
    // it sees the statement the superuser ran in the service's database, with its text.
    const seen = await cluster.psql(
      leader,
      `SET ROLE ${TEST_POST_BOOTSTRAP.exporterUser}; ` +
        "SELECT count(*) FROM pg_stat_statements JOIN pg_database ON pg_database.oid = pg_stat_statements.dbid " +
        `WHERE pg_database.datname = '${POSTGRES.database}' AND pg_stat_statements.query LIKE 'INSERT INTO receipts_probe%' AND pg_stat_statements.calls > 0 AND pg_stat_statements.total_exec_time > 0`,
    );
    expect(seen.split("\n").pop()).toBe("1");
  });

  it("while PostgreSQL is crashed on the leader, the probed readiness path answers non-200 (the leader lock keeps /primary at 200)", async () => {
    const leader = cluster.member((await cluster.clusterStatus()).find((m) => m.role === "leader")!.name);
    expect(await cluster.restStatus(leader.name, readinessPath)).toBe(200);
    const postmaster = await cluster.crashPostgres(leader.name);
    await waitFor("the postmaster to die", async () => !existsSync(`/proc/${postmaster}`), 10_000, 20);
    const whileDown: Array<{ readiness: number; primary: number }> = [];
    // Sample until Patroni has PostgreSQL back; a sample counts only if PostgreSQL was still down after it.
    while (whileDown.length < 20) {
      const sample = { readiness: await cluster.restStatus(leader.name, readinessPath), primary: await cluster.restStatus(leader.name, "/primary") };
      if (await acceptsConnections(leader.pgPort)) break;
      whileDown.push(sample);
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`patroni crash drill on ${leader.name}: while PostgreSQL was down ${readinessPath} answered ${[...new Set(whileDown.map((s) => s.readiness))].join("/")}, /primary ${[...new Set(whileDown.map((s) => s.primary))].join("/")}`);
    expect(whileDown.length).toBeGreaterThan(0);
    expect(whileDown.filter((s) => s.readiness === 200)).toEqual([]);
    // Patroni restarts the crashed primary (or fails over after primary_start_timeout): healthy again either way.
    await cluster.waitForHealthy(120_000);
    await waitFor("the leader's readiness", async () => {
      const current = (await cluster.clusterStatus()).find((m) => m.role === "leader")!.name;
      return (await cluster.restStatus(current, readinessPath)) === 200;
    }, 60_000, 250);
  }, 200_000);

  it("fails over to the synchronous standby when the leader dies (figure: time to new leader)", async () => {
    const before = await cluster.clusterStatus();
    oldLeader = before.find((m) => m.role === "leader")!.name;
    const standby = before.find((m) => m.role === "sync_standby")!.name;
    newLeader = standby;
    const started = Date.now();
    await cluster.killMember(oldLeader);
    await waitFor(
      "the standby to take over",
      async () => (await cluster.clusterStatus()).some((m) => m.name === standby && m.role === "leader" && m.state === "running"),
      90_000,
      250,
    );
    const promoted = cluster.member(standby);
    // Patroni takes the leader key first, then promotes: wait for the promotion itself.
    await waitFor("promotion", async () => (await cluster.psql(promoted, "SELECT pg_is_in_recovery()")) === "f", 30_000, 250);
    console.log(`patroni failover: ${standby} promoted ${((Date.now() - started) / 1000).toFixed(1)} s after ${oldLeader} was killed (ttl ${timing.ttl}, loop_wait ${timing.loopWait})`);
    expect(await cluster.psql(promoted, "SELECT count(*) FROM receipts_probe", "knhk")).toBe("1");
  }, 120_000);

  it("the old leader comes back, rewinds and streams from the new leader again (figure: time to rejoin)", async () => {
    const started = Date.now();
    await cluster.startMember(oldLeader);
    const leader = cluster.member(newLeader);
    const rejoined = cluster.member(oldLeader);
    // Listed by Patroni is not enough: the new leader must have a WAL sender streaming to it.
    await waitFor(
      `${oldLeader} streaming from ${newLeader}`,
      async () => (await cluster.psql(leader, `SELECT state FROM pg_stat_replication WHERE application_name = '${oldLeader}'`)) === "streaming",
      240_000,
      500,
    );
    console.log(`patroni rejoin: ${oldLeader} streaming from ${newLeader} ${((Date.now() - started) / 1000).toFixed(1)} s after it was started again`);
    expect(await cluster.psql(rejoined, "SELECT status FROM pg_stat_wal_receiver")).toBe("streaming");
    expect(await cluster.psql(rejoined, "SELECT pg_is_in_recovery()")).toBe("t");
    // Strict synchronous mode: this commit returns only once a synchronous standby (the rejoined member) has it.
    await cluster.psql(leader, "INSERT INTO receipts_probe VALUES (2)", "knhk");
    await waitFor("the row on the rejoined member", async () => (await cluster.psql(rejoined, "SELECT count(*) FROM receipts_probe", "knhk")) === "2", 30_000);
  }, 260_000);
});
