/**
 * `knhk archive run`: copies new receipts and audit entries to the Object-Locked ledger bucket and
 * observations older than the archive age to the data bucket, as NDJSON batches.
 *
 * Per stream and batch: read the next rows after the checkpoint, record the batch as staged in
 * archive_checkpoints (write-ahead), HeadObject its key (an object with the same checksum metadata
 * means an earlier interrupted run uploaded it: skip), PutObject with a SHA-256 checksum, Object
 * Lock retention and SSE-KMS, then advance the checkpoint. A staged batch found at start is
 * repeated exactly (same rows, same key), so reruns and resumed runs upload nothing twice.
 *
 * Receipts and audit entries are never deleted from the database. Observations are deleted only
 * with `deleteArchivedObservations` (the scheduled job), and only those the observations
 * checkpoint has passed: every one of them is in an object the data bucket acknowledged.
 */
import { HeadObjectCommand, PutObjectCommand, type PutObjectCommandInput } from "@aws-sdk/client-s3";
import type { Database, Sql } from "../db/types";
import { buildBatch, retainUntil, sha256, type Batch, type StreamName } from "./batch";
import { completeBatch, loadCheckpoint, stageBatch } from "./checkpoints";
import type { ArchiveConfig } from "./config";
import { describeS3Error, isNotFound, type S3Sender } from "./s3";
import { AUDIT_LOG, publishLog, RECEIPT_LOG, type LogPublicationSummary } from "./log-publication";
import { ARCHIVE_PREFIXES, STREAMS, STREAM_NAMES, type Horizon } from "./streams";

export const DEFAULT_BATCH_SIZE = 1000;
export const DEFAULT_AUDIT_SETTLE_SECONDS = 300;
/** S3 lower-cases user metadata names; these are sent as x-amz-meta-knhk-*. */
export const META = { sha256: "knhk-sha256", stream: "knhk-stream", first: "knhk-first", last: "knhk-last", records: "knhk-records" } as const;

export interface ArchiveRunOptions {
  readonly db: Database;
  readonly s3: S3Sender;
  readonly config: ArchiveConfig;
  /** Default: all three. */
  readonly streams?: readonly StreamName[];
  /** Records per object, 1..100000; default 1000. */
  readonly batchSize?: number;
  /** Audit rows younger than this are left for the next run; default 300. */
  readonly auditSettleSeconds?: number;
  /** After archiving observations, delete the archived rows from the database (in batches of `batchSize`). */
  readonly deleteArchivedObservations?: boolean;
  readonly now?: () => Date;
  /** One line per uploaded or skipped object. */
  readonly progress?: (line: string) => void;
}

export interface StreamSummary {
  uploaded: number;
  skipped: number;
  records: number;
  last_position: number;
  /** Rows deleted from the database after archiving (observations with deleteArchivedObservations). */
  deleted?: number;
}

export interface ArchiveSummary {
  ok: boolean;
  streams: Partial<Record<StreamName, StreamSummary>>;
  signing_keys?: { uploaded: number; skipped: number };
  /** The receipt log's checkpoints and tiles published with the receipts stream. */
  receipt_log?: LogPublicationSummary;
  audit_log?: LogPublicationSummary;
  error?: { bucket: string; key: string; message: string };
}

/** A failed S3 call or a refused object, with the object it concerned. */
export class ArchiveObjectError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    reason: string,
  ) {
    super(`s3://${bucket}/${key}: ${reason}`);
    this.name = "ArchiveObjectError";
  }
}

export class ArchiveRunError extends Error {
  constructor(
    message: string,
    readonly summary: ArchiveSummary,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = "ArchiveRunError";
  }
}

export interface ArchiveObject {
  readonly key: string;
  readonly body: string | Buffer;
  /** Default: JSON for .json keys, NDJSON otherwise. */
  readonly contentType?: string;
  readonly sha256Hex: string;
  readonly sha256Base64: string;
  readonly metadata: Record<string, string>;
}

export interface Lock {
  readonly mode: "COMPLIANCE" | "GOVERNANCE";
  readonly until: Date;
}

