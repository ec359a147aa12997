/**
 * The URL Vault Agent renders carries `sslmode=verify-full&sslrootcert=<CA path>`: node-postgres
 * (pg-connection-string) must verify the server against that CA and the host name, both when the
 * database opens with the URL and when a rotation switches to one. PostgreSQL 15 here serves a
 * certificate for IP 127.0.0.1 signed by a throwaway CA (openssl).
 */
import { execFile } from "node:child_process";
import { chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import type { TestPostgres } from "../support/postgres";
import { issueDynamicUser, startPasswordPostgres, type DynamicUser } from "./shell/dynamic-users";
import { createMigratedDatabase } from "./shell/service";

jest.setTimeout(120_000);

const run = promisify(execFile);
let pg: TestPostgres;
let dir: string;
let database: string;
let user: DynamicUser;
const open: PostgresDatabase[] = [];

async function certificateAuthority(name: string): Promise<{ crt: string; key: string }> {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", `/CN=${name}`]);
  return { crt, key };
}

async function serverCertificate(ca: { crt: string; key: string }, san: string): Promise<{ crt: string; key: string }> {
  const key = join(dir, "server.key");
  const csr = join(dir, "server.csr");
  const crt = join(dir, "server.crt");
  const ext = join(dir, "server.ext");
  writeFileSync(ext, `subjectAltName=${san}\n`);
  await run("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=postgres"]);
  await run("openssl", ["x509", "-req", "-in", csr, "-CA", ca.crt, "-CAkey", ca.key, "-CAcreateserial", "-out", crt, "-days", "1", "-extfile", ext]);
  if (process.getuid?.() === 0) {
    const owner = statSync("/var/lib/postgresql");
    chownSync(key, owner.uid, owner.gid);
    chownSync(crt, owner.uid, owner.gid);
  }
  return { crt, key };
}

let ca: { crt: string; key: string };
let otherCa: { crt: string; key: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "knhk-tls-"));
  await run("chmod", ["755", dir]);
  ca = await certificateAuthority("knhk-test-ca");
  otherCa = await certificateAuthority("someone-elses-ca");
  const server = await serverCertificate(ca, "IP:127.0.0.1");
  pg = await startPasswordPostgres({ settings: { ssl: "on", ssl_cert_file: server.crt, ssl_key_file: server.key } });
  database = await createMigratedDatabase(pg);
  user = await issueDynamicUser(pg, database, "tls");
});

afterAll(async () => {
  for (const db of open) await db.close().catch(() => undefined);
  await pg?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function db(url: string): PostgresDatabase {
  const d = createPostgresDatabase({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
  open.push(d);
  return d;
}

const sslInUse = async (d: PostgresDatabase) =>
  (await d.query<{ ssl: boolean; u: string }>("SELECT s.ssl, current_user::text AS u FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()")).rows[0];

test("sslmode=verify-full with sslrootcert from the URL: the connection is TLS, verified against that CA", async () => {
  const d = db(user.url(database, `sslmode=verify-full&sslrootcert=${ca.crt}`));
  expect(await sslInUse(d)).toEqual({ ssl: true, u: user.name });
});

test("a server certificate from another CA is refused, at open and on rotation (the old credentials stay)", async () => {
  await expect(db(user.url(database, `sslmode=verify-full&sslrootcert=${otherCa.crt}`)).query("SELECT 1")).rejects.toThrow(/certificate/);
  const d = db(user.url(database, `sslmode=verify-full&sslrootcert=${ca.crt}`));
  await expect(d.rotate(user.url(database, `sslmode=verify-full&sslrootcert=${otherCa.crt}`))).rejects.toThrow(/certificate/);
  await expect(d.rotate(user.url(database, `sslmode=verify-full&sslrootcert=${join(dir, "missing.crt")}`))).rejects.toThrow(/ENOENT/);
  expect(await sslInUse(d)).toEqual({ ssl: true, u: user.name });
});

test("verify-full checks the host name: the certificate names 127.0.0.1, not localhost", async () => {
  const url = user.url(database, `sslmode=verify-full&sslrootcert=${ca.crt}`).replace("@127.0.0.1:", "@localhost:");
  await expect(db(url).query("SELECT 1")).rejects.toThrow(/localhost|altnames|Hostname/i);
});

test("a rotation to a verify-full URL switches new connections to TLS", async () => {
  const d = db(user.url(database));
  expect((await sslInUse(d)).ssl).toBe(false);
  const renewed = await issueDynamicUser(pg, database, "tls2");
  await d.rotate(renewed.url(database, `sslmode=verify-full&sslrootcert=${ca.crt}`));
  expect(await sslInUse(d)).toEqual({ ssl: true, u: renewed.name });
});
