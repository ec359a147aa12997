/**
 * The receipt log published to the ledger bucket by `knhk archive run` (moto's S3 with Object Lock
 * COMPLIANCE, PostgreSQL 15, the archive as a member of knhk_archiver only) and verified from the
 * bucket alone by the independent verifier (tools/tlog-verify, the Go checksum database's code):
 * the objects are downloaded by key, the verifier key comes from the archived signing key, the
 * leaves from the archived receipts. Every published checkpoint opens; the tiles, read by their
 * C2SP paths, rebuild each checkpoint's root, prove sampled receipts and prove each checkpoint
 * consistent with the one before. A rerun sends nothing again; a later run publishes only what is new.
 * `receipts audit --bucket` does the same checks from the bucket alone, and reports a changed tile
 * and a checkpoint signed by another key in a copy of the bucket someone could write to. The
 * audit log is published the same way under audit/tlog/, its leaves the archived audit lines.
 */
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, PutObjectLockConfigurationCommand, S3Client } from "@aws-sdk/client-s3";
import { generateKeyPairSync, sign } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { run } from "../../app/src/cli/archive";
import { run as runReceipts } from "../../app/src/cli/receipts";
import { run as runAudit } from "../../app/src/cli/audit";
import { advanceAuditTree, AUDIT_TREE, auditLogOrigin } from "../../app/src/audit/tree";
import { checkpointObjectKey } from "../../app/src/archive/log-publication";
import { loadMigrations, migrate } from "../../app/src/db/migrate";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { createLedger, loadSigner, type Ledger } from "../../app/src/receipts";
import type { Signer } from "../../app/src/receipts/keys";
import { signCheckpoint, verifierKey } from "../../app/src/receipts/tlog/checkpoint";
import { checkpointIfDue } from "../../app/src/receipts/tlog/checkpoints";
import { advanceTreeFully } from "../../app/src/receipts/tlog/store";
import { objectLockConfiguration, retentionDays } from "../../infra/render/archive";
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type TestMoto } from "../support/moto";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { capturedStreams } from "../support/streams";

const exec = promisify(execFile);
jest.setTimeout(600_000);

const REPO = join(__dirname, "..", "..");
const LEDGER = "knhk-tlog-ledger";
const DATA = "knhk-tlog-data";
const ORIGIN = "knhk.test/receipt-log-archive";
const POLICY = { origin: ORIGIN, everyReceipts: 100, intervalMs: 3_600_000 };

let pg: TestPostgres;
let moto: TestMoto;
let s3: S3Client;
let owner: PostgresDatabase;
let service: PostgresDatabase;
let archiver: PostgresDatabase;
let ledger: Ledger;
let signer: Signer;
let verifierBin: string;
let root: string;

beforeAll(async () => {
  const built = exec("bash", [join(REPO, "scripts", "tlog-verify-build.sh")], { timeout: 600_000 });
  [pg, moto] = await Promise.all([startPostgres({ settings: { synchronous_commit: "on" } }), startMoto()]);
  s3 = new S3Client({ region: MOTO_REGION, endpoint: moto.endpoint, forcePathStyle: true, credentials: MOTO_CREDENTIALS });
  await pg.createDatabase("knhk");
  owner = createPostgresDatabase({ connectionString: pg.url("knhk"), max: 2 });
  await migrate(owner, loadMigrations());
  await pg.psql("CREATE ROLE knhk_app LOGIN; GRANT knhk_service TO knhk_app; CREATE ROLE knhk_archive_job LOGIN; GRANT knhk_archiver TO knhk_archive_job;", "knhk");
  service = createPostgresDatabase({ connectionString: pg.url("knhk", "knhk_app"), max: 4 });
  archiver = createPostgresDatabase({ connectionString: pg.url("knhk", "knhk_archive_job"), max: 2 });
  signer = await loadSigner({ db: service, env: {}, log: () => undefined, registrar: owner });
  ledger = createLedger({ db: service, signer });
  const where = { CreateBucketConfiguration: { LocationConstraint: MOTO_REGION } } as const;
  await s3.send(new CreateBucketCommand({ Bucket: LEDGER, ObjectLockEnabledForBucket: true, ...where }));
  await s3.send(new PutObjectLockConfigurationCommand({ Bucket: LEDGER, ObjectLockConfiguration: objectLockConfiguration({ mode: "COMPLIANCE", years: 7 }) }));
  await s3.send(new CreateBucketCommand({ Bucket: DATA, ...where }));
  verifierBin = join((await built).stdout.trim(), "tlog-verify");
  root = mkdtempSync(join(tmpdir(), "knhk-tlog-archive-"));
}, 300_000);
afterAll(async () => {
  await ledger?.close();
  for (const db of [archiver, service, owner]) await db?.close().catch(() => undefined);
  s3?.destroy();
  await Promise.all([pg?.destroy(), moto?.destroy()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Receipts in waves of 50, the tree advanced and checkpoints signed as the service does. */
async function grow(count: number): Promise<void> {
  for (let done = 0; done < count; done += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, i) => ledger.append({ operation: "tlog.archive", outcome: "success", evidence: { i: done + i }, sector: "generic" })));
    await advanceTreeFully(service);
    await checkpointIfDue(service, signer, POLICY);
  }
}

async function archive(stream = "receipts"): Promise<any> {
  const { stdout, stderr, out, err } = capturedStreams();
  const env = {
    ...moto.env,
    KNHK_ARCHIVE_LEDGER_BUCKET: LEDGER,
    KNHK_ARCHIVE_DATA_BUCKET: DATA,
    KNHK_ARCHIVE_RETENTION_MODE: "COMPLIANCE",
    KNHK_ARCHIVE_RETENTION_DAYS: String(retentionDays({ mode: "COMPLIANCE", years: 7 })),
    KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS: "90",
  };
  const code = await run(["run", "--batch", "100", "--stream", stream], { db: archiver, env, stdout, stderr });
  expect({ code, err: code === 0 ? "" : err() }).toEqual({ code: 0, err: "" });
  return JSON.parse(out());
}

async function keys(prefix: string, bucket = LEDGER): Promise<string[]> {
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) found.push(o.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found.sort();
}

const object = async (key: string, bucket = LEDGER) => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());

