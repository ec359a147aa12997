/**
 * Throwaway PostgreSQL 15 clusters for tests (Debian's postgresql-15).
 *
 *   const pg = await startPostgres();          // initdb + start on a free loopback port
 *   pg.url("knhk")                            // postgres://postgres@127.0.0.1:PORT/knhk (created on demand: await pg.createDatabase("knhk"))
 *   await pg.psql("SELECT 1")                 // runs SQL as the superuser, returns stdout
 *   await pg.stop(); await pg.start();        // stop/restart the same cluster (outage tests)
 *   await pg.crash(); await pg.start();       // immediate shutdown, then crash recovery
 *   await pg.destroy();                       // stop and remove the data directory
 *
 * PostgreSQL refuses to run as root, so when the tests run as root (CI) every server command runs
 * as the `postgres` OS user created by the Debian package.
 */
import { execFile } from "node:child_process";
import { chownSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports";

const run = promisify(execFile);
export const PG_BIN = process.env.KNHK_PG_BIN ?? "/usr/lib/postgresql/15/bin";

export interface PostgresOptions {
  /** Extra postgresql.conf settings, e.g. { synchronous_commit: "on" }. */
  readonly settings?: Readonly<Record<string, string>>;
}

export interface TestPostgres {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Directory of the Unix socket (psql and createdb connect through it, so a TLS-only pg_hba still admits them). */
  readonly socketDir: string;
  /** Superuser connection URL (user postgres, trust auth on loopback). */
  url(database?: string, user?: string): string;
  createDatabase(name: string): Promise<void>;
  psql(sql: string, database?: string): Promise<string>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops the server the way a crash does (immediate shutdown: no checkpoint, WAL not yet flushed is lost); start() recovers it. */
  crash(): Promise<void>;
  destroy(): Promise<void>;
}

function asPostgresUser(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

/** Runs a PostgreSQL command as the `postgres` OS user when the tests run as root. */
export async function runAs(command: string, args: string[], timeout = 60_000): Promise<string> {
  const [cmd, argv] = asPostgresUser(command, args);
  const { stdout } = await run(cmd, argv, { timeout, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const root = mkdtempSync(join(tmpdir(), "knhk-pg-"));
  const dataDir = join(root, "data");
  if (process.getuid?.() === 0) {
    const pgUser = statSync("/var/lib/postgresql");
    chownSync(root, pgUser.uid, pgUser.gid);
  }
  const port = await freePort();
  const host = "127.0.0.1";
  await runAs(join(PG_BIN, "initdb"), ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]);
  const settings: Record<string, string> = {
    listen_addresses: host,
    port: String(port),
    unix_socket_directories: root,
    max_connections: "200",
    ...options.settings,
  };
  const serverOptions = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(" ");

  const pg: TestPostgres = {
    host,
    port,
    dataDir,
    socketDir: root,
    url: (database = "postgres", user = "postgres") => `postgres://${user}@${host}:${port}/${database}`,
    async createDatabase(name) {
      await runAs(join(PG_BIN, "createdb"), ["-h", root, "-p", String(port), "-U", "postgres", name]);
    },
    psql: (sql, database = "postgres") =>
      runAs("psql", ["-h", root, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]),
    async start() {
      await runAs(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "-o", serverOptions, "-l", join(root, "server.log"), "-w", "-t", "60", "start"]);
    },
    async stop() {
      await runAs(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "-m", "fast", "-w", "stop"]);
    },
    async crash() {
      await runAs(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
    },
    async destroy() {
      await pg.stop().catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}
