/**
 * A real etcd + Patroni cluster on loopback for tests, booted from the project's patroni.yml
 * builder (infra/render/patroni.ts).
 *
 *   const etcd = await startEtcd();                       // etcd v3 on free loopback ports
 *   const cluster = await startPatroniCluster({ etcd, members: 2, patroniBin: "patroni" });
 *   await cluster.waitForHealthy();                       // one leader + one sync standby
 *   await cluster.clusterStatus();                        // GET /cluster of any member
 *   await cluster.killMember("pg0");                      // SIGKILL Patroni and its PostgreSQL
 *   await cluster.destroy(); await etcd.destroy();
 *
 * PostgreSQL refuses root: when the tests run as root, Patroni runs as the `postgres` OS user.
 * Each process runs in its own process group so that destroy() also ends its PostgreSQL.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildPostBootstrapScript, PatroniTiming, renderPatroniYaml } from "../../infra/render/patroni";
import { freePort, waitFor } from "./ports";
import { PG_BIN } from "./postgres";

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

function postgresOwner(): { uid: number; gid: number } {
  const st = statSync("/var/lib/postgresql");
  return { uid: st.uid, gid: st.gid };
}

function spawnGroup(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, asPostgres: boolean): ChildProcess {
  const [cmd, argv] = asPostgres && asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  const out = require("node:fs").openSync(logFile, "a") as number;
  return spawn(cmd, argv, { env, detached: true, stdio: ["ignore", out, out] });
}

async function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((r) => child.once("exit", r));
  try {
    process.kill(-child.pid, signal);
  } catch {
    return;
  }
  await exited;
}

export function httpJson(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 3000 }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`timeout: ${url}`)));
    req.on("error", reject);
  });
}

export interface TestEtcd {
  readonly clientUrl: string;
  readonly hostPort: string;
  destroy(): Promise<void>;
}

export async function startEtcd(): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), "knhk-etcd-"));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = spawnGroup(
    "etcd",
    [
      "--name", "test",
      "--data-dir", join(dir, "data"),
      "--listen-client-urls", clientUrl,
      "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", peerUrl,
      "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", `test=${peerUrl}`,
      "--log-level", "warn",
    ],
    { ...process.env, ETCD_UNSUPPORTED_ARCH: "" },
    join(dir, "etcd.log"),
    false,
  );
  await waitFor("etcd health", async () => (await httpJson(`${clientUrl}/health`)).status === 200, 30_000, 200);
  return {
    clientUrl,
    hostPort: `127.0.0.1:${clientPort}`,
    async destroy() {
      await killGroup(child, "SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PatroniMember {
  readonly name: string;
  readonly pgPort: number;
  readonly apiPort: number;
  readonly dir: string;
  readonly configFile: string;
  readonly socketDir: string;
}

export interface ClusterMemberStatus {
  readonly name: string;
  readonly role: string;
  readonly state: string;
}

export interface TestPatroniCluster {
  readonly scope: string;
  readonly members: readonly PatroniMember[];
  /** Environment the members run with (passwords as PATRONI_* variables, like the pods). */
  readonly env: Readonly<Record<string, string>>;
  clusterStatus(): Promise<ClusterMemberStatus[]>;
  /** Waits for one leader and `members - 1` running standbys, at least one of them synchronous. */
  waitForHealthy(timeoutMs?: number): Promise<ClusterMemberStatus[]>;
  psql(member: PatroniMember, sql: string, database?: string): Promise<string>;
  killMember(name: string): Promise<void>;
  destroy(): Promise<void>;
}

export interface PatroniClusterOptions {
  readonly etcd: TestEtcd;
  readonly members: number;
  /** `patroni` executable (Debian's, or the pinned PyPI one). */
  readonly patroniBin: string;
  readonly timing: PatroniTiming;
}

