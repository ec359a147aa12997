/**
 * Issue 13: the service rides out a PostgreSQL failover by itself and reports it.
 *
 * A PostgreSQL 15 primary and a streaming standby (pg_basebackup -R) behind a TCP forwarder that
 * stands in for the `postgres-primary` Service. The service runs in-process as knhk_app (a member
 * of knhk_service only) through the forwarder. Drill: observations written, the primary stopped
 * immediately, the forwarder pointed at the standby (/ready 503 "standby", knhk_db_in_recovery 1),
 * the standby promoted: /ready returns by itself, writes succeed, knhk_db_failovers_total 1 and
 * knhk_db_timeline 2. Also: the probe works with the service role's privileges; broken pooled
 * connections are destroyed, not reused; hostile probe rows never set a metric.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync, chownSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { Client } from "pg";
import { breaksConnection } from "../../app/src/db/errors";
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { parseServerRole, SERVER_ROLE_SQL, timelineOfWalFile } from "../../app/src/db/server-role";
import type { Database } from "../../app/src/db/types";
import { createHealthService, standbyReason } from "../../app/src/server/health";
import { FAILOVER_METRICS, failoverRecorder } from "../../app/src/telemetry/failover";
import { ServiceMetrics } from "../../app/src/telemetry/metrics";
import { freePort, waitFor } from "../support/ports";
import { PG_BIN, runAs, startPostgres, type TestPostgres } from "../support/postgres";
import { startOidc, type TestOidc } from "./shell/oidc";
import { createMigratedDatabase, grantServiceRole, startServiceOn, type ServiceUnderTest } from "./shell/service";

jest.setTimeout(300_000);

const SERVICE_LOGIN = "knhk_app";

/** A TCP forwarder on loopback whose target can be switched, like a Service's endpoint moving. */
interface Forwarder {
  readonly port: number;
  point(targetPort: number): void;
  close(): Promise<void>;
}

