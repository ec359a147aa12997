/**
 * The ledger CronJobs' real commands, exactly as the prod render configures their pods, on real
 * servers: PostgreSQL 15 with TLS 1.3 and SCRAM (no plain-TCP login for anyone but this test's
 * superuser), bootstrapped by the rendered post-bootstrap script, migrated by the schema owner
 * (who may not create roles); moto's S3 with the rendered bucket names and Object Lock.
 *
 * Each job runs as a login created the way Vault's database engine creates it (the jobs' rendered
 * creation statements, executed as Vault's own login `vault_admin`), reached through the URL file
 * rendered from the pod's Vault Agent template, with the container's rendered command and
 * environment, as a process. What differs from a pod is only where things are: the pod paths
 * (URL file, CA) live in a temporary directory, 5432 is this test's port, the rendered primary
 * host name resolves to loopback (a --require shim; TLS still verifies that name), and moto's
 * static credentials stand for the IRSA web identity.
 *
 * Then the service itself, started as a dynamic knhk_service user, exports what the scheduled
 * verifications recorded: a break they find moves knhk_receipt_chain_verification_failures, the
 * series of the P0 KnhkReceiptChainBroken, without any deploy calling verify.
 */
import { CreateBucketCommand, ListObjectsV2Command, PutObjectLockConfigurationCommand, S3Client } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { migrate } from "../../app/src/db/migrate";
import { openDatabase } from "../../app/src/db/open";
import type { Database } from "../../app/src/db/types";
import { createLedger, loadSigner } from "../../app/src/receipts";
import { TRUSTED_KEYS_FORMAT } from "../../app/src/receipts/trusted-keys";
import { objectLockConfiguration } from "../../infra/render/archive";
import { LEDGER_JOBS, ledgerJobVaultRoles, type LedgerJobKind } from "../../infra/render/ledger-jobs";
import { APP, APP_FILES, PORTS, POSTGRES } from "../../infra/render/topology";
import { dynamicUserCreationStatements, fillVaultTemplate } from "../../infra/render/vault-database";
import type { K8sObject, RenderResult } from "../../infra/testing/render";
import { startServiceOn, type ServiceUnderTest } from "../app/shell/service";
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type TestMoto } from "../support/moto";
import { waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { spawnTracked } from "../support/processes";
import { renderTestStack } from "../support/stack-identifiers";
import { writeLoopbackResolver } from "../support/loopback-resolver";
import { makeTestPki, type TestPki } from "../support/tls";

const run = promisify(execFile);
jest.setTimeout(600_000);

const REPO = join(__dirname, "..", "..");
const TSX = join(REPO, "node_modules", ".bin", "tsx");
const DAY = 86_400_000;
const VAULT_ADMIN_PASSWORD = `vault-admin-${randomBytes(9).toString("base64url")}`;
const OWNER_PASSWORD = `owner-${randomBytes(9).toString("base64url")}`;

let root: string;
let render: RenderResult;
let pki: TestPki;
let pg: TestPostgres;
let moto: TestMoto;
let s3: S3Client;
let vaultAdmin: Database;
let owner: Database;
const opened: Database[] = [];
let service: ServiceUnderTest | undefined;

// ---- the render --------------------------------------------------------------------------------

type Container = { name: string; image: string; command: string[]; env: { name: string; value: string }[] };
type PodTemplate = { metadata: { annotations: Record<string, string>; labels: Record<string, string> }; spec: { serviceAccountName: string; containers: Container[] } };

function cronJob(name: string): K8sObject & { spec: { jobTemplate: { spec: { template: PodTemplate } } } } {
  const found = render.k8sObjects.find((o) => o.kind === "CronJob" && o.metadata.name === name);
  if (!found) throw new Error(`the prod render has no CronJob ${name}`);
  return found as never;
}

const podOf = (name: string) => cronJob(name).spec.jobTemplate.spec.template;

/** The Vault Agent template of the pod's database URL file. */
function urlTemplate(name: string): string {
  const file = APP_FILES.databaseUrl.split("/").at(-1) as string;
  const template = podOf(name).metadata.annotations[`vault.hashicorp.com/agent-inject-template-${file}`];
  if (!template) throw new Error(`CronJob ${name} renders no ${APP_FILES.databaseUrl}`);
  return template;
}

function primaryHost(): string {
  const match = /@([a-z0-9.-]+):(\d+)\//.exec(urlTemplate(LEDGER_JOBS.archive.cronJob));
  if (!match || Number(match[2]) !== PORTS.postgres) throw new Error("the URL template names no primary on 5432");
  return match[1];
}

// ---- Vault's part, done the way Vault does it ---------------------------------------------------

interface Login {
  readonly name: string;
  readonly password: string;
}

let issued = 0;

/** A login from the job's database role: its rendered creation statements, run as Vault's login. */
async function issue(kind: LedgerJobKind): Promise<Login> {
  const vaultRole = ledgerJobVaultRoles("database", 3600, { mount: "transit", key: "knhk-receipts" }).find((r) => r.databaseRole === LEDGER_JOBS[kind].vaultDatabaseRole);
  if (!vaultRole) throw new Error(`no Vault role for ${kind}`);
  const login = { name: `v-k8s-${vaultRole.databaseRole}-${++issued}-${randomBytes(3).toString("hex")}`, password: randomBytes(18).toString("base64url") };
  for (const statement of vaultRole.creationStatements) await vaultAdmin.query(fillVaultTemplate(statement, login));
  return login;
}

/** A dynamic user of the service role (the service's Vault role). */
async function issueServiceLogin(): Promise<Login> {
  const login = { name: `v-k8s-knhk-app-${++issued}-${randomBytes(3).toString("hex")}`, password: randomBytes(18).toString("base64url") };
  for (const statement of dynamicUserCreationStatements(POSTGRES.serviceDbRole)) await vaultAdmin.query(fillVaultTemplate(statement, login));
  return login;
}

/** What Vault Agent writes from the template: the credential's fields, URL-encoded (consul-template's urlquery). */
function renderTemplate(template: string, login: Login): string {
  const body = template.replace(/^\{\{- with secret "[^"]+" -\}\}\n/, "").replace(/\n\{\{- end \}\}$/, "");
  if (body.includes("{{- with") || body.includes("{{- end")) throw new Error(`unexpected template shape: ${template}`);
  return body.replace("{{ .Data.username | urlquery }}", encodeURIComponent(login.name)).replace("{{ .Data.password | urlquery }}", encodeURIComponent(login.password));
}

/** The pod's view: the pod paths and the primary's port, mapped to this test's. */
function remap(text: string): string {
  return text
    .split(encodeURIComponent(APP_FILES.postgresCa))
    .join(encodeURIComponent(pki.caFile))
    .split(`${primaryHost()}:${PORTS.postgres}`)
    .join(`${primaryHost()}:${pg.port}`);
}

/** A TLS (verify-full) URL to the test's server on loopback, for this test's own connections. */
function directUrl(login: Login, database = POSTGRES.database): string {
  return `postgresql://${encodeURIComponent(login.name)}:${encodeURIComponent(login.password)}@127.0.0.1:${pg.port}/${database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.caFile)}`;
}

async function connect(login: Login): Promise<Database> {
  const db = await openDatabase({ url: directUrl(login), poolMax: 2, poolMin: 0 });
  opened.push(db);
  return db;
}

// ---- running a CronJob's container ---------------------------------------------------------------

interface JobRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly login: Login;
}

async function runCronJob(name: string, kind: LedgerJobKind): Promise<JobRun> {
  const container = podOf(name).spec.containers[0];
  expect(container.command.slice(0, APP.cliCommand.length)).toEqual([...APP.cliCommand]);
  const login = await issue(kind);
  const dir = mkdtempSync(join(root, `${name}-`));
  const urlFile = join(dir, "database-url");
  writeFileSync(urlFile, remap(renderTemplate(urlTemplate(name), login)), { mode: 0o600 });
  const rendered = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
  expect(rendered.DATABASE_URL_FILE).toBe(APP_FILES.databaseUrl);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: dir,
    ...rendered,
    DATABASE_URL_FILE: urlFile,
    NODE_OPTIONS: `--require ${join(root, "resolve-primary.js")}`,
    // IRSA's web identity in a pod; moto's static credentials here.
    AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_S3: moto.endpoint,
  };
  // The verification jobs trust the keys file their Vault Agent renders from the transit key. Here
  // the signers are local test keys, never tampered with: their registered public halves stand in.
  const args = container.command.slice(APP.cliCommand.length);
  const trusted = args.indexOf("--trusted-keys");
  if (trusted >= 0) {
    expect(args[trusted + 1]).toBe(APP_FILES.transitKeys);
    expect(Object.keys(podOf(name).metadata.annotations)).toContain(`vault.hashicorp.com/agent-inject-template-${APP_FILES.transitKeys.split("/").at(-1)}`);
    const keys = (await owner.query<{ key_version: number; public_key: string }>("SELECT key_version, public_key FROM receipt_signing_keys ORDER BY key_version")).rows;
    const keysFile = join(dir, "transit-keys.json");
    writeFileSync(keysFile, JSON.stringify({ format: TRUSTED_KEYS_FORMAT, source: "vault-transit:transit/knhk-receipts", keys: keys.map((k) => ({ key_version: Number(k.key_version), public_key: k.public_key })) }));
    args[trusted + 1] = keysFile;
  }
  const child = spawnTracked(TSX, [join(REPO, "app", "src", "cli", "index.ts"), ...args], {
    cwd: REPO,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
  child.child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const { code } = await child.exited;
  await child.stop();
  return { code, stdout, stderr, login };
}

/** The CLI's JSON summary/report: the last top-level JSON object it printed. */
function lastJson(stdout: string): Record<string, any> {
  const start = stdout.lastIndexOf("\n{");
  return JSON.parse(stdout.slice(start < 0 ? 0 : start + 1)) as Record<string, any>;
}

async function runs(): Promise<{ job: string; ok: boolean; failures: Record<string, number>; summary: Record<string, any> }[]> {
  return (await owner.query<{ job: string; ok: boolean; failures: Record<string, number>; summary: Record<string, any> }>("SELECT job, ok, failures, summary FROM ledger_job_runs ORDER BY id")).rows;
}

async function count(table: string): Promise<number> {
  return Number((await owner.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
}

async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key as string).sort();
}

// ---- data the service writes ----------------------------------------------------------------------

let serviceDb: Database;
/** Receipts after seeding (the service may have appended its own at start). */
let seededReceipts = 0;

async function appendReceipts(n: number): Promise<void> {
  const signer = await loadSigner({ db: serviceDb, env: {}, log: () => undefined, registrar: owner });
  const ledger = createLedger({ db: serviceDb, signer });
  await Promise.all(Array.from({ length: n }, (_, i) => ledger.append({ operation: "ledger-jobs.test", outcome: "success", evidence: { i }, sector: "test" })));
  await ledger.close();
  await signer.close();
}

/** Observations of the service's current snapshot (the genesis it created at start). */
async function appendObservations(n: number, createdAt: Date): Promise<void> {
  const snapshot = (await serviceDb.query<{ snapshot_id: string }>("SELECT snapshot_id FROM knowledge_current")).rows[0]?.snapshot_id;
  if (!snapshot) throw new Error("the service created no current snapshot");
  await serviceDb.query(
    "INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks) " +
      "SELECT gen_random_uuid(), 'sensor.reading', jsonb_build_object('v', i), 'generic', '{}', $1::timestamptz + i * interval '1 second', $1::timestamptz + i * interval '1 second', $2, false, '[]', 2 " +
      "FROM generate_series(1, $3) AS i",
    [createdAt, snapshot, n],
  );
}

/** Rewrites a receipt behind the append-only trigger (what only a superuser could do). */
async function tamper(seq: number): Promise<void> {
  await pg.psql(
    `ALTER TABLE receipts DISABLE TRIGGER receipts_append_only; UPDATE receipts SET evidence = '{"i":-1}' WHERE seq = ${seq}; ALTER TABLE receipts ENABLE TRIGGER receipts_append_only;`,
    POSTGRES.database,
  );
}

async function scrapeFailures(): Promise<Record<string, number>> {
  if (!service) throw new Error("the service is not running");
  const text = await (await fetch(`${service.service.metricsUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^knhk_receipt_chain_verification_failures\{kind="([a-z_]+)",mode="([a-z]+)"\} (\d+)$/gm)) out[`${m[2]}/${m[1]}`] = Number(m[3]);
  return out;
}

// ---- set-up ----------------------------------------------------------------------------------------

const LEDGER_BUCKET = () => Object.fromEntries(podOf(LEDGER_JOBS.archive.cronJob).spec.containers[0].env.map((e) => [e.name, e.value])).KNHK_ARCHIVE_LEDGER_BUCKET;
const DATA_BUCKET = () => Object.fromEntries(podOf(LEDGER_JOBS.archive.cronJob).spec.containers[0].env.map((e) => [e.name, e.value])).KNHK_ARCHIVE_DATA_BUCKET;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "knhk-ledger-jobs-"));
  chmodSync(root, 0o755);
  render = await renderTestStack("prod");
  pki = await makeTestPki(root, { dns: [primaryHost()], ips: ["127.0.0.1"] });
  writeLoopbackResolver(root, primaryHost());


  // TLS 1.3 and SCRAM for every login over TCP; only this test's superuser keeps trust.
  const serverDir = join(root, "server");
  mkdirSync(serverDir);
  const hba = join(serverDir, "pg_hba.conf");
  writeFileSync(hba, ["local all postgres trust", "host all postgres 127.0.0.1/32 trust", "hostssl all all 127.0.0.1/32 scram-sha-256", ""].join("\n"));
  for (const [from, to] of [[pki.certFile, "tls.crt"], [pki.keyFile, "tls.key"]]) writeFileSync(join(serverDir, to), readFileSync(from));
  chmodSync(join(serverDir, "tls.key"), 0o600);
  if (process.getuid?.() === 0) {
    const pgUser = statSync("/var/lib/postgresql");
    for (const f of [serverDir, hba, join(serverDir, "tls.crt"), join(serverDir, "tls.key")]) chownSync(f, pgUser.uid, pgUser.gid);
  }
  [pg, moto] = await Promise.all([
    startPostgres({
      settings: {
        hba_file: hba,
        ssl: "on",
        ssl_cert_file: join(serverDir, "tls.crt"),
        ssl_key_file: join(serverDir, "tls.key"),
        ssl_min_protocol_version: "TLSv1.3",
        password_encryption: "scram-sha-256",
      },
    }),
    startMoto(),
  ]);

  // The rendered bootstrap, as Patroni runs it (the superuser over the socket): it creates the
  // jobs' NOLOGIN roles, which the owner running the migrations may not create.
  const postBootstrap = render.k8sObjects.map((o) => (o as { data?: Record<string, string> }).data?.["post-bootstrap.sh"]).find((y) => typeof y === "string");
  if (!postBootstrap) throw new Error("the prod render has no post-bootstrap.sh");
  const script = join(root, "post-bootstrap.sh");
  writeFileSync(script, postBootstrap, { mode: 0o755 });
  const superuserUrl = `postgresql:///postgres?host=${encodeURIComponent(pg.socketDir)}&port=${pg.port}&user=postgres`;
  const bootstrapEnv = { PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}`, EXPORTER_PASSWORD: "exporter-test", VAULT_ADMIN_PASSWORD };
  if (process.getuid?.() === 0) await run("runuser", ["-u", "postgres", "--", "env", ...Object.entries(bootstrapEnv).map(([k, v]) => `${k}=${v}`), "sh", script, superuserUrl], { timeout: 60_000 });
  else await run("sh", [script, superuserUrl], { env: { ...process.env, ...bootstrapEnv }, timeout: 60_000 });
  const jobRoles = [...new Set(Object.values(LEDGER_JOBS).map((j) => j.dbRole))];
  const created = (await pg.psql(`SELECT string_agg(rolname || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN (${jobRoles.map((r) => `'${r}'`).join(", ")})`)).trim();
  expect(created).toBe(jobRoles.sort().map((r) => `${r}:false`).join(","));

  // Vault's static role gives the owner its password; the migrations run as the owner.
  await pg.psql(`ALTER ROLE ${POSTGRES.ownerDbUser} PASSWORD '${OWNER_PASSWORD}';`);
  owner = await openDatabase({ url: directUrl({ name: POSTGRES.ownerDbUser, password: OWNER_PASSWORD }), poolMax: 2, poolMin: 0 });
  opened.push(owner);
  await migrate(owner);
  vaultAdmin = await openDatabase({ url: directUrl({ name: POSTGRES.vaultAdminDbUser, password: VAULT_ADMIN_PASSWORD }), poolMax: 1, poolMin: 0 });
  opened.push(vaultAdmin);

  // The buckets, as the compliance archive creates them (names from the rendered environment).
  s3 = new S3Client({ region: MOTO_REGION, endpoint: moto.endpoint, forcePathStyle: true, credentials: MOTO_CREDENTIALS });
  const where = { CreateBucketConfiguration: { LocationConstraint: MOTO_REGION } } as const;
  await s3.send(new CreateBucketCommand({ Bucket: LEDGER_BUCKET(), ObjectLockEnabledForBucket: true, ...where }));
  await s3.send(new PutObjectLockConfigurationCommand({ Bucket: LEDGER_BUCKET(), ObjectLockConfiguration: objectLockConfiguration({ mode: "COMPLIANCE", years: 7 }) }));
  await s3.send(new CreateBucketCommand({ Bucket: DATA_BUCKET(), ...where }));

  // The service, as a dynamic knhk_service user, up while the jobs run (it exports their outcomes).
  service = await startServiceOn(pg, POSTGRES.database, {
    DATABASE_URL: directUrl(await issueServiceLogin()),
    DATABASE_MIGRATION_URL: directUrl({ name: POSTGRES.ownerDbUser, password: OWNER_PASSWORD }),
  });

  // What the service wrote: receipts, audit entries, observations (old and recent).
  serviceDb = await connect(await issueServiceLogin());
  await appendReceipts(120);
  seededReceipts = await count("receipts");
  await serviceDb.query(
    "INSERT INTO audit_log (occurred_at, actor, action, target, outcome) SELECT now() - interval '1 hour' + i * interval '1 millisecond', 'alice', 'authz.decision', 'GET /x/' || i, 'allow' FROM generate_series(1, 40) AS i",
  );
  await appendObservations(50, new Date(Date.now() - 100 * DAY));
  await appendObservations(7, new Date(Date.now() - 1 * DAY));
});

afterAll(async () => {
  await service?.stop();
  s3?.destroy();
  for (const db of opened.reverse()) await db.close().catch(() => undefined);
  await Promise.all([pg?.destroy(), moto?.destroy()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

// ---- the jobs ------------------------------------------------------------------------------------

describe("knhk-archive as rendered, as a dynamic member of knhk_archiver over TLS", () => {
  let first: JobRun;
  beforeAll(async () => {
    // The service's audit tree takes the 40 entries and signs a checkpoint over them within seconds.
    await waitFor("an audit checkpoint over the seeded entries", async () => Number((await serviceDb.query<{ n: string }>("SELECT coalesce(max(size), 0)::text AS n FROM audit_tree_checkpoints")).rows[0].n) >= 40, 30_000, 200);
    first = await runCronJob(LEDGER_JOBS.archive.cronJob, "archive");
  });

  test("exits 0: receipts and audit entries in the Object Lock bucket, observations older than 90 days in the data bucket", async () => {
    expect({ code: first.code, stderr: first.code === 0 ? "" : first.stderr }).toEqual({ code: 0, stderr: "" });
    const summary = lastJson(first.stdout);
    expect(summary).toMatchObject({
      ok: true,
      streams: {
        receipts: { records: seededReceipts, last_position: seededReceipts },
        audit: { records: 40 },
        observations: { records: 50, deleted: 50 },
      },
    });
    expect((await listKeys(LEDGER_BUCKET(), "receipts/")).length).toBeGreaterThanOrEqual(2);
    const audit = await listKeys(LEDGER_BUCKET(), "audit/");
    expect(audit.filter((k) => k.endsWith(".ndjson"))).toHaveLength(1);
    // The service signed checkpoints of the audit log's tree; the job publishes them with their tiles.
    const auditCheckpoints = audit.filter((k) => k.startsWith("audit/tlog/checkpoints/"));
    expect(auditCheckpoints.length).toBeGreaterThanOrEqual(1);
    expect(audit.filter((k) => k.startsWith("audit/tlog/tile/")).length).toBeGreaterThanOrEqual(1);
    expect(summary.audit_log).toMatchObject({ checkpoints: auditCheckpoints.length });
    expect((await listKeys(DATA_BUCKET(), "observations/")).length).toBe(1);
  });

  test("the archived observations left PostgreSQL; the recent ones, every receipt and every audit entry stay", async () => {
    expect(await count("observations")).toBe(7);
    expect(await count("receipts")).toBe(seededReceipts);
    expect(await count("audit_log")).toBeGreaterThanOrEqual(40);
  });

  test("the run is recorded in ledger_job_runs", async () => {
    const archive = (await runs()).filter((r) => r.job === "archive");
    expect(archive).toHaveLength(1);
    expect(archive[0]).toMatchObject({ ok: true, summary: { ok: true, streams: { observations: { deleted: 50 } } } });
  });

  test("the next run uploads and deletes nothing (idempotent), and is recorded too", async () => {
    const again = await runCronJob(LEDGER_JOBS.archive.cronJob, "archive");
    expect(again.code).toBe(0);
    const summary = lastJson(again.stdout);
    for (const stream of ["receipts", "audit", "observations"]) expect(summary.streams[stream].uploaded).toBe(0);
    expect(summary.streams.observations.deleted).toBe(0);
    expect(await count("observations")).toBe(7);
    expect((await runs()).filter((r) => r.job === "archive")).toHaveLength(2);
  });

  test("its login is a member of knhk_archiver only, and cannot write the ledger nor record a verification", async () => {
    const memberOf = (await pg.psql(`SELECT string_agg(b.rolname, ',' ORDER BY b.rolname) FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '${first.login.name}'`)).trim();
    expect(memberOf).toBe(LEDGER_JOBS.archive.dbRole);
    const db = await connect(first.login);
    for (const sql of [
      "INSERT INTO receipt_chain_head (singleton, seq, hash, created_at) VALUES (false, 0, 'x', now())",
      "UPDATE receipt_chain_head SET seq = 0",
      "UPDATE receipts SET outcome = 'rewritten'",
      "DELETE FROM receipts",
      "INSERT INTO audit_log (actor, action, target) VALUES ('a', 'b', 'c')",
      "DELETE FROM audit_log",
      "INSERT INTO receipt_verification_checkpoints (seq, hash, created_at, verified_count) VALUES (1, 'x', now(), 1)",
      "INSERT INTO observations (id, event_type, value, sector, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks) SELECT gen_random_uuid(), 'x', '1', 'generic', now(), now(), id, false, '[]', 1 FROM knowledge_snapshots LIMIT 1",
      "CREATE TABLE archiver_was_here (x int)",
    ]) {
      await expect(db.query(sql)).rejects.toThrow(/permission denied/);
    }
    await expect(db.query("INSERT INTO ledger_job_runs (job, ok, started_at) VALUES ('verify-full', true, now())")).rejects.toThrow(/row-level security/);
    await expect(db.query("INSERT INTO ledger_job_runs (job, ok, started_at) VALUES ('verify-incremental', true, now())")).rejects.toThrow(/row-level security/);
  });
});

describe("knhk-verify-chain-full and knhk-verify-chain as rendered, as a dynamic member of knhk_verifier", () => {
  test("the full verification exits 0, stores a checkpoint and records a clean full run", async () => {
    const full = await runCronJob(LEDGER_JOBS.fullVerification.cronJob, "fullVerification");
    expect({ code: full.code, stderr: full.code === 0 ? "" : full.stderr }).toEqual({ code: 0, stderr: "" });
    const head = await count("receipts");
    expect(lastJson(full.stdout)).toMatchObject({ ok: true, incremental: false, total_count: head, to_seq: head });
    expect((await runs()).filter((r) => r.job === "verify-full").at(-1)).toMatchObject({ ok: true, summary: { verified_count: head, to_seq: head } });
    expect(Number((await owner.query<{ seq: string }>("SELECT max(seq) AS seq FROM receipt_verification_checkpoints")).rows[0].seq)).toBe(head);
  });

  test("the incremental verification starts after that checkpoint: only the new receipts", async () => {
    const checkpoint = await count("receipts");
    await appendReceipts(15);
    const incremental = await runCronJob(LEDGER_JOBS.verifyChain.cronJob, "verifyChain");
    expect({ code: incremental.code, stderr: incremental.code === 0 ? "" : incremental.stderr }).toEqual({ code: 0, stderr: "" });
    expect(lastJson(incremental.stdout)).toMatchObject({ ok: true, incremental: true, from_seq: checkpoint + 1, to_seq: checkpoint + 15, total_count: 15 });
    expect((await runs()).filter((r) => r.job === "verify-incremental").at(-1)).toMatchObject({ ok: true, failures: { hash_mismatch: 0 } });
  });

  test("the verifier's login reads the chain but cannot change data, delete observations or write the ledger", async () => {
    const login = await issue("verifyChain");
    const db = await connect(login);
    expect(Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM receipts")).rows[0].n)).toBe(await count("receipts"));
    for (const sql of [
      "DELETE FROM observations",
      "UPDATE archive_checkpoints SET last_position = 0",
      "INSERT INTO receipt_chain_head (singleton, seq, hash, created_at) VALUES (false, 0, 'x', now())",
      "SELECT count(*) FROM audit_log",
      "SELECT count(*) FROM observations",
    ]) {
      await expect(db.query(sql)).rejects.toThrow(/permission denied/);
    }
    await expect(db.query("INSERT INTO ledger_job_runs (job, ok, started_at) VALUES ('archive', true, now())")).rejects.toThrow(/row-level security/);
  });

  test("the service role may read the runs but not record one (it cannot silence the P0 by faking a clean run)", async () => {
    await expect(serviceDb.query("SELECT count(*) FROM ledger_job_runs")).resolves.toBeDefined();
    await expect(serviceDb.query("INSERT INTO ledger_job_runs (job, ok, started_at) VALUES ('verify-full', true, now())")).rejects.toThrow(/permission denied/);
    await expect(owner.query("DELETE FROM ledger_job_runs")).rejects.toThrow(/append-only/);
  });
});

describe("a break the scheduled verifications find reaches the P0's series through the service", () => {
  test("while the runs are clean the service exports zero failures for both modes", async () => {
    const failures = await scrapeFailures();
    expect(failures["full/hash_mismatch"]).toBe(0);
    expect(failures["incremental/hash_mismatch"]).toBe(0);
    expect(Object.values(failures).every((n) => n === 0)).toBe(true);
  });

  test("a receipt rewritten below the checkpoint: the incremental run cannot see it, the weekly full run does, exits 1, and the gauge moves", async () => {
    await tamper(10);
    const incremental = await runCronJob(LEDGER_JOBS.verifyChain.cronJob, "verifyChain");
    expect(incremental.code).toBe(0);
    const full = await runCronJob(LEDGER_JOBS.fullVerification.cronJob, "fullVerification");
    expect(full.code).toBe(1);
    const report = lastJson(full.stdout);
    expect(report.chain_breaks).toEqual([expect.objectContaining({ seq: 10, kind: "hash_mismatch" })]);
    expect((await runs()).filter((r) => r.job === "verify-full").at(-1)).toMatchObject({ ok: false, failures: { hash_mismatch: 1 } });
    const failures = await scrapeFailures();
    expect(failures["full/hash_mismatch"]).toBe(1);
    // The later clean incremental run does not clear what the full run found.
    expect(failures["incremental/hash_mismatch"]).toBe(0);
  });

  test("a receipt rewritten after the checkpoint: the incremental run exits 1 and its mode's gauge moves", async () => {
    await appendReceipts(5);
    const head = Number((await owner.query<{ seq: string }>("SELECT max(seq) AS seq FROM receipts")).rows[0].seq);
    await tamper(head - 1);
    const incremental = await runCronJob(LEDGER_JOBS.verifyChain.cronJob, "verifyChain");
    expect(incremental.code).toBe(1);
    expect((await runs()).filter((r) => r.job === "verify-incremental").at(-1)).toMatchObject({ ok: false, failures: { hash_mismatch: 1 } });
    expect((await scrapeFailures())["incremental/hash_mismatch"]).toBe(1);
  });
});
