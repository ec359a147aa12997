/**
 * A real etcd + Patroni cluster on loopback for tests, booted from the project's patroni.yml
 * builder (infra/render/patroni.ts).
 *
 *   const etcd = await startEtcd();                       // etcd v3 on free loopback ports
 *   const cluster = await startPatroniCluster({ etcd, members: 2, patroni: PINNED_PATRONI, timing });
 *   await cluster.waitForHealthy();                       // one leader + one sync standby
 *   await cluster.clusterStatus();                        // GET /cluster of any member
 *   await cluster.killMember("pg0");                      // SIGKILL Patroni and its PostgreSQL (node death)
 *   await cluster.startMember("pg0");                     // the node comes back
 *   await cluster.crashPostgres("pg0");                   // kill -9 of the postmaster only
 *   await cluster.destroy(); await etcd.destroy();
 *
 * PostgreSQL refuses root: when the tests run as root, Patroni runs as the `postgres` OS user.
 * Each process runs in its own process group (test/support/processes.ts); PostgreSQL starts its
 * own session under Patroni, so killMember() and destroy() also stop it with pg_ctl
 * (patroni-member.ts holds what both Patroni harnesses do to a member).
 */
import { chmodSync, chownSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildPostBootstrapScript, PatroniTiming, renderPatroniYaml, type PostBootstrapInput, type TlsFiles } from "../../infra/render/patroni";
import { POSTGRES } from "../../infra/render/topology";

/** The deployed bootstrap's roles and database, with the password variables this harness sets. */
export const TEST_POST_BOOTSTRAP: PostBootstrapInput = {
  database: POSTGRES.database,
  exporterUser: "postgres_exporter",
  exporterPasswordEnv: "EXPORTER_PASSWORD",
  roles: { service: POSTGRES.serviceDbRole, owner: POSTGRES.ownerDbUser, vaultAdmin: POSTGRES.vaultAdminDbUser, vaultAdminPasswordEnv: "VAULT_ADMIN_PASSWORD" },
};
import { freePort, waitFor } from "./ports";
import { PG_BIN } from "./postgres";
import { asRoot, crashPostmaster, restCall, psqlAsPostgres, stopPostgresNow } from "./patroni-member";
import { spawnTracked, type TrackedProcess } from "./processes";

export function postgresOwner(): { uid: number; gid: number } {
  const st = statSync("/var/lib/postgresql");
  return { uid: st.uid, gid: st.gid };
}