async function startForwarder(initialTarget: number): Promise<Forwarder> {
  let target = initialTarget;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const server: Server = createServer((downstream) => {
    const upstream = connect(target, "127.0.0.1");
    track(downstream);
    track(upstream);
    // Either side gone (server killed, connection refused, client closed): both go, as a proxy does.
    const end = () => {
      downstream.destroy();
      upstream.destroy();
    };
    for (const socket of [downstream, upstream]) {
      socket.on("error", end);
      socket.on("close", end);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    port,
    point(next) {
      target = next;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A hot standby of `primary` made with pg_basebackup -R, on its own port. */
interface TestStandby {
  readonly port: number;
  psql(sql: string, database?: string): Promise<string>;
  promote(): Promise<void>;
  destroy(): Promise<void>;
}

async function startStandby(primary: TestPostgres): Promise<TestStandby> {
  const root = mkdtempSync(join(tmpdir(), "knhk-pg-standby-"));
  if (process.getuid?.() === 0) {
    const owner = statSync("/var/lib/postgresql");
    chownSync(root, owner.uid, owner.gid);
  }
  const dataDir = join(root, "data");
  const port = await freePort();
  await runAs(join(PG_BIN, "pg_basebackup"), ["-h", primary.host, "-p", String(primary.port), "-U", "postgres", "-D", dataDir, "-R", "-X", "stream", "-c", "fast"], 120_000);
  const options = [`-c listen_addresses=127.0.0.1`, `-c port=${port}`, `-c unix_socket_directories=${root}`, `-c max_connections=200`, `-c hot_standby=on`].join(" ");
  const pgCtl = (...args: string[]) => runAs(join(PG_BIN, "pg_ctl"), ["-D", dataDir, ...args]);
  await pgCtl("-o", options, "-l", join(root, "server.log"), "-w", "-t", "60", "start");
  return {
    port,
    psql: (sql, database = "postgres") => runAs("psql", ["-h", root, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]),
    promote: async () => void (await pgCtl("-w", "-t", "60", "promote")),
    async destroy() {
      await pgCtl("-m", "immediate", "-w", "stop").catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The server role as the least-privileged login sees it, queried directly (not through the service). */
async function roleAs(port: number, database: string) {
  const client = new Client({ host: "127.0.0.1", port, user: SERVICE_LOGIN, database });
  await client.connect();
  try {
    return (await client.query(SERVER_ROLE_SQL)).rows[0];
  } finally {
    await client.end();
  }
}

describe("failover drill: primary lost, standby promoted behind the same address", () => {
  let primary: TestPostgres;
  let standby: TestStandby;
  let forwarder: Forwarder;
  let oidc: TestOidc;
  let svc: ServiceUnderTest;
  let database: string;
  let admin: string;

  const metricsText = async () => (await fetch(`${svc.service.metricsUrl}/metrics`)).text();
  const metric = async (name: string): Promise<number | undefined> => {
    const match = new RegExp(`^${name} (\\S+)$`, "m").exec(await metricsText());
    return match ? Number(match[1]) : undefined;
  };
  const observe = (phase: "before" | "standby" | "after", value: number) =>
    svc.api("/api/v1/observations", { method: "POST", token: admin, json: { event_type: `failover.${phase}`, value, sector: "generic" } });
  const ready = () => svc.api("/ready");

  beforeAll(async () => {
    [primary, oidc] = await Promise.all([startPostgres(), startOidc()]);
    admin = await oidc.roleToken("administrator");
    database = await createMigratedDatabase(primary);
    await grantServiceRole(primary, database);
    standby = await startStandby(primary);
    forwarder = await startForwarder(primary.port);
    const viaForwarder = (user: string) => `postgres://${user}@127.0.0.1:${forwarder.port}/${database}`;
    svc = await startServiceOn(primary, database, {
      ...oidc.env(),
      DATABASE_URL: viaForwarder(SERVICE_LOGIN),
      DATABASE_MIGRATION_URL: viaForwarder("postgres"),
    });
  }, 240_000);

  afterAll(async () => {
    await svc?.stop();
    await forwarder?.close();
    await standby?.destroy();
    await oidc?.close();
    await primary?.destroy();
  });

  test("the probe works with the service role's privileges only: no superuser, no pg_monitor", async () => {
    const privileges = await primary.psql(
      `SELECT rolsuper || ',' || pg_has_role('${SERVICE_LOGIN}', 'pg_monitor', 'member') || ',' || pg_has_role('${SERVICE_LOGIN}', 'knhk_service', 'member') FROM pg_roles WHERE rolname = '${SERVICE_LOGIN}'`,
    );
    expect(privileges.trim()).toBe("false,false,true");
    // Reading the WAL directory takes pg_monitor: closed to it. The probe's way is not.
    const client = new Client({ host: "127.0.0.1", port: primary.port, user: SERVICE_LOGIN, database });
    client.on("error", () => undefined);
    await client.connect();
    try {
      await expect(client.query("SELECT name FROM pg_ls_waldir()")).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }

    expect(parseServerRole(await roleAs(primary.port, database))).toEqual({ inRecovery: false, timeline: 1, server: `127.0.0.1:${primary.port}` });
    expect(parseServerRole(await roleAs(standby.port, database))).toEqual({ inRecovery: true, server: `127.0.0.1:${standby.port}` });
  });

  test("before the drill: ready on timeline 1, no failover, not in recovery", async () => {
    expect((await ready()).status).toBe(200);
    expect(await metric(FAILOVER_METRICS.timeline)).toBe(1);
    expect(await metric(FAILOVER_METRICS.failovers)).toBe(0);
    expect(await metric(FAILOVER_METRICS.inRecovery)).toBe(0);
  });

  test("drill: the service reconnects by itself and reports the failover", async () => {
    for (let i = 0; i < 5; i++) expect((await observe("before", i)).status).toBe(201);
    // Everything written so far is on the standby before the primary goes (no loss to explain).
    const flushed = (await primary.psql("SELECT pg_current_wal_lsn()")).trim();
    await waitFor("the standby to replay the primary's WAL", async () => (await standby.psql(`SELECT pg_last_wal_replay_lsn() >= '${flushed}'::pg_lsn`)).trim() === "t", 60_000);

    await runAs(join(PG_BIN, "pg_ctl"), ["-D", primary.dataDir, "-m", "immediate", "-w", "stop"]);
    await waitFor("/ready to fail while no server answers", async () => (await ready()).status === 503, 60_000);
    expect((await ready()).body.reason).toMatch(/^database unreachable: /);

    forwarder.point(standby.port);
    await waitFor("/ready to report the standby", async () => (await ready()).body?.reason === standbyReason(`127.0.0.1:${standby.port}`), 60_000);
    const onStandby = await ready();
    expect(onStandby.status).toBe(503);
    expect(onStandby.body.reason).toBe(`connected to a standby (read-only): 127.0.0.1:${standby.port}`);
    expect(await metric(FAILOVER_METRICS.inRecovery)).toBe(1);
    expect(await metric(FAILOVER_METRICS.timeline)).toBe(1);
    expect((await observe("standby", 0)).status).not.toBe(201);

    await standby.promote();
    await waitFor("/ready to return by itself after the promotion", async () => (await ready()).status === 200, 60_000);
    await waitFor("writes to succeed again", async () => (await observe("after", 0)).status === 201, 60_000);
    for (let i = 0; i < 3; i++) expect((await observe("after", i + 1)).status).toBe(201);

    expect(await metric(FAILOVER_METRICS.failovers)).toBe(1);
    expect(await metric(FAILOVER_METRICS.timeline)).toBe(2);
    expect(await metric(FAILOVER_METRICS.inRecovery)).toBe(0);
    const counts = await standby.psql("SELECT string_agg(event_type || '=' || n, ',' ORDER BY event_type) FROM (SELECT event_type, count(*) AS n FROM observations WHERE event_type LIKE 'failover.%' GROUP BY event_type) c", database);
    expect(counts.trim()).toMatch(/^failover\.after=\d+,failover\.before=5$/);
  });
});

describe("the pool destroys connections that broke instead of reusing them", () => {
  let pg: TestPostgres;
  let db: ReturnType<typeof createPostgresDatabase>;
  let database: string;

  beforeAll(async () => {
    pg = await startPostgres();
    database = "pool_recovery";
    await pg.createDatabase(database);
    db = createPostgresDatabase({ connectionString: pg.url(database), max: 2, min: 0 });
  }, 120_000);

  afterAll(async () => {
    await db?.close();
    await pg?.destroy();
  });

  const backend = async () => (await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;

  test("a transaction whose backend is terminated mid-query fails, and its connection leaves the pool", async () => {
    let victim = 0;
    const running = db.transaction(async (tx) => {
      victim = (await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      await tx.query("SELECT pg_sleep(60)");
    });
    running.catch(() => undefined);
    await waitFor("the transaction to run", async () => victim !== 0);
    await pg.psql(`SELECT pg_terminate_backend(${victim})`);
    await expect(running).rejects.toThrow(/terminat/i);
    expect(db.poolStats().total).toBe(0);
    const next = await db.transaction(async (tx) => (await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid);
    expect(next).not.toBe(victim);
  });

  test("idle connections of a restarted server are dropped; the next queries reconnect", async () => {
    const before = await backend();
    await Promise.all([db.transaction((tx) => tx.query("SELECT 1")), db.query("SELECT 1")]);
    await pg.stop();
    await pg.start();
    await waitFor("a query to succeed after the restart", async () => (await backend()) > 0, 30_000);
    expect(await backend()).not.toBe(before);
    await expect(db.transaction(async (tx) => (await tx.query<{ one: number }>("SELECT 1 AS one")).rows[0].one)).resolves.toBe(1);
  });

  test("an ordinary error keeps the connection; a connection-level error does not", () => {
    const sqlError = Object.assign(new Error("duplicate key value violates unique constraint"), { severity: "ERROR", code: "23505" });
    const readOnly = Object.assign(new Error("cannot execute INSERT in a read-only transaction"), { severity: "ERROR", code: "25006" });
    const terminated = Object.assign(new Error("terminating connection due to administrator command"), { severity: "FATAL", code: "57P01" });
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect([sqlError, readOnly].map(breaksConnection)).toEqual([false, false]);
    expect([terminated, reset, new Error("Connection terminated unexpectedly")].map(breaksConnection)).toEqual([true, true, true]);
    expect([undefined, null, "Connection terminated", 42].map(breaksConnection)).toEqual([false, false, false, false]);
  });
});

describe("timeline parsing and hostile probe rows", () => {
  const hex8 = fc.integer({ min: 1, max: 0xffffffff }).map((n) => n.toString(16).toUpperCase().padStart(8, "0"));
  const hex16 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => n.toString(16).toUpperCase().padStart(16, "0"));

  test("the first 8 hex digits of a WAL file name are the timeline", () => {
    expect(timelineOfWalFile("000000010000000000000003")).toBe(1);
    expect(timelineOfWalFile("0000000A00000002000000FF")).toBe(10);
    expect(timelineOfWalFile("0000000a00000002000000ff")).toBe(10);
    fc.assert(fc.property(hex8, hex16, (tli, rest) => timelineOfWalFile(tli + rest) === Number.parseInt(tli, 16)));
  });

  test("non-hex, short, long, null and timeline 0 are not timelines", () => {
    for (const bad of [null, undefined, "", "00000001", "0000000100000000000000", "000000010000000000000003X", "G00000010000000000000003", "000000000000000000000003", " 000000010000000000000003", 1, {}])
      expect(timelineOfWalFile(bad)).toBeUndefined();
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const timeline = timelineOfWalFile(value);
        return timeline === undefined || (typeof value === "string" && /^[0-9A-F]{24}$/i.test(value) && timeline >= 1);
      }),
    );
  });

  /** A Database whose every query returns `row` (the probe's transport is not under test here). */
  const answering = (row: () => unknown): Database => {
    const result = async () => ({ rows: [row()] as never[], rowCount: 1 });
    return { kind: "postgres", query: result, exec: async () => undefined, transaction: (fn) => fn({ query: result, exec: async () => undefined }), session: (fn) => fn({ query: result, exec: async () => undefined }), close: async () => undefined };
  };
  const value = async (metrics: ServiceMetrics, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec((await metrics.exposition()).body)![1]);

  const hostileRow = fc.oneof(
    fc.anything(),
    fc.record({
      in_recovery: fc.oneof(fc.constant(false), fc.constant("f"), fc.constant(0), fc.constant(null)),
      wal_file: fc.oneof(fc.constant(null), fc.string(), fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), maxLength: 23 }), fc.constant("000000000000000000000003"), fc.constant("ZZZZZZZZ0000000000000003"), fc.integer()),
      server_addr: fc.oneof(fc.string(), fc.constant(null)),
      server_port: fc.anything(),
    }),
  );

  test("no hostile row throws, and none moves a metric", async () => {
    const metrics = new ServiceMetrics(undefined, { defaultMetrics: false });
    let row: unknown = { in_recovery: false, wal_file: "000000030000000000000001", server_addr: "10.0.0.1", server_port: 5432 };
    const health = createHealthService({ db: answering(() => row), redis: async () => "healthy", onServerRole: failoverRecorder(metrics) });
    expect(await health.ready()).toEqual({ ready: true });
    expect(await value(metrics, FAILOVER_METRICS.timeline)).toBe(3);

    await fc.assert(
      fc.asyncProperty(hostileRow, async (hostile) => {
        // A false in_recovery with a valid WAL name is a real primary row, not garbage.
        fc.pre(parseServerRole(hostile) === undefined);
        row = hostile;
        expect(() => parseServerRole(hostile)).not.toThrow();
        await health.ready();
        await health.check();
        expect(await value(metrics, FAILOVER_METRICS.timeline)).toBe(3);
        expect(await value(metrics, FAILOVER_METRICS.failovers)).toBe(0);
        expect(await value(metrics, FAILOVER_METRICS.inRecovery)).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  test("server addresses from the row are kept only when they look like an address", () => {
    const primaryRow = (server_addr: unknown, server_port: unknown) => parseServerRole({ in_recovery: true, wal_file: null, server_addr, server_port });
    expect(primaryRow("127.0.0.1", 5432)).toEqual({ inRecovery: true, server: "127.0.0.1:5432" });
    expect(primaryRow("::1", 5432)).toEqual({ inRecovery: true, server: "[::1]:5432" });
    expect(primaryRow(null, null)).toEqual({ inRecovery: true });
    expect(primaryRow("evil host\n; rm -rf", 5432)).toEqual({ inRecovery: true });
    expect(primaryRow("127.0.0.1", 70000)).toEqual({ inRecovery: true, server: "127.0.0.1" });
  });

  test("a promotion counts once: the first observation only sets the gauge, an old primary answering again does not count", async () => {
    const metrics = new ServiceMetrics(undefined, { defaultMetrics: false });
    const record = failoverRecorder(metrics);
    record({ inRecovery: false, timeline: 4 });
    expect(await value(metrics, FAILOVER_METRICS.failovers)).toBe(0);
    record({ inRecovery: true });
    expect(await value(metrics, FAILOVER_METRICS.inRecovery)).toBe(1);
    expect(await value(metrics, FAILOVER_METRICS.timeline)).toBe(4);
    for (const timeline of [5, 4, 5, 5]) record({ inRecovery: false, timeline });
    expect(await value(metrics, FAILOVER_METRICS.failovers)).toBe(1);
    expect(await value(metrics, FAILOVER_METRICS.timeline)).toBe(5);
    expect(await value(metrics, FAILOVER_METRICS.inRecovery)).toBe(0);
  });
});