/** Uploads an object unless the same content is already there; refuses a different one. */
export async function putOnce(s3: S3Sender, bucket: string, object: ArchiveObject, lock: Lock | null, kmsKeyId?: string): Promise<"uploaded" | "skipped"> {
  let existing: Record<string, string> | undefined | null = null;
  try {
    existing = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: object.key }))).Metadata ?? {};
  } catch (error) {
    if (!isNotFound(error)) throw new ArchiveObjectError(bucket, object.key, `HeadObject failed: ${describeS3Error(error)}`);
  }
  if (existing) {
    if (existing[META.sha256] === object.sha256Hex) return "skipped";
    throw new ArchiveObjectError(
      bucket,
      object.key,
      `already exists with different content (sha256 ${existing[META.sha256] ?? "unknown"}, expected ${object.sha256Hex}); refusing to add a second version`,
    );
  }
  const input: PutObjectCommandInput = {
    Bucket: bucket,
    Key: object.key,
    Body: object.body,
    ContentType: object.contentType ?? (object.key.endsWith(".json") ? "application/json" : "application/x-ndjson"),
    ChecksumAlgorithm: "SHA256",
    ChecksumSHA256: object.sha256Base64,
    Metadata: { ...object.metadata, [META.sha256]: object.sha256Hex },
    ...(lock ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.until } : {}),
    ...(kmsKeyId ? { ServerSideEncryption: "aws:kms" as const, SSEKMSKeyId: kmsKeyId, BucketKeyEnabled: true } : {}),
  };
  try {
    await s3.send(new PutObjectCommand(input));
  } catch (error) {
    throw new ArchiveObjectError(bucket, object.key, `PutObject failed: ${describeS3Error(error)}`);
  }
  return "uploaded";
}

function batchObject(batch: Batch): ArchiveObject {
  return {
    key: batch.key,
    body: batch.body,
    sha256Hex: batch.sha256Hex,
    sha256Base64: batch.sha256Base64,
    metadata: { [META.stream]: batch.stream, [META.first]: String(batch.first), [META.last]: String(batch.last), [META.records]: String(batch.records) },
  };
}

async function archiveStream(sql: Sql, name: StreamName, options: Required<Pick<ArchiveRunOptions, "s3" | "config">> & {
  batchSize: number;
  horizon: Horizon;
  now: () => Date;
  progress: (line: string) => void;
  summary: StreamSummary;
}): Promise<void> {
  const { s3, config, summary } = options;
  const source = STREAMS[name];
  const bucket = source.bucket === "ledger" ? config.ledgerBucket : config.dataBucket;
  let checkpoint = await loadCheckpoint(sql, name);
  summary.last_position = checkpoint.lastPosition;
  const total = await source.count(sql, checkpoint.lastPosition, options.horizon);
  let done = 0;
  for (;;) {
    let batch: Batch;
    if (checkpoint.pending) {
      const staged = checkpoint.pending;
      const rows = await source.range(sql, staged.first, staged.last);
      const rebuilt = rows.length ? buildBatch(name, source.prefix, rows) : null;
      if (!rebuilt || rebuilt.key !== staged.key || rebuilt.sha256Hex !== staged.sha256Hex) {
        throw new ArchiveObjectError(
          bucket,
          staged.key,
          `the staged ${name} batch ${staged.first}..${staged.last} no longer matches the database rows (sha256 ${rebuilt?.sha256Hex ?? "of no rows"}, staged ${staged.sha256Hex})`,
        );
      }
      batch = rebuilt;
    } else {
      const rows = await source.next(sql, checkpoint.lastPosition, options.batchSize, options.horizon);
      if (rows.length === 0) break;
      batch = buildBatch(name, source.prefix, rows);
      await stageBatch(sql, batch);
    }
    const lock = source.bucket === "ledger" ? { mode: config.retentionMode, until: retainUntil(batch.lastTimestamp, config.retentionDays, options.now()) } : null;
    const outcome = await putOnce(s3, bucket, batchObject(batch), lock, config.kmsKeyId);
    await completeBatch(sql, batch);
    summary[outcome]++;
    summary.records += batch.records;
    summary.last_position = batch.last;
    done += batch.records;
    options.progress(`archive: ${name} ${done}/${Math.max(total, done)} ${outcome} s3://${bucket}/${batch.key}`);
    checkpoint = { ...checkpoint, lastPosition: batch.last, pending: null };
  }
}

/** Public halves of the receipt signing keys, so an archived chain can be verified on its own. */
async function archiveSigningKeys(sql: Sql, options: { s3: S3Sender; config: ArchiveConfig; now: () => Date; progress: (line: string) => void }) {
  const counts = { uploaded: 0, skipped: 0 };
  const keys = await sql.query<{ key_version: number; public_key: string; ephemeral: boolean; activated_at: string }>(
    "SELECT key_version, public_key, ephemeral, to_char(activated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS activated_at " +
      "FROM receipt_signing_keys ORDER BY key_version",
  );
  for (const row of keys.rows) {
    const body = JSON.stringify({ key_version: Number(row.key_version), public_key: row.public_key, ephemeral: row.ephemeral, activated_at: row.activated_at }) + "\n";
    const digest = sha256(body);
    const key = `${ARCHIVE_PREFIXES.signingKeys}v${Number(row.key_version)}.json`;
    const until = new Date(options.now().getTime() + options.config.retentionDays * 86_400_000);
    const outcome = await putOnce(
      options.s3,
      options.config.ledgerBucket,
      { key, body, sha256Hex: digest.hex, sha256Base64: digest.base64, metadata: { [META.stream]: "signing-keys" } },
      { mode: options.config.retentionMode, until },
      options.config.kmsKeyId,
    );
    counts[outcome]++;
    options.progress(`archive: signing key v${row.key_version} ${outcome} s3://${options.config.ledgerBucket}/${key}`);
  }
  return counts;
}

