/**
 * `knhk archive run` / `archive restore --from-s3` against a real PostgreSQL 15 (all migrations,
 * run as a member of knhk_service like the service) and moto's S3 server (PyPI moto[server]).
 *
 * What moto 5.2.5 does NOT enforce (checked by hand, so these tests do not claim it): it accepts an
 * x-amz-checksum-sha256 that does not match the body, a retain-until date in the past, any SSE-KMS
 * key id, lifecycle rules with negative days, and it lets PutObjectRetention shorten a COMPLIANCE
 * retention or turn it into GOVERNANCE. It does refuse deleting a locked object version, with or
 * without x-amz-bypass-governance-retention, and it refuses Object Lock headers on a bucket without
 * Object Lock and a locked upload without an integrity checksum header.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
  type LifecycleRule as SdkLifecycleRule,
} from "@aws-sdk/client-s3";
import { createHash, randomUUID } from "node:crypto";
import { join } from "node:path";
import {
  ArchiveRunError,
  archiveRun,
  loadArchiveConfig,
  type ArchiveConfig,
  type ArchiveSummary,
  type S3Sender,
} from "../../app/src/archive";
import { run } from "../../app/src/cli/archive";
import type { CliContext } from "../../app/src/cli/context";
import { migrate } from "../../app/src/db/migrate";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { createLedger, loadSigner, listReceipts, type Receipt } from "../../app/src/receipts";
import { awsSection } from "../../infra/config/aws";
import { dataLifecycleRules, ledgerLifecycleRules, objectLockConfiguration, retentionDays } from "../../infra/render/archive";
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type TestMoto } from "../support/moto";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { spawnTracked } from "../support/processes";
import { capturedStreams } from "../support/streams";

jest.setTimeout(240_000);

const DAY = 86_400_000;
const RETENTION_DAYS = retentionDays({ mode: "COMPLIANCE", years: 7 });

let pg: TestPostgres;
let moto: TestMoto;
let s3: S3Client;
const databases: PostgresDatabase[] = [];

/** A migrated database, used through a LOGIN member of knhk_service (as the service runs). */
/** The archive job's login, as the Vault role creates it: a member of knhk_archiver only. */
const ARCHIVE_LOGIN = "knhk_archive_job";

async function freshDatabase(name: string): Promise<{ owner: PostgresDatabase; service: PostgresDatabase; archiver: PostgresDatabase; url: string }> {
  await pg.createDatabase(name);
  const owner = createPostgresDatabase({ connectionString: pg.url(name), max: 2 });
  await migrate(owner);
  await pg.psql(
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_app') THEN CREATE ROLE knhk_app LOGIN; END IF; " +
      `IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ARCHIVE_LOGIN}') THEN CREATE ROLE ${ARCHIVE_LOGIN} LOGIN; END IF; END $$; ` +
      `GRANT knhk_service TO knhk_app; GRANT knhk_archiver TO ${ARCHIVE_LOGIN};`,
    name,
  );
  const service = createPostgresDatabase({ connectionString: pg.url(name, "knhk_app"), max: 4 });
  const archiver = createPostgresDatabase({ connectionString: pg.url(name, ARCHIVE_LOGIN), max: 2 });
  databases.push(owner, service, archiver);
  return { owner, service, archiver, url: pg.url(name, "knhk_app") };
}

async function createBuckets(ledger: string, data: string): Promise<void> {
  const where = { CreateBucketConfiguration: { LocationConstraint: MOTO_REGION } } as const;
  await s3.send(new CreateBucketCommand({ Bucket: ledger, ObjectLockEnabledForBucket: true, ...where }));
  await s3.send(new PutObjectLockConfigurationCommand({ Bucket: ledger, ObjectLockConfiguration: objectLockConfiguration({ mode: "COMPLIANCE", years: 7 }) }));
  await s3.send(new CreateBucketCommand({ Bucket: data, ...where }));
}

function archiveEnv(ledger: string, data: string): Record<string, string> {
  return {
    ...moto.env,
    KNHK_ARCHIVE_LEDGER_BUCKET: ledger,
    KNHK_ARCHIVE_DATA_BUCKET: data,
    KNHK_ARCHIVE_RETENTION_MODE: "COMPLIANCE",
    KNHK_ARCHIVE_RETENTION_DAYS: String(RETENTION_DAYS),
    KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS: "90",
    KNHK_ARCHIVE_KMS_KEY_ID: "alias/knhk-archive",
  };
}