/** Downloads the log and checks it with the Go verifier, using only what is in the bucket. */
async function verifyFromBucket(): Promise<{ sizes: number[]; result: any; expectedTiles: number }> {
  const dir = mkdtempSync(join(root, "bucket-"));
  for (const key of await keys("receipts/tlog/tile/")) {
    const file = join(dir, key.slice("receipts/tlog/".length));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, await object(key));
  }
  const notes = await Promise.all((await keys("receipts/tlog/checkpoints/")).map(async (k) => (await object(k)).toString("utf8")));
  const signingKey = JSON.parse((await object("receipts/signing-keys/v1.json")).toString("utf8")) as { public_key: string };
  const hashes = new Map<number, string>();
  for (const key of (await keys("receipts/")).filter((k) => k.endsWith(".ndjson"))) {
    for (const line of (await object(key)).toString("utf8").trimEnd().split("\n")) {
      const receipt = JSON.parse(line) as { seq: number; hash: string };
      hashes.set(receipt.seq, receipt.hash);
    }
  }
  const sizes = notes.map((n) => Number(n.split("\n")[1]));
  const tiles = sizes.map((size, c) => {
    const seqs = [...new Set([1, Math.ceil(size / 2), size])];
    return { dir, checkpoint: c, indexes: seqs.map((s) => s - 1), data: seqs.map((s) => Buffer.from(hashes.get(s)!, "hex").toString("base64")), older: c > 0 ? [c - 1] : [] };
  });
  const file = join(dir, "request.json");
  writeFileSync(file, JSON.stringify({ vkey: verifierKey(ORIGIN, Buffer.from(signingKey.public_key, "base64")), checkpoints: notes, tiles }));
  const result = JSON.parse((await exec(verifierBin, [file], { timeout: 120_000, maxBuffer: 64 * 2 ** 20 })).stdout);
  return { sizes, result, expectedTiles: tiles.reduce((n, t) => n + 1 + t.indexes.length + t.older.length, 0) };
}

test("every published checkpoint opens, and the tiles rebuild its root, prove receipts and its consistency with the one before", async () => {
  // Checkpoints at 50 (the first), then every 100: 150, 250, ..., 550.
  await grow(550);
  const summary = await archive();
  expect(summary.receipt_log).toMatchObject({ published_size: 550, checkpoints: 6 });
  expect(summary.receipt_log.tiles_uploaded).toBeGreaterThan(0);

  const { sizes, result, expectedTiles } = await verifyFromBucket();
  expect(sizes).toEqual([50, 150, 250, 350, 450, 550]);
  expect(result.checkpoints.filter((c: any) => !c.ok)).toEqual([]);
  expect(result.checkpoints.map((c: any) => c.size)).toEqual(sizes);
  expect(result.tiles).toHaveLength(expectedTiles);
  expect(result.tiles.filter((t: any) => !t.ok)).toEqual([]);

  const head = await s3.send(new HeadObjectCommand({ Bucket: LEDGER, Key: (await keys("receipts/tlog/checkpoints/")).at(-1)! }));
  expect(head.ObjectLockMode).toBe("COMPLIANCE");
  expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 6 * 365 * 86_400_000);
});