export async function startPatroniCluster(opts: PatroniClusterOptions): Promise<TestPatroniCluster> {
  const root = mkdtempSync(join(tmpdir(), "knhk-patroni-"));
  const owner = postgresOwner();
  const own = (p: string) => asRoot && chownSync(p, owner.uid, owner.gid);
  own(root);
  const scope = `knhk-test-${process.pid}`;
  const env: Record<string, string> = {
    PATRONI_SUPERUSER_PASSWORD: "test-superuser-password",
    PATRONI_REPLICATION_PASSWORD: "test-replication-password",
    EXPORTER_PASSWORD: "test-exporter-password",
  };
  const postBootstrap = join(root, "post-bootstrap.sh");
  writeFileSync(postBootstrap, buildPostBootstrapScript({ database: "knhk", exporterUser: "postgres_exporter", exporterPasswordEnv: "EXPORTER_PASSWORD" }), { mode: 0o755 });

  const members: PatroniMember[] = [];
  for (let i = 0; i < opts.members; i++) {
    const name = `pg${i}`;
    const dir = join(root, name);
    mkdirSync(dir, { mode: 0o700 });
    own(dir);
    const pgPort = await freePort();
    const apiPort = await freePort();
    const configFile = join(dir, "patroni.yml");
    writeFileSync(
      configFile,
      renderPatroniYaml({
        scope,
        name,
        dcs: { type: "etcd3", hosts: [opts.etcd.hostPort] },
        timing: opts.timing,
        restApi: { listen: `127.0.0.1:${apiPort}`, connectAddress: `127.0.0.1:${apiPort}` },
        postgresql: {
          listen: `127.0.0.1:${pgPort}`,
          connectAddress: `127.0.0.1:${pgPort}`,
          dataDir: join(dir, "data"),
          binDir: PG_BIN,
          socketDir: dir,
          pgpassFile: join(dir, "pgpass"),
          superuser: "postgres",
          replicationUser: "replicator",
          parameters: { max_connections: 50, shared_buffers: "32MB" },
          allowedCidrs: ["127.0.0.1/32"],
        },
        // WAL archiving is covered by the pgBackRest suite; here WAL is accepted and dropped.
        archive: { command: "/bin/true", timeoutSeconds: 300 },
        postBootstrapScript: postBootstrap,
        watchdog: "off",
      }),
    );
    own(configFile);
    members.push({ name, pgPort, apiPort, dir, configFile, socketDir: dir });
  }

  const children = new Map<string, ChildProcess>();
  const startMember = (m: PatroniMember) => {
    children.set(m.name, spawnGroup(opts.patroniBin, [m.configFile], { ...process.env, ...env, PATH: `${PG_BIN}:${process.env.PATH}` }, join(root, `${m.name}.log`), true));
  };
  // All at once, as a StatefulSet with Parallel pod management: one wins the initialize key
  // and bootstraps (its post-bootstrap script must not wait for a standby), the others clone it.
  for (const m of members) startMember(m);

  const cluster: TestPatroniCluster = {
    scope,
    members,
    env,
    async clusterStatus() {
      for (const m of members) {
        if (!children.has(m.name)) continue;
        try {
          const { body } = await httpJson(`http://127.0.0.1:${m.apiPort}/cluster`);
          return ((body as { members: ClusterMemberStatus[] }).members ?? []).map(({ name, role, state }) => ({ name, role, state }));
        } catch {
          // try the next member
        }
      }
      throw new Error("no Patroni member answers /cluster");
    },
    async waitForHealthy(timeoutMs = 120_000) {
      let last: ClusterMemberStatus[] = [];
      await waitFor(
        "a leader and a synchronous standby",
        async () => {
          last = await cluster.clusterStatus();
          const leaders = last.filter((m) => m.role === "leader" && m.state === "running");
          const standbys = last.filter((m) => m.role !== "leader" && (m.state === "streaming" || m.state === "running"));
          return leaders.length === 1 && standbys.length === opts.members - 1 && standbys.some((m) => m.role === "sync_standby");
        },
        timeoutMs,
        500,
      );
      return last;
    },
    async psql(member, sql, database = "postgres") {
      const args = ["-X", "-h", member.socketDir, "-p", String(member.pgPort), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql];
      const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(PG_BIN, "psql"), ...args]] : [join(PG_BIN, "psql"), args];
      const { stdout } = await run(cmd, argv, { timeout: 30_000 });
      return stdout.trim();
    },
    async killMember(name) {
      await killGroup(children.get(name), "SIGKILL");
      children.delete(name);
      const m = members.find((x) => x.name === name);
      // Patroni's PostgreSQL may outlive a SIGKILLed Patroni (own session): stop it hard too.
      if (m) await run(asRoot ? "runuser" : join(PG_BIN, "pg_ctl"), [...(asRoot ? ["-u", "postgres", "--", join(PG_BIN, "pg_ctl")] : []), "-D", join(m.dir, "data"), "-m", "immediate", "stop"]).catch(() => undefined);
    },
    async destroy() {
      for (const [name, child] of children) {
        await killGroup(child, "SIGTERM");
        children.delete(name);
      }
      for (const m of members) {
        await run(asRoot ? "runuser" : join(PG_BIN, "pg_ctl"), [...(asRoot ? ["-u", "postgres", "--", join(PG_BIN, "pg_ctl")] : []), "-D", join(m.dir, "data"), "-m", "immediate", "stop"]).catch(() => undefined);
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}