function cli(db: PostgresDatabase, env: Record<string, string>) {
  const { stdout, stderr, out, err } = capturedStreams();
  const ctx: CliContext = { db, env, stdout, stderr };
  return { ctx, out, err };
}

/** Receipts appended by the service role, with a signing key the owner registered (as in production). */
async function appendReceipts(dbs: { owner: PostgresDatabase; service: PostgresDatabase }, count: number, from = 0): Promise<void> {
  const db = dbs.service;
  const signer = await loadSigner({ db, env: {}, log: () => undefined, registrar: dbs.owner });
  const ledger = createLedger({ db, signer });
  await Promise.all(
    Array.from({ length: count }, (_, i) => ledger.append({ operation: "archive.test", outcome: "success", evidence: { i: from + i, note: "é\"\n", big: 12345678901234567890 }, sector: "archive" })),
  );
  await ledger.close();
  await signer.close();
}

/** Audit rows at explicit times (occurred_at is an ordinary column with a default). */
async function appendAudit(db: PostgresDatabase, count: number, occurredAt: Date): Promise<void> {
  await db.query(
    "INSERT INTO audit_log (occurred_at, actor, action, target, outcome, details) " +
      "SELECT $1::timestamptz + i * interval '1 millisecond', 'alice@corp', 'authz.decision', 'GET /api/v1/receipts/' || i, 'allow', " +
      "jsonb_build_object('i', i, 'precise', 0.1000000000000000055511151231257827::numeric) FROM generate_series(1, $2) AS i",
    [occurredAt, count],
  );
}

async function ensureSnapshot(db: PostgresDatabase): Promise<string> {
  const existing = await db.query<{ id: string }>("SELECT id FROM knowledge_snapshots LIMIT 1");
  if (existing.rows.length) return existing.rows[0].id;
  const id = randomUUID();
  await db.query(
    "INSERT INTO knowledge_snapshots (id, version, content, content_hash, status, created_at) VALUES ($1, 1, '{}', $2, 'current', now())",
    [id, "0".repeat(64)],
  );
  return id;
}

async function appendObservations(db: PostgresDatabase, count: number, createdAt: Date): Promise<void> {
  const snapshot = await ensureSnapshot(db);
  await db.query(
    "INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks) " +
      "SELECT gen_random_uuid(), 'sensor.reading', jsonb_build_object('v', i), 'generic', '{\"unit\":\"C\"}', " +
      "$1::timestamptz + i * interval '1 second' - interval '5 seconds', $1::timestamptz + i * interval '1 second', $2, false, '[]', 3 " +
      "FROM generate_series(1, $3) AS i",
    [createdAt, snapshot, count],
  );
}

async function listKeys(bucket: string, prefix = ""): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function versionsOf(bucket: string): Promise<{ Key?: string; VersionId?: string }[]> {
  return (await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }))).Versions ?? [];
}

async function readLines(bucket: string, key: string): Promise<Record<string, unknown>[]> {
  const body = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString("utf8");
  expect(body.endsWith("\n")).toBe(true);
  return body.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
}

function day(iso: string): string {
  return iso.slice(0, 10).replace(/-/g, "/");
}

function pad(n: number): string {
  return String(n).padStart(12, "0");
}

beforeAll(async () => {
  [pg, moto] = await Promise.all([startPostgres({ settings: { synchronous_commit: "on" } }), startMoto()]);
  s3 = new S3Client({ region: MOTO_REGION, endpoint: moto.endpoint, forcePathStyle: true, credentials: MOTO_CREDENTIALS });
});

afterAll(async () => {
  s3?.destroy();
  for (const db of databases) await db.close().catch(() => undefined);
  await Promise.all([pg?.destroy(), moto?.destroy()]);
});