test("a rerun sends nothing again; a later run publishes only the new checkpoints, consistent with the old", async () => {
  const before = (await keys("receipts/tlog/")).length;
  expect((await archive()).receipt_log).toEqual({ checkpoints: 0, tiles_uploaded: 0, tiles_skipped: 0, published_size: 550 });
  expect((await keys("receipts/tlog/")).length).toBe(before);

  await grow(400);
  const later = await archive();
  expect(later.receipt_log).toMatchObject({ published_size: 950, checkpoints: 4 });
  expect(later.receipt_log.tiles_skipped).toBe(0);
  const { sizes, result, expectedTiles } = await verifyFromBucket();
  expect(sizes).toEqual([50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
  expect(result.checkpoints.filter((c: any) => !c.ok)).toEqual([]);
  expect(result.tiles).toHaveLength(expectedTiles);
  expect(result.tiles.filter((t: any) => !t.ok)).toEqual([]);
});

async function audit(bucket: string): Promise<{ code: number; report: any; err: string }> {
  const { stdout, stderr, out, err } = capturedStreams();
  const code = await runReceipts(["audit", "--bucket", bucket, "--format", "json"], { db: archiver, env: { ...moto.env }, stdout, stderr });
  return { code, report: code <= 1 ? JSON.parse(out()) : undefined, err: err() };
}

test("receipts audit checks the published log from the bucket alone: signatures, roots from tiles, consistency, inclusion of archived receipts", async () => {
  const { code, report, err } = await audit(LEDGER);
  expect({ code, findings: report.findings }).toEqual({ code: 0, findings: [] });
  expect(report).toMatchObject({ ok: true, checkpoints: 10, latestSize: 950, consistencyChecked: 9 });
  expect(report.receiptsChecked).toBeGreaterThan(0);
  expect(err).toMatch(/audit: checkpoint 10 of 10 \(size 950\)/);
});

test("receipts audit reports a changed tile and refuses a checkpoint signed by another key", async () => {
  // A copy without Object Lock stands for a bucket someone could write to.
  const copy = "knhk-tlog-tampered";
  await s3.send(new CreateBucketCommand({ Bucket: copy, CreateBucketConfiguration: { LocationConstraint: MOTO_REGION } }));
  for (const key of await keys("receipts/")) await s3.send(new PutObjectCommand({ Bucket: copy, Key: key, Body: await object(key) }));
  const tileKey = "receipts/tlog/tile/0/001";
  const tile = await object(tileKey);
  tile[5] ^= 1;
  await s3.send(new PutObjectCommand({ Bucket: copy, Key: tileKey, Body: tile }));
  const stranger = generateKeyPairSync("ed25519");
  const forged = await signCheckpoint(
    { origin: ORIGIN, size: 960, root: Buffer.alloc(32, 9) },
    { name: ORIGIN, publicKey: Buffer.from(stranger.publicKey.export({ format: "jwk" }).x!, "base64url"), sign: async (m) => sign(null, m, stranger.privateKey) },
  );
  await s3.send(new PutObjectCommand({ Bucket: copy, Key: checkpointObjectKey(960), Body: forged }));
  const { code, report } = await audit(copy);
  expect(code).toBe(1);
  expect(report.findings).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "bad_signature", key: checkpointObjectKey(960) })]));
  // The roots come from the higher tiles; the leaf-by-leaf rebuild of the latest catches the change.
  expect(report.findings).toEqual(expect.arrayContaining([{ kind: "tiles", key: checkpointObjectKey(950), detail: "the leaf tiles do not rebuild the root of size 950" }]));
});

async function verifyBucket(bucket: string): Promise<{ code: number; report: any; err: string }> {
  const { stdout, stderr, out, err } = capturedStreams();
  const code = await runAudit(["verify-bucket", "--bucket", bucket, "--format", "json"], { db: archiver, env: { ...moto.env }, stdout, stderr });
  return { code, report: code <= 1 ? JSON.parse(out()) : undefined, err: err() };
}