/** How to run one Patroni: a command, the arguments before the config file, extra environment. */
export interface PatroniLauncher {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

/** Debian's Patroni (3.0.2): the validator of the rendered config. */
export const DEBIAN_PATRONI: PatroniLauncher = { command: "/usr/bin/patroni", args: [] };

const PINNED_SITE_PACKAGES = join(__dirname, "..", "..", ".tools", "patroni", "lib", "python3.11", "site-packages");
/**
 * The pinned Patroni 4.0.7 the image deploys (scripts/install-deps.sh puts it in .tools/patroni).
 * The venv's interpreter lives under /root, which the postgres user cannot read: run the venv's
 * packages with Debian's python3.11 (the same minor version, so its binary wheels load).
 */
export const PINNED_PATRONI: PatroniLauncher = {
  command: "/usr/bin/python3.11",
  args: ["-c", "import sys; from patroni.__main__ import main; sys.argv[0] = 'patroni'; sys.exit(main())"],
  env: { PYTHONPATH: PINNED_SITE_PACKAGES },
};
export const PINNED_PATRONI_PACKAGE = join(PINNED_SITE_PACKAGES, "patroni");

export function spawnLogged(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, asPostgres: boolean): TrackedProcess {
  const [cmd, argv] = asPostgres && asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  const out = openSync(logFile, "a");
  try {
    return spawnTracked(cmd, argv, { env, stdio: ["ignore", out, out] });
  } finally {
    closeSync(out);
  }
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
  const etcd = spawnLogged(
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
  await waitFor("etcd health", async () => (await restCall(clientPort, "/health").catch(() => ({ status: 0 }))).status === 200, 30_000, 200);
  return {
    clientUrl,
    hostPort: `127.0.0.1:${clientPort}`,
    async destroy() {
      await etcd.stop("SIGTERM");
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
  member(name: string): PatroniMember;
  /** HTTP status of `path` on a member's REST API. */
  restStatus(name: string, path: string): Promise<number>;
  /** Node death: SIGKILL Patroni's process group, then stop its PostgreSQL immediately. */
  killMember(name: string): Promise<void>;
  /** Starts a member's Patroni again on its existing data directory (the node came back). */
  startMember(name: string): Promise<void>;
  /** kill -9 of the member's postmaster (PostgreSQL crash; Patroni keeps running). Returns its PID. */
  crashPostgres(name: string): Promise<number>;
  destroy(): Promise<void>;
}

export interface PatroniClusterOptions {
  readonly etcd: TestEtcd;
  readonly members: number;
  /** Which Patroni runs the members (PINNED_PATRONI: the version the image deploys). */
  readonly patroni: PatroniLauncher;
  readonly timing: PatroniTiming;
  /**
   * PostgreSQL serves TLS with these files (then pg_hba has only `hostssl` lines for TCP, as in
   * the stacks that mount a certificate); the harness gives them to the postgres OS user.
   */
  readonly tls?: TlsFiles;
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
    PATRONI_REWIND_PASSWORD: "test-rewind-password",
    EXPORTER_PASSWORD: "test-exporter-password",
    VAULT_ADMIN_PASSWORD: "test-vault-admin-password",
  };
  let tls: TlsFiles | undefined;
  if (opts.tls) {
    // Copies inside the cluster's folder, readable by the postgres OS user only (PostgreSQL refuses a wider key).
    const dir = join(root, "tls");
    mkdirSync(dir, { mode: 0o700 });
    own(dir);
    const copy = (from: string, name: string) => {
      const to = join(dir, name);
      copyFileSync(from, to);
      chmodSync(to, 0o600);
      own(to);
      return to;
    };
    tls = { certFile: copy(opts.tls.certFile, "server.crt"), keyFile: copy(opts.tls.keyFile, "server.key"), caFile: copy(opts.tls.caFile, "ca.crt") };
  }
  const postBootstrap = join(root, "post-bootstrap.sh");
  writeFileSync(postBootstrap, buildPostBootstrapScript(TEST_POST_BOOTSTRAP), { mode: 0o755 });

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
          rewindUser: "rewind_user",
          parameters: { max_connections: 50, shared_buffers: "32MB" },
          allowedCidrs: ["127.0.0.1/32"],
          ...(tls ? { tls } : {}),
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

  const children = new Map<string, TrackedProcess>();
  const memberEnv = { ...process.env, ...opts.patroni.env, ...env, PATH: `${PG_BIN}:${process.env.PATH}` };
  const startMember = (m: PatroniMember) => {
    children.set(m.name, spawnLogged(opts.patroni.command, [...opts.patroni.args, m.configFile], memberEnv, join(root, `${m.name}.log`), true));
  };
  const memberNamed = (name: string) => {
    const m = members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  };
  const stopPostgres = (m: PatroniMember) => stopPostgresNow(join(m.dir, "data"));
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
          const { body } = await restCall(m.apiPort, "/cluster");
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
    psql: (member, sql, database) => psqlAsPostgres(member, sql, database),
    member: memberNamed,
    restStatus: async (name, path) => (await restCall(memberNamed(name).apiPort, path)).status,
    async killMember(name) {
      const m = memberNamed(name);
      await children.get(name)?.stop("SIGKILL");
      children.delete(name);
      await stopPostgres(m);
    },
    async startMember(name) {
      if (children.has(name)) throw new Error(`${name} is running`);
      startMember(memberNamed(name));
    },
    crashPostgres: async (name) => crashPostmaster(join(memberNamed(name).dir, "data")),
    async destroy() {
      for (const [name, child] of children) {
        await child.stop("SIGTERM", 30_000);
        children.delete(name);
      }
      for (const m of members) await stopPostgres(m);
      rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}