describe("archive run against PostgreSQL 15 and moto", () => {
  const LEDGER = "knhk-test-ledger";
  const DATA = "knhk-test-data";
  let db: { owner: PostgresDatabase; service: PostgresDatabase; archiver: PostgresDatabase };
  let env: Record<string, string>;
  let firstSummary: ArchiveSummary;
  let firstErr: string;

  beforeAll(async () => {
    db = await freshDatabase("knhk_archive");
    await createBuckets(LEDGER, DATA);
    env = archiveEnv(LEDGER, DATA);
    await appendReceipts(db, 250);
    await appendAudit(db.owner, 120, new Date(Date.now() - 3600_000));
    await appendAudit(db.owner, 3, new Date()); // younger than the settle horizon: stays for the next run
    await appendObservations(db.owner, 150, new Date(Date.now() - 100 * DAY));
    await appendObservations(db.owner, 10, new Date(Date.now() - 2 * DAY)); // not 90 days old yet
    const c = cli(db.archiver, env);
    expect(await run(["run", "--batch", "100"], c.ctx)).toBe(0);
    firstSummary = JSON.parse(c.out()) as ArchiveSummary;
    firstErr = c.err();
  });

  test("the summary counts objects and records per stream; progress goes to stderr", () => {
    expect(firstSummary).toEqual({
      ok: true,
      signing_keys: { uploaded: 1, skipped: 0 },
      // No checkpoint signed in this database (no service ran): nothing of either log to publish.
      receipt_log: { checkpoints: 0, tiles_uploaded: 0, tiles_skipped: 0, published_size: 0 },
      audit_log: { checkpoints: 0, tiles_uploaded: 0, tiles_skipped: 0, published_size: 0 },
      streams: {
        receipts: { uploaded: 3, skipped: 0, records: 250, last_position: 250 },
        audit: { uploaded: 2, skipped: 0, records: 120, last_position: 120 },
        observations: { uploaded: 2, skipped: 0, records: 150, last_position: 150 },
      },
    });
    expect(firstErr).toMatch(/^archive: receipts 100\/250 uploaded s3:\/\/knhk-test-ledger\/receipts\//m);
    expect(firstErr).toMatch(/^archive: observations 150\/150 uploaded s3:\/\/knhk-test-data\/observations\//m);
  });

  test("receipts land under receipts/YYYY/MM/DD/<first>-<last>.ndjson with exactly the database rows", async () => {
    const all = await listReceipts(db.service, { limit: 1000 });
    const expected = [
      [1, 100],
      [101, 200],
      [201, 250],
    ].map(([a, b]) => `receipts/${day(all[a - 1].created_at)}/${pad(a)}-${pad(b)}.ndjson`);
    expect(await listKeys(LEDGER, "receipts/")).toEqual([...expected, "receipts/signing-keys/v1.json"].sort());
    const archived: Receipt[] = [];
    for (const key of expected) archived.push(...((await readLines(LEDGER, key)) as unknown as Receipt[]));
    expect(archived).toEqual(all);
  });

  test("ledger objects carry COMPLIANCE retention until the last record + 2562 days, SHA-256 and SSE-KMS", async () => {
    const all = await listReceipts(db.service, { limit: 1000 });
    const key = `receipts/${day(all[100].created_at)}/${pad(101)}-${pad(200)}.ndjson`;
    const head = await s3.send(new HeadObjectCommand({ Bucket: LEDGER, Key: key, ChecksumMode: "ENABLED" }));
    expect(head.ObjectLockMode).toBe("COMPLIANCE");
    expect(head.ObjectLockRetainUntilDate?.toISOString()).toBe(new Date(Date.parse(all[199].created_at) + RETENTION_DAYS * DAY).toISOString());
    const body = await (await s3.send(new GetObjectCommand({ Bucket: LEDGER, Key: key }))).Body!.transformToString("utf8");
    const digest = createHash("sha256").update(body).digest();
    expect(head.ChecksumSHA256).toBe(digest.toString("base64"));
    expect(head.Metadata).toMatchObject({ "knhk-sha256": digest.toString("hex"), "knhk-stream": "receipts", "knhk-first": "101", "knhk-last": "200", "knhk-records": "100" });
    expect(head.ServerSideEncryption).toBe("aws:kms");
    expect(head.SSEKMSKeyId).toBe("alias/knhk-archive");

    const signingKey = await s3.send(new HeadObjectCommand({ Bucket: LEDGER, Key: "receipts/signing-keys/v1.json" }));
    expect(signingKey.ObjectLockMode).toBe("COMPLIANCE");
    const keyRow = (await db.service.query<{ public_key: string }>("SELECT public_key FROM receipt_signing_keys WHERE key_version = 1")).rows[0];
    expect((await readLines(LEDGER, "receipts/signing-keys/v1.json"))[0]).toMatchObject({ key_version: 1, public_key: keyRow.public_key });
  });

  test("audit entries: settled rows only, byte-exact jsonb, microsecond timestamps", async () => {
    const keys = await listKeys(LEDGER, "audit/");
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^audit\/\d{4}\/\d{2}\/\d{2}\/000000000001-000000000100\.ndjson$/);
    expect(keys[1]).toMatch(/\/000000000101-000000000120\.ndjson$/);
    const archived = [...(await readLines(LEDGER, keys[0])), ...(await readLines(LEDGER, keys[1]))];
    const rows = await db.service.query<{ id: string; occurred_at: string; actor: string; action: string; target: string; outcome: string; details: unknown }>(
      "SELECT id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS occurred_at, actor, action, target, outcome, details FROM audit_log WHERE id <= 120 ORDER BY id",
    );
    expect(archived).toEqual(rows.rows.map((r) => ({ ...r, id: Number(r.id) })));
    const head = await s3.send(new HeadObjectCommand({ Bucket: LEDGER, Key: keys[1] }));
    expect(head.ObjectLockMode).toBe("COMPLIANCE");
    expect(head.ObjectLockRetainUntilDate?.getTime()).toBe(Math.floor(Date.parse(rows.rows[119].occurred_at.replace(/(\.\d{3})\d+/, "$1")) + RETENTION_DAYS * DAY));
    // The numeric in details keeps every digit Postgres stored (no float round trip).
    const raw = await (await s3.send(new GetObjectCommand({ Bucket: LEDGER, Key: keys[0] }))).Body!.transformToString("utf8");
    expect(raw).toContain('"precise": 0.1000000000000000055511151231257827');
  });

  test("observations older than 90 days go to the data bucket, without Object Lock", async () => {
    const keys = await listKeys(DATA);
    expect(keys).toHaveLength(2);
    expect(keys.every((k) => k.startsWith("observations/"))).toBe(true);
    expect(keys[1]).toMatch(/\/000000000101-000000000150\.ndjson$/);
    const archived = [...(await readLines(DATA, keys[0])), ...(await readLines(DATA, keys[1]))];
    const rows = await db.service.query<Record<string, unknown>>(
      "SELECT seq, id::text AS id, event_type, sector, to_char(observed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS observed_at, " +
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at, snapshot_id::text AS snapshot_id, flagged, hot_path_ticks, " +
        "value, metadata, guards FROM observations WHERE seq <= 150 ORDER BY seq",
    );
    expect(archived).toEqual(rows.rows.map((r) => ({ ...r, seq: Number(r.seq) })));
    const head = await s3.send(new HeadObjectCommand({ Bucket: DATA, Key: keys[0] }));
    expect(head.ObjectLockMode).toBeUndefined();
    expect(head.ServerSideEncryption).toBe("aws:kms");
  });

  test("checkpoints are stored per stream and nothing was deleted from the database", async () => {
    const rows = await db.service.query<{ stream: string; last_position: string; archived_objects: string; pending_key: string | null }>(
      "SELECT stream, last_position, archived_objects, pending_key FROM archive_checkpoints ORDER BY stream",
    );
    expect(rows.rows).toEqual([
      { stream: "audit", last_position: "120", archived_objects: "2", pending_key: null },
      { stream: "observations", last_position: "150", archived_objects: "2", pending_key: null },
      { stream: "receipts", last_position: "250", archived_objects: "3", pending_key: null },
    ]);
    const counts = await db.service.query<{ r: string; a: string; o: string }>(
      "SELECT (SELECT count(*) FROM receipts) AS r, (SELECT count(*) FROM audit_log) AS a, (SELECT count(*) FROM observations) AS o",
    );
    expect(counts.rows[0]).toEqual({ r: "250", a: "123", o: "160" });
  });

  test("deleting a locked object version is refused (COMPLIANCE), also with the governance bypass", async () => {
    const version = (await versionsOf(LEDGER)).find((v) => v.Key?.startsWith("receipts/2"))!;
    for (const bypass of [false, true]) {
      await expect(
        s3.send(new DeleteObjectCommand({ Bucket: LEDGER, Key: version.Key, VersionId: version.VersionId, ...(bypass ? { BypassGovernanceRetention: true } : {}) })),
      ).rejects.toMatchObject({ name: "AccessDenied" });
    }
    const still = await s3.send(new HeadObjectCommand({ Bucket: LEDGER, Key: version.Key, VersionId: version.VersionId }));
    expect(still.ObjectLockMode).toBe("COMPLIANCE");
  });

  test("a rerun uploads nothing; later rows go into new objects only", async () => {
    const before = (await versionsOf(LEDGER)).length + (await versionsOf(DATA)).length;
    const again = cli(db.archiver, env);
    expect(await run(["run", "--batch", "100"], again.ctx)).toBe(0);
    expect(JSON.parse(again.out())).toEqual({
      ok: true,
      signing_keys: { uploaded: 0, skipped: 1 },
      receipt_log: { checkpoints: 0, tiles_uploaded: 0, tiles_skipped: 0, published_size: 0 },
      audit_log: { checkpoints: 0, tiles_uploaded: 0, tiles_skipped: 0, published_size: 0 },
      streams: {
        receipts: { uploaded: 0, skipped: 0, records: 0, last_position: 250 },
        audit: { uploaded: 0, skipped: 0, records: 0, last_position: 120 },
        observations: { uploaded: 0, skipped: 0, records: 0, last_position: 150 },
      },
    });
    expect((await versionsOf(LEDGER)).length + (await versionsOf(DATA)).length).toBe(before);

    await appendReceipts(db, 30, 250);
    const more = cli(db.archiver, env);
    expect(await run(["run", "--batch", "100", "--stream", "receipts"], more.ctx)).toBe(0);
    const summary = JSON.parse(more.out()) as ArchiveSummary;
    expect(summary.streams).toEqual({ receipts: { uploaded: 1, skipped: 0, records: 30, last_position: 280 } });
    expect((await listKeys(LEDGER, "receipts/2")).at(-1)).toMatch(/\/000000000251-000000000280\.ndjson$/);
  });

  test("a failed upload exits 1 naming the object key and the S3 error", async () => {
    await appendReceipts(db, 5, 280);
    const c = cli(db.archiver, { ...env, KNHK_ARCHIVE_LEDGER_BUCKET: "knhk-no-such-bucket" });
    expect(await run(["run", "--stream", "receipts"], c.ctx)).toBe(1);
    expect(c.err()).toMatch(/archive: failed: s3:\/\/knhk-no-such-bucket\/receipts\/signing-keys\/v1\.json: PutObject failed: NoSuchBucket/);
    expect(JSON.parse(c.out())).toMatchObject({ ok: false, error: { bucket: "knhk-no-such-bucket", key: "receipts/signing-keys/v1.json" } });
  });
});

/** An S3 client whose PutObject succeeds `okPuts` times, then uploads once more and "crashes" before the checkpoint. */
function crashingAfterUpload(inner: S3Sender, okPuts: number): S3Sender & { puts: number } {
  const wrapper = {
    puts: 0,
    async send(command: Parameters<S3Client["send"]>[0]) {
      const result = await inner.send(command as never);
      if (command instanceof PutObjectCommand && ++wrapper.puts > okPuts) throw new Error("injected crash between upload and checkpoint");
      return result;
    },
  };
  return wrapper as unknown as S3Sender & { puts: number };
}

/** An S3 client whose PutObject of a key matching `pattern` fails with an S3 500 (nothing uploaded). */
function failingBeforeUpload(inner: S3Sender, pattern: RegExp): S3Sender {
  return {
    async send(command: Parameters<S3Client["send"]>[0]) {
      if (command instanceof PutObjectCommand && pattern.test(command.input.Key ?? "")) {
        throw Object.assign(new Error("We encountered an internal error. Please try again."), { name: "InternalError", $metadata: { httpStatusCode: 500 } });
      }
      return inner.send(command as never);
    },
  } as unknown as S3Sender;
}

describe("interrupted runs resume without duplicates", () => {
  const LEDGER = "knhk-resume-ledger";
  const DATA = "knhk-resume-data";
  let db: { owner: PostgresDatabase; service: PostgresDatabase; archiver: PostgresDatabase };
  let config: ArchiveConfig;

  beforeAll(async () => {
    db = await freshDatabase("knhk_resume");
    await createBuckets(LEDGER, DATA);
    config = loadArchiveConfig(archiveEnv(LEDGER, DATA));
    await appendReceipts(db, 250);
    await appendAudit(db.owner, 50, new Date(Date.now() - 3600_000));
  });

  test("a crash after an upload but before its checkpoint: the rerun finds the object and skips it", async () => {
    // Signing key, receipts 1..100 and 101..200 go through; the partial batch 201..250 is uploaded, then the "crash".
    const crashing = crashingAfterUpload(s3, 3);
    const error = await archiveRun({ db: db.archiver, s3: crashing, config, batchSize: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveRunError);
    expect((error as ArchiveRunError).message).toMatch(/000000000201-000000000250\.ndjson: PutObject failed: Error: injected crash/);
    expect((error as ArchiveRunError).summary.streams.receipts).toEqual({ uploaded: 2, skipped: 0, records: 200, last_position: 200 });
    const staged = await db.service.query<{ last_position: string; pending_first: string; pending_last: string }>(
      "SELECT last_position, pending_first, pending_last FROM archive_checkpoints WHERE stream = 'receipts'",
    );
    expect(staged.rows[0]).toEqual({ last_position: "200", pending_first: "201", pending_last: "250" });

    // New receipts arrive meanwhile: the staged batch is repeated exactly (201..250, not 201..270).
    await appendReceipts(db, 20, 250);
    const progress: string[] = [];
    const resumed = await archiveRun({ db: db.archiver, s3, config, batchSize: 100, progress: (l) => progress.push(l) });
    expect(resumed.streams.receipts).toEqual({ uploaded: 1, skipped: 1, records: 70, last_position: 270 });
    expect(resumed.streams.audit).toEqual({ uploaded: 1, skipped: 0, records: 50, last_position: 50 });
    expect(progress).toContain(`archive: receipts 50/70 skipped s3://${LEDGER}/${(await listKeys(LEDGER, "receipts/2"))[2]}`);

    const keys = await listKeys(LEDGER, "receipts/2");
    expect(keys.map((k) => k.slice(-32))).toEqual([
      "000000000001-000000000100.ndjson",
      "000000000101-000000000200.ndjson",
      "000000000201-000000000250.ndjson",
      "000000000251-000000000270.ndjson",
    ]);
    const seqs: number[] = [];
    for (const key of keys) seqs.push(...(await readLines(LEDGER, key)).map((r) => r.seq as number));
    expect(seqs).toEqual(Array.from({ length: 270 }, (_, i) => i + 1));
    // One version per key: nothing was uploaded twice.
    const versions = await versionsOf(LEDGER);
    expect(new Set(versions.map((v) => v.Key)).size).toBe(versions.length);
  });

  test("a failed upload (nothing stored) is retried by the next run", async () => {
    await appendReceipts(db, 150, 270);
    const error = await archiveRun({ db: db.archiver, s3: failingBeforeUpload(s3, /000000000271-/), config, batchSize: 100, streams: ["receipts"] }).catch((e: unknown) => e);
    expect((error as ArchiveRunError).message).toMatch(/000000000271-000000000370\.ndjson: PutObject failed: InternalError: We encountered an internal error/);
    const resumed = await archiveRun({ db: db.archiver, s3, config, batchSize: 100, streams: ["receipts"] });
    expect(resumed.streams.receipts).toEqual({ uploaded: 2, skipped: 0, records: 150, last_position: 420 });
    const versions = await versionsOf(LEDGER);
    expect(new Set(versions.map((v) => v.Key)).size).toBe(versions.length);
  });

  test("an object already at the key with other content is refused, not overwritten", async () => {
    await appendReceipts(db, 10, 420);
    const all = await listReceipts(db.service, { afterSeq: 420, limit: 10 });
    const key = `receipts/${day(all[0].created_at)}/${pad(421)}-${pad(430)}.ndjson`;
    await s3.send(new PutObjectCommand({ Bucket: LEDGER, Key: key, Body: "not the receipts\n", ChecksumAlgorithm: "SHA256", ObjectLockMode: "COMPLIANCE", ObjectLockRetainUntilDate: new Date(Date.now() + DAY) }));
    const error = await archiveRun({ db: db.archiver, s3, config, streams: ["receipts"] }).catch((e: unknown) => e);
    expect((error as ArchiveRunError).summary.error).toMatchObject({ bucket: LEDGER, key });
    expect((error as Error).message).toMatch(/already exists with different content/);
  });

  test("a second concurrent run is refused by the archive lock", async () => {
    await db.service.session(async (s) => {
      await s.query("SELECT pg_advisory_lock(hashtext('knhk.archive'))");
      try {
        await expect(archiveRun({ db: db.archiver, s3, config })).rejects.toThrow(/another archive run holds the archive lock/);
      } finally {
        await s.query("SELECT pg_advisory_unlock(hashtext('knhk.archive'))");
      }
    });
  });
});

describe("archive restore --from-s3", () => {
  const LEDGER = "knhk-restore-ledger";
  const DATA = "knhk-restore-data";
  let source: { owner: PostgresDatabase; service: PostgresDatabase; archiver: PostgresDatabase };
  let env: Record<string, string>;

  beforeAll(async () => {
    source = await freshDatabase("knhk_restore_source");
    await createBuckets(LEDGER, DATA);
    env = archiveEnv(LEDGER, DATA);
    await appendReceipts(source, 230);
    await appendAudit(source.owner, 40, new Date(Date.now() - 3600_000));
    expect(await run(["run", "--batch", "100"], cli(source.archiver, env).ctx)).toBe(0);
  });

  test("re-imports receipts and audit into an empty database and verifies the chain", async () => {
    const scratch = await freshDatabase("knhk_restore_scratch");
    const c = cli(scratch.owner, env);
    expect(await run(["restore", "--from-s3"], c.ctx)).toBe(0);
    const summary = JSON.parse(c.out());
    expect(summary).toMatchObject({
      ok: true,
      receipts: { objects: 3, records: 230, signing_keys: 1, overwritten: [], verification: { ok: true, total_count: 230, verified_count: 230 } },
      audit: { objects: 1, records: 40, overwritten: [] },
    });
    expect(await listReceipts(scratch.service, { limit: 1000 })).toEqual(await listReceipts(source.service, { limit: 1000 }));
    const audit = "SELECT id, occurred_at, actor, action, target, outcome, details::text FROM audit_log ORDER BY id";
    expect((await scratch.owner.query(audit)).rows).toEqual((await source.owner.query(audit)).rows);

    const again = cli(scratch.owner, env);
    expect(await run(["restore", "--from-s3"], again.ctx)).toBe(1);
    expect(again.err()).toMatch(/receipts already holds 230 rows: restore into an empty scratch database/);
  });

  test("a version written over an archived object is ignored: the original is restored", async () => {
    const key = (await listKeys(LEDGER, "receipts/2"))[1];
    const original = await (await s3.send(new GetObjectCommand({ Bucket: LEDGER, Key: key }))).Body!.transformToString("utf8");
    const forged = original.replace('"outcome":"success"', '"outcome":"failed"');
    expect(forged).not.toBe(original);
    const digest = createHash("sha256").update(forged).digest();
    await s3.send(
      new PutObjectCommand({
        Bucket: LEDGER,
        Key: key,
        Body: forged,
        ChecksumAlgorithm: "SHA256",
        ChecksumSHA256: digest.toString("base64"),
        Metadata: { "knhk-sha256": digest.toString("hex") },
        ObjectLockMode: "COMPLIANCE",
        ObjectLockRetainUntilDate: new Date(Date.now() + DAY),
      }),
    );
    const scratch = await freshDatabase("knhk_restore_forged");
    const c = cli(scratch.owner, env);
    expect(await run(["restore", "--from-s3", "--stream", "receipts"], c.ctx)).toBe(0);
    const summary = JSON.parse(c.out());
    expect(summary.receipts).toMatchObject({ records: 230, overwritten: [key], verification: { ok: true } });
    expect(summary.audit).toBeUndefined();
  });
});

describe("the CLI process: npm run knhk -- archive run", () => {
  const LEDGER = "knhk-process-ledger";
  const DATA = "knhk-process-data";
  const ROOT = join(__dirname, "..", "..");

  /** Runs the real dispatcher in a child process; `killAfter` SIGKILLs it after that many progress lines. */
  function archiveProcess(env: Record<string, string>, killAfter?: number): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
    return new Promise((resolve, reject) => {
      // `node --import tsx` rather than the tsx binary, which runs the program in a grandchild a kill would miss.
      const tracked = spawnTracked(process.execPath, ["--import", "tsx", join(ROOT, "app", "src", "cli", "index.ts"), "archive", "run", "--batch", "100"], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const child = tracked.child;
      let out = "";
      let err = "";
      child.stdout!.on("data", (c) => (out += c));
      child.stderr!.on("data", (c) => {
        err += c;
        if (killAfter !== undefined && (err.match(/^archive: receipts /gm) ?? []).length >= killAfter) tracked.signal("SIGKILL");
      });
      child.on("error", reject);
      // Resolved once the whole group is gone (stop() after the exit only confirms and untracks it).
      child.on("close", (code, signal) => void tracked.stop().then(() => resolve({ code, signal, out, err })));
    });
  }

  test("killed mid-run, the next run completes and every receipt is archived exactly once", async () => {
    const db = await freshDatabase("knhk_process");
    await createBuckets(LEDGER, DATA);
    await appendReceipts(db, 3000);
    // As the job runs: its own login, no DDL at start.
    const env = { ...archiveEnv(LEDGER, DATA), DATABASE_URL: pg.url("knhk_process", ARCHIVE_LOGIN), KNHK_MIGRATE_ON_START: "false" };

    const killed = await archiveProcess(env, 3);
    expect(killed.signal).toBe("SIGKILL");
    const checkpoint = await db.service.query<{ last_position: string }>("SELECT last_position FROM archive_checkpoints WHERE stream = 'receipts'");
    expect(Number(checkpoint.rows[0].last_position)).toBeLessThan(3000);

    const resumed = await archiveProcess(env);
    expect(resumed.code).toBe(0);
    const summary = JSON.parse(resumed.out) as ArchiveSummary;
    expect(summary.streams.receipts?.last_position).toBe(3000);

    const keys = await listKeys(LEDGER, "receipts/2");
    expect(keys).toHaveLength(30);
    const seqs: number[] = [];
    for (const key of keys) seqs.push(...(await readLines(LEDGER, key)).map((r) => r.seq as number));
    expect(seqs).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    const versions = await versionsOf(LEDGER);
    expect(new Set(versions.map((v) => v.Key)).size).toBe(versions.length);
  });
});

describe("the rendered bucket configurations (infra/render/archive.ts) on the emulator", () => {
  const lifecycle = awsSection.parse({}).lifecycle;

  /** Through JSON: drops the SDK's undefined members. */
  const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

  test("PutBucketLifecycleConfiguration accepts the ledger and data rules and reads them back equal", async () => {
    await createBuckets("knhk-render-ledger", "knhk-render-data");
    const cases: [string, ReturnType<typeof dataLifecycleRules>][] = [
      ["knhk-render-ledger", ledgerLifecycleRules(lifecycle, { mode: "COMPLIANCE", years: 7 })],
      ["knhk-render-data", dataLifecycleRules(lifecycle)],
    ];
    for (const [bucket, rules] of cases) {
      await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: rules as SdkLifecycleRule[] } }));
      const back = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
      expect(plain(back.Rules)).toEqual(plain(rules));
    }
    const ledgerRules = ledgerLifecycleRules(lifecycle, { mode: "COMPLIANCE", years: 7 });
    expect(ledgerRules.find((r) => r.ID === "receipts-to-glacier")?.NoncurrentVersionExpiration).toEqual({ NoncurrentDays: 2562 });
  });

  test("PutObjectLockConfiguration accepts COMPLIANCE 7 years and GOVERNANCE 1 day and reads them back", async () => {
    const configs = [objectLockConfiguration({ mode: "COMPLIANCE", years: 7 }), objectLockConfiguration({ mode: "GOVERNANCE", days: 1 })];
    for (const config of configs) {
      await s3.send(new PutObjectLockConfigurationCommand({ Bucket: "knhk-render-ledger", ObjectLockConfiguration: config }));
      const back = plain((await s3.send(new GetObjectLockConfigurationCommand({ Bucket: "knhk-render-ledger" }))).ObjectLockConfiguration) as {
        Rule: { DefaultRetention: Record<string, unknown> };
      };
      // moto 5.2.5 reports the unset one of Days/Years as 0 (S3 omits it): drop exactly that.
      const retention = back.Rule.DefaultRetention;
      for (const unit of ["Days", "Years"]) if (retention[unit] === 0 && !(unit in config.Rule.DefaultRetention)) delete retention[unit];
      expect(back).toEqual(config);
    }
  });
});
