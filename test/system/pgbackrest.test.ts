/**
 * The generated pgbackrest.conf against a real PostgreSQL 15 with a local (posix) repository:
 * `pgbackrest check` passes (WAL archiving through the generated archive_command works), the
 * CronJob's backup script backs up, and the monthly restore-test script restores into scratch
 * space and checks the receipts table (fails when it is empty or its hash chain is broken);
 * and the Kubernetes layout, where the backup job reaches the database only through
 * `pgbackrest server` over TLS with a client certificate.
 */
import { execFile } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { archiveCommands, backupScript, CIPHER_PASS_ENV, renderPgbackrestConf, restoreTestScript } from "../../infra/render/pgbackrest";
import { freePort, waitFor } from "../support/ports";
import { PG_BIN } from "../support/postgres";
import { spawnTracked, type TrackedProcess } from "../support/processes";

const run = promisify(execFile);
const STANZA = "knhk";
const asRoot = process.getuid?.() === 0;

/** Runs a command as the postgres OS user (PostgreSQL and pgBackRest refuse root). */
async function asPostgres(command: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  try {
    const { stdout, stderr } = await run(cmd, argv, { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 32 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/**
 * A PostgreSQL whose server environment carries the repository passphrase, as the pod's does
 * (the archiver runs archive-push). Started here rather than with support/postgres.ts because
 * the server must inherit that environment variable.
 */
async function startArchivingPostgres(root: string, archiveCommand: string, env: Record<string, string>) {
  const dataDir = join(root, "pgdata");
  const port = await freePort();
  const must = async (cmd: string, args: string[]) => {
    const r = await asPostgres(cmd, args, env);
    if (r.code !== 0) throw new Error(`${cmd} failed: ${r.out}`);
    return r.out;
  };
  await must(join(PG_BIN, "initdb"), ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]);
  const settings: Record<string, string> = {
    listen_addresses: "''",
    port: String(port),
    unix_socket_directories: root,
    wal_level: "replica",
    archive_mode: "on",
    archive_timeout: "300",
    archive_command: `'${archiveCommand}'`,
  };
  const options = Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`).join(" ");
  await must(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "-o", options, "-l", join(root, "server.log"), "-w", "-t", "60", "start"]);
  return {
    dataDir,
    port,
    socketDir: root,
    psql: (sql: string, database = "postgres") => must("psql", ["-h", root, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql]),
    stop: () => asPostgres(join(PG_BIN, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "stop"]),
  };
}

describe("pgbackrest.conf with a real PostgreSQL and a posix repository", () => {
  let root: string;
  let pg: Awaited<ReturnType<typeof startArchivingPostgres>>;
  let configFile: string;
  let restoreConfigFile: string;
  // The passphrase reaches pgBackRest through the environment, as in the pods.
  const cipherEnv = { [CIPHER_PASS_ENV]: "test-only-passphrase-not-a-secret" };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "knhk-pgbackrest-"));
    const dirs = ["repo", "log", "lock", "scratch", "pg"];
    for (const d of dirs) mkdirSync(join(root, d));
    const ownerDirs = [root, ...dirs.map((d) => join(root, d))];
    if (asRoot) {
      const pgUser = statSync("/var/lib/postgresql");
      for (const d of ownerDirs) chownSync(d, pgUser.uid, pgUser.gid);
    }
    configFile = join(root, "pgbackrest.conf");
    restoreConfigFile = join(root, "restore-pgbackrest.conf");
    pg = await startArchivingPostgres(join(root, "pg"), archiveCommands(STANZA, configFile).archive, cipherEnv);
    const common = { stanza: STANZA, retentionFull: 2, encrypt: true, logPath: join(root, "log"), lockPath: join(root, "lock") };
    writeFileSync(
      configFile,
      renderPgbackrestConf({ ...common, repo: { type: "posix", path: join(root, "repo") }, pg: { kind: "local", path: pg.dataDir, port: pg.port, socketPath: pg.socketDir } }),
    );
    writeFileSync(
      restoreConfigFile,
      renderPgbackrestConf({ ...common, repo: { type: "posix", path: join(root, "repo") }, pg: { kind: "local", path: join(root, "scratch", "data"), port: 1, socketPath: root } }),
    );
    await pg.psql("CREATE DATABASE knhk");
    await pg.psql("CREATE TABLE receipts (seq bigint PRIMARY KEY, parent_hash text NOT NULL, hash text NOT NULL)", "knhk");
  }, 120_000);

  afterAll(async () => {
    await pg?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function runScript(name: string, text: string): Promise<{ code: number; out: string }> {
    const file = join(root, name);
    writeFileSync(file, text, { mode: 0o755 });
    return asPostgres("/bin/sh", [file], cipherEnv);
  }

  async function restoreTest(): Promise<{ code: number; out: string }> {
    return runScript(
      "restore-test.sh",
      restoreTestScript({
        stanza: STANZA,
        configFile: restoreConfigFile,
        scratchDir: join(root, "scratch"),
        binDir: PG_BIN,
        port: await freePort(),
        socketDir: join(root, "scratch"),
        database: "knhk",
        table: "receipts",
      }),
    );
  }

  it("stanza-create and `pgbackrest check` pass (archive_command pushes WAL)", async () => {
    const created = await asPostgres("pgbackrest", [`--config=${configFile}`, `--stanza=${STANZA}`, "stanza-create"], cipherEnv);
    expect(created.out).toMatch(/stanza-create command end: completed successfully/);
    const check = await asPostgres("pgbackrest", [`--config=${configFile}`, `--stanza=${STANZA}`, "--archive-timeout=30", "check"], cipherEnv);
    expect(check.out).toMatch(/check command end: completed successfully/);
    expect(check.code).toBe(0);
  });

  it("`pgbackrest check` fails without the repository passphrase (the repo is encrypted)", async () => {
    const check = await asPostgres("pgbackrest", [`--config=${configFile}`, `--stanza=${STANZA}`, "check"], { [CIPHER_PASS_ENV]: "" });
    expect(check.code).not.toBe(0);
  });

  it("the restore test fails on a backup whose receipts table is empty", async () => {
    const backup = await runScript("backup-full.sh", backupScript({ stanza: STANZA, configFile, type: "full" }));
    expect(backup.out).toMatch(/backup command end: completed successfully/);
    expect(backup.code).toBe(0);
    const result = await restoreTest();
    expect(result.out).toMatch(/restore test FAILED: receipts table is empty/);
    expect(result.code).not.toBe(0);
  });

  it("the restore test passes on an incremental backup with a linked receipt chain", async () => {
    await pg.psql("INSERT INTO receipts VALUES (1, 'genesis', 'h1'), (2, 'h1', 'h2'), (3, 'h2', 'h3')", "knhk");
    const backup = await runScript("backup-incr.sh", backupScript({ stanza: STANZA, configFile, type: "incr" }));
    expect(backup.out).toMatch(/backup command end: completed successfully/);
    const info = await asPostgres("pgbackrest", [`--config=${configFile}`, `--stanza=${STANZA}`, "--output=json", "info"], cipherEnv);
    const backups = (JSON.parse(info.out.slice(info.out.indexOf("["))) as { backup: { type: string }[] }[])[0].backup.map((b) => b.type);
    expect(backups).toEqual(["full", "incr"]);
    const result = await restoreTest();
    expect(result.out).toMatch(/restore test: 3 receipts, 0 broken links/);
    expect(result.code).toBe(0);
  });

  it("the restore test fails when a receipt's parent_hash does not match its predecessor", async () => {
    await pg.psql("INSERT INTO receipts VALUES (4, 'not-h3', 'h4')", "knhk");
    await runScript("backup-incr.sh", backupScript({ stanza: STANZA, configFile, type: "incr" }));
    const result = await restoreTest();
    expect(result.out).toMatch(/restore test FAILED: 1 broken hash links/);
    expect(result.code).not.toBe(0);
  });
});

/**
 * The Kubernetes layout: the database side runs `pgbackrest server` (TLS, client certificate
 * CN checked) and pushes WAL; the backup CronJob is a repository host that reaches the
 * database only through that server (pgN-host-type=tls).
 */
describe("pgBackRest TLS server (database side) and repository host (backup job side)", () => {
  let root: string;
  let pg: Awaited<ReturnType<typeof startArchivingPostgres>>;
  let server: TrackedProcess | undefined;
  let repoHostConf: string;
  let wrongClientConf: string;
  const cipherEnv = { [CIPHER_PASS_ENV]: "test-only-passphrase-not-a-secret" };

  /** CA, a server certificate for localhost and client certificates with the given CNs. */
  async function makeCertificates(dir: string, clientCns: string[]): Promise<void> {
    const ssl = (args: string[]) => run("openssl", args, { cwd: dir, timeout: 60_000 });
    await ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=knhk-test-ca"]);
    const sign = async (name: string, cn: string, ext?: string) => {
      await ssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
      if (ext) writeFileSync(join(dir, `${name}.ext`), ext);
      await ssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "1", ...(ext ? ["-extfile", `${name}.ext`] : [])]);
    };
    await sign("server", "localhost", "subjectAltName=DNS:localhost\n");
    for (const cn of clientCns) await sign(cn, cn);
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "knhk-pgbackrest-tls-"));
    const dirs = ["repo", "log", "lock", "pg", "tls"];
    for (const d of dirs) mkdirSync(join(root, d));
    await makeCertificates(join(root, "tls"), ["pgbackrest-repo", "intruder"]);
    if (asRoot) {
      const pgUser = statSync("/var/lib/postgresql");
      for (const d of [root, ...dirs.map((d) => join(root, d))]) chownSync(d, pgUser.uid, pgUser.gid);
      for (const f of readdirSync(join(root, "tls"))) chownSync(join(root, "tls", f), pgUser.uid, pgUser.gid);
    }
    const tls = (name: string) => ({ certFile: join(root, "tls", `${name}.crt`), keyFile: join(root, "tls", `${name}.key`), caFile: join(root, "tls", "ca.crt") });
    const common = { stanza: STANZA, retentionFull: 2, encrypt: true, logPath: join(root, "log"), lockPath: join(root, "lock"), repo: { type: "posix" as const, path: join(root, "repo") } };
    const tlsPort = await freePort();
    const dbConf = join(root, "db.conf");
    pg = await startArchivingPostgres(join(root, "pg"), archiveCommands(STANZA, dbConf).archive, cipherEnv);
    writeFileSync(
      dbConf,
      renderPgbackrestConf({
        ...common,
        pg: { kind: "local", path: pg.dataDir, port: pg.port, socketPath: pg.socketDir },
        tlsServer: { address: "127.0.0.1", port: tlsPort, tls: tls("server"), allowedClientCns: ["pgbackrest-repo"] },
      }),
    );
    const remote = (client: string) =>
      renderPgbackrestConf({
        ...common,
        pg: { kind: "remote", hosts: ["localhost"], path: pg.dataDir, port: pg.port, socketPath: pg.socketDir, tlsPort, tls: tls(client) },
      });
    repoHostConf = join(root, "repo-host.conf");
    wrongClientConf = join(root, "intruder.conf");
    writeFileSync(repoHostConf, remote("pgbackrest-repo"));
    writeFileSync(wrongClientConf, remote("intruder"));

    const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", "pgbackrest", `--config=${dbConf}`, "server"]] : ["pgbackrest", [`--config=${dbConf}`, "server"]];
    server = spawnTracked(cmd, argv, { env: { ...process.env, ...cipherEnv }, stdio: "ignore" });
    await waitFor("pgbackrest server", () => new Promise<boolean>((resolve) => {
      const s = connect(tlsPort, "127.0.0.1", () => { s.destroy(); resolve(true); });
      s.on("error", () => resolve(false));
    }), 30_000, 200);
  }, 180_000);

  afterAll(async () => {
    await server?.stop("SIGTERM");
    await pg?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("the backup job's script backs up through the TLS server and `pgbackrest check` passes", async () => {
    const file = join(root, "backup-full.sh");
    writeFileSync(file, backupScript({ stanza: STANZA, configFile: repoHostConf, type: "full" }), { mode: 0o755 });
    const backup = await asPostgres("/bin/sh", [file], cipherEnv);
    expect(backup.out).toMatch(/backup command end: completed successfully/);
    expect(backup.code).toBe(0);
    const check = await asPostgres("pgbackrest", [`--config=${repoHostConf}`, `--stanza=${STANZA}`, "check"], cipherEnv);
    expect(check.out).toMatch(/check command end: completed successfully/);
  }, 120_000);

  it("a client certificate whose CN is not allowed is refused", async () => {
    const check = await asPostgres("pgbackrest", [`--config=${wrongClientConf}`, `--stanza=${STANZA}`, "check"], cipherEnv);
    expect(check.code).not.toBe(0);
    expect(check.out).toMatch(/access denied|not authorized|is not authorized/i);
  }, 60_000);
});