/**
 * Deletes archived observations: positions up to the checkpoint (each in an uploaded object) that
 * are also past the archive age, so a row is never deleted that the archive could not have
 * exported. Batches keep each DELETE's locks and WAL short.
 */
async function deleteArchivedObservations(sql: Sql, options: { horizon: Horizon; batchSize: number; progress: (line: string) => void; summary: StreamSummary }) {
  const { summary } = options;
  const upTo = (await loadCheckpoint(sql, "observations")).lastPosition;
  summary.deleted = 0;
  for (;;) {
    const result = await sql.query(
      "WITH archived AS (SELECT seq FROM observations WHERE seq <= $1 AND created_at < $2 ORDER BY seq LIMIT $3) " +
        "DELETE FROM observations o USING archived a WHERE o.seq = a.seq",
      [upTo, options.horizon.observationsBefore, options.batchSize],
    );
    summary.deleted += result.rowCount;
    if (result.rowCount < options.batchSize) break;
  }
  options.progress(`archive: observations ${summary.deleted} archived row(s) up to position ${upTo} deleted from the database`);
}

const LOCK_SQL = "SELECT pg_try_advisory_lock(hashtext('knhk.archive')) AS locked";
const UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtext('knhk.archive'))";

/** Runs the archive; resolves with the summary, or rejects with ArchiveRunError (its summary shows what was done). */
export async function archiveRun(options: ArchiveRunOptions): Promise<ArchiveSummary> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw new RangeError(`batchSize: must be an integer from 1 to 100000, got ${batchSize}`);
  const settle = options.auditSettleSeconds ?? DEFAULT_AUDIT_SETTLE_SECONDS;
  if (!Number.isFinite(settle) || settle < 0) throw new RangeError(`auditSettleSeconds: must be a non-negative number, got ${settle}`);
  const streams = options.streams ?? STREAM_NAMES;
  const now = options.now ?? (() => new Date());
  const progress = options.progress ?? (() => undefined);
  const startedAt = now().getTime();
  const horizon: Horizon = {
    auditBefore: new Date(startedAt - settle * 1000),
    observationsBefore: new Date(startedAt - options.config.observationArchiveAfterDays * 86_400_000),
  };
  const summary: ArchiveSummary = { ok: false, streams: {} };

  return options.db.session(async (sql) => {
    const locked = (await sql.query<{ locked: boolean }>(LOCK_SQL)).rows[0]?.locked;
    if (!locked) throw new ArchiveRunError("another archive run holds the archive lock; try again when it has finished", summary);
    try {
      for (const name of streams) {
        const streamSummary: StreamSummary = { uploaded: 0, skipped: 0, records: 0, last_position: 0 };
        summary.streams[name] = streamSummary;
        if (name === "receipts") summary.signing_keys = await archiveSigningKeys(sql, { ...options, now, progress });
        await archiveStream(sql, name, { s3: options.s3, config: options.config, batchSize, horizon, now, progress, summary: streamSummary });
        if (name === "receipts") summary.receipt_log = await publishLog(sql, RECEIPT_LOG, { s3: options.s3, config: options.config, now, progress });
        if (name === "audit") summary.audit_log = await publishLog(sql, AUDIT_LOG, { s3: options.s3, config: options.config, now, progress });
        if (name === "observations" && options.deleteArchivedObservations) {
          await deleteArchivedObservations(sql, { horizon, batchSize, progress, summary: streamSummary });
        }
      }
      summary.ok = true;
      return summary;
    } catch (error) {
      if (error instanceof ArchiveObjectError) {
        summary.error = { bucket: error.bucket, key: error.key, message: error.message };
        throw new ArchiveRunError(error.message, summary, error);
      }
      summary.error = { bucket: "", key: "", message: (error as Error).message };
      throw new ArchiveRunError((error as Error).message, summary, error);
    } finally {
      await sql.query(UNLOCK_SQL).catch(() => undefined);
    }
  });
}