test("the audit log is published under audit/tlog/ beside the archived entries: the Go verifier opens its checkpoints and proves archived lines from the tiles; audit verify-bucket checks it and reports a changed archived entry", async () => {
  // Entries written concurrently as the service role, an hour old so the archive's settle horizon has passed.
  for (let wave = 0; wave < 3; wave++) {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        service.query("INSERT INTO audit_log (occurred_at, actor, action, target, outcome, details) SELECT now() - interval '1 hour', 'user-' || n, 'authz.decision', 'GET /api/v1/receipts', 'allow', jsonb_build_object('wave', $1::int, 'n', n, 'amount', 1.50) FROM generate_series(1, 10) AS n", [wave * 10 + i]),
      ),
    );
    await advanceTreeFully(service, undefined, undefined, advanceAuditTree);
    await checkpointIfDue(service, signer, { ...POLICY, origin: auditLogOrigin(ORIGIN), tables: AUDIT_TREE });
  }
  const summary = await archive("audit");
  expect(summary.streams.audit).toMatchObject({ records: 300 });
  expect(summary.audit_log).toMatchObject({ published_size: 300, checkpoints: 3 });

  const dir = mkdtempSync(join(root, "audit-bucket-"));
  for (const key of await keys("audit/tlog/tile/")) {
    const file = join(dir, key.slice("audit/tlog/".length));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, await object(key));
  }
  const notes = await Promise.all((await keys("audit/tlog/checkpoints/")).map(async (k) => (await object(k)).toString("utf8")));
  expect(notes.map((n) => n.split("\n").slice(0, 2).join(" "))).toEqual([100, 200, 300].map((size) => `${auditLogOrigin(ORIGIN)} ${size}`));
  const lines = new Map<number, string>();
  for (const key of (await keys("audit/")).filter((k) => k.endsWith(".ndjson"))) {
    for (const line of (await object(key)).toString("utf8").trimEnd().split("\n")) lines.set((JSON.parse(line) as { id: number }).id, line);
  }
  expect(lines.size).toBe(300);
  const leafOrder = (await service.query<{ audit_id: string }>("SELECT audit_id::text AS audit_id FROM audit_tree_leaves ORDER BY leaf_index")).rows.map((r) => Number(r.audit_id));
  const indexes = [0, 150, 299];
  const signingKey = JSON.parse((await object("receipts/signing-keys/v1.json")).toString("utf8")) as { public_key: string };
  const file = join(dir, "request.json");
  writeFileSync(
    file,
    JSON.stringify({
      vkey: verifierKey(auditLogOrigin(ORIGIN), Buffer.from(signingKey.public_key, "base64")),
      checkpoints: notes,
      tiles: [{ dir, checkpoint: 2, indexes, data: indexes.map((i) => Buffer.from(lines.get(leafOrder[i])!, "utf8").toString("base64")), older: [0, 1] }],
    }),
  );
  const result = JSON.parse((await exec(verifierBin, [file], { timeout: 120_000, maxBuffer: 64 * 2 ** 20 })).stdout);
  expect(result.checkpoints.filter((c: any) => !c.ok)).toEqual([]);
  expect(result.tiles).toHaveLength(1 + indexes.length + 2);
  expect(result.tiles.filter((t: any) => !t.ok)).toEqual([]);

  const intact = await verifyBucket(LEDGER);
  expect({ code: intact.code, findings: intact.report.findings }).toEqual({ code: 0, findings: [] });
  expect(intact.report).toMatchObject({ ok: true, checkpoints: 3, latestSize: 300, consistencyChecked: 2, receiptsChecked: 3 });

  // A writable copy in which one archived entry was changed after the fact.
  const copy = "knhk-tlog-audit-tampered";
  await s3.send(new CreateBucketCommand({ Bucket: copy, CreateBucketConfiguration: { LocationConstraint: MOTO_REGION } }));
  for (const key of [...(await keys("audit/")), ...(await keys("receipts/signing-keys/"))]) await s3.send(new PutObjectCommand({ Bucket: copy, Key: key, Body: await object(key) }));
  const firstObject = (await keys("audit/", copy)).filter((k) => k.endsWith(".ndjson"))[0];
  const [first, ...rest] = (await object(firstObject, copy)).toString("utf8").split("\n");
  const changed = first.replace('"outcome":"allow"', '"outcome":"deny_forbidden"');
  expect(changed).not.toBe(first);
  await s3.send(new PutObjectCommand({ Bucket: copy, Key: firstObject, Body: [changed, ...rest].join("\n") }));
  const tampered = await verifyBucket(copy);
  expect(tampered.code).toBe(1);
  expect(tampered.report.findings).toEqual([{ kind: "inclusion", key: firstObject, detail: `audit entry ${JSON.parse(first).id} is not a leaf of the published tree of size 300` }]);
});
