/**
 * `knhk archive restore --from-s3`: re-imports the archived receipts (with the archived public
 * signing keys) and audit entries into an EMPTY database (a scratch restore target), checking each
 * object's SHA-256 against its metadata and that the objects cover the stream without gaps, then
 * verifies the receipt chain in the restored database. Each key is read at its OLDEST version: the
 * archive writes every key once, so a later version (written over the original by someone holding
 * s3:PutObject) is ignored and reported under `overwritten`.
 */
import { GetObjectCommand, ListObjectVersionsCommand } from "@aws-sdk/client-s3";
import type { Database, Sql } from "../db/types";
import { canonicalEvidence } from "../receipts/canonical";
import type { Receipt, VerificationReport } from "../receipts/types";
import { verifyChain } from "../receipts/verify";
import { positionsOfKey, sha256 } from "./batch";
import { ArchiveObjectError, META } from "./run";
import { describeS3Error, type S3Sender } from "./s3";
import { ARCHIVE_PREFIXES } from "./streams";

export type RestoreStream = "receipts" | "audit";
export const RESTORE_STREAMS: readonly RestoreStream[] = ["receipts", "audit"];

export interface RestoreOptions {
  readonly db: Database;
  readonly s3: S3Sender;
  readonly ledgerBucket: string;
  readonly streams?: readonly RestoreStream[];
  readonly progress?: (line: string) => void;
}

export interface RestoreSummary {
  ok: boolean;
  receipts?: { objects: number; records: number; signing_keys: number; overwritten: string[]; verification: VerificationReport };
  audit?: { objects: number; records: number; overwritten: string[] };
}

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestoreError";
  }
}

/** An archived object: the archive writes each key once, so its OLDEST version is the original. */
interface ArchivedObject {
  readonly key: string;
  readonly versionId?: string;
  /** Versions under this key; more than one means something wrote over the original. */
  readonly versions: number;
}

async function listOriginals(s3: S3Sender, bucket: string, prefix: string): Promise<ArchivedObject[]> {
  const byKey = new Map<string, { versionId?: string; versions: number }>();
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    } catch (error) {
      throw new ArchiveObjectError(bucket, prefix, `ListObjectVersions failed: ${describeS3Error(error)}`);
    }
    // Versions of a key are listed newest first: the last one seen is the oldest.
    for (const v of page.Versions ?? []) {
      if (!v.Key) continue;
      const seen = byKey.get(v.Key);
      byKey.set(v.Key, { versionId: v.VersionId, versions: (seen?.versions ?? 0) + 1 });
    }
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
  return [...byKey.entries()].map(([key, v]) => ({ key, versionId: v.versionId === "null" ? undefined : v.versionId, versions: v.versions }));
}

/** The object's text, after checking it against the SHA-256 the archive recorded in its metadata. */
async function download(s3: S3Sender, bucket: string, object: ArchivedObject): Promise<string> {
  const { key } = object;
  let text: string;
  let expected: string | undefined;
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: object.versionId }));
    text = (await response.Body?.transformToString("utf8")) ?? "";
    expected = response.Metadata?.[META.sha256];
  } catch (error) {
    const glacier = (error as { name?: string }).name === "InvalidObjectState"
      ? "; the object is in GLACIER: make it readable first (aws s3api restore-object, see the README)"
      : "";
    throw new ArchiveObjectError(bucket, key, `GetObject failed: ${describeS3Error(error)}${glacier}`);
  }
  const actual = sha256(text).hex;
  if (expected !== actual) throw new ArchiveObjectError(bucket, key, `content sha256 ${actual} differs from the archived checksum ${expected ?? "(none)"}`);
  return text;
}

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line.length > 0);
}

/** Data objects of a stream in position order, refusing overlaps (and gaps when `contiguous`). */
function orderedBatches(bucket: string, objects: ArchivedObject[], contiguous: boolean) {
  const batches = objects
    .map((object) => ({ ...object, positions: positionsOfKey(object.key) }))
    .filter((b): b is ArchivedObject & { positions: { first: number; last: number } } => b.positions !== null)
    .sort((a, b) => a.positions.first - b.positions.first);
  let previous = 0;
  for (const b of batches) {
    if (b.positions.first <= previous) throw new ArchiveObjectError(bucket, b.key, `overlaps the previous object (which ends at ${previous})`);
    if (contiguous && b.positions.first !== previous + 1) throw new ArchiveObjectError(bucket, b.key, `gap: positions ${previous + 1}..${b.positions.first - 1} are in no object`);
    previous = b.positions.last;
  }
  return batches;
}

/** Keys that hold more than one version: written over after archiving (the original was restored). */
function overwritten(objects: readonly ArchivedObject[]): string[] {
  return objects.filter((o) => o.versions > 1).map((o) => o.key);
}

async function requireEmpty(sql: Sql, table: string): Promise<void> {
  const n = Number((await sql.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  if (n > 0) throw new RestoreError(`${table} already holds ${n} rows: restore into an empty scratch database`);
}

async function restoreReceipts(options: RestoreOptions, progress: (line: string) => void) {
  const { db, s3, ledgerBucket: bucket } = options;
  // All or nothing: a failed restore leaves the scratch database as it was.
  const imported = await db.transaction(async (tx) => {
    await requireEmpty(tx, "receipts");
    const keyObjects = await listOriginals(s3, bucket, ARCHIVE_PREFIXES.signingKeys);
    for (const object of keyObjects) {
      const key = object.key;
      const k = JSON.parse(lines(await download(s3, bucket, object))[0]) as { key_version: number; public_key: string; ephemeral: boolean; activated_at: string };
      const inserted = await tx.query<{ public_key: string }>(
        "INSERT INTO receipt_signing_keys (key_version, public_key, ephemeral, activated_at) VALUES ($1, $2, $3, $4) " +
          "ON CONFLICT (key_version) DO UPDATE SET key_version = EXCLUDED.key_version RETURNING public_key",
        [k.key_version, k.public_key, k.ephemeral, k.activated_at],
      );
      if (inserted.rows[0].public_key !== k.public_key) throw new ArchiveObjectError(bucket, key, `key_version ${k.key_version} exists in the database with another public key`);
    }
    const all = await listOriginals(s3, bucket, ARCHIVE_PREFIXES.receipts);
    const batches = orderedBatches(bucket, all.filter((o) => !o.key.startsWith(ARCHIVE_PREFIXES.signingKeys)), true);
    let records = 0;
    let last: Receipt | null = null;
    for (const b of batches) {
      const receipts = lines(await download(s3, bucket, b)).map((line) => JSON.parse(line) as Receipt);
      const seqs = receipts.map((r) => r.seq);
      if (seqs[0] !== b.positions.first || seqs[seqs.length - 1] !== b.positions.last || seqs.length !== b.positions.last - b.positions.first + 1) {
        throw new ArchiveObjectError(bucket, b.key, `holds seq ${seqs[0]}..${seqs[seqs.length - 1]} (${seqs.length} receipts), not what its key says`);
      }
      await tx.query(
        "INSERT INTO receipts (seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature) " +
          "SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::int[], $10::text[], $11::text[])",
        [
          seqs,
          receipts.map((r) => r.id),
          receipts.map((r) => r.operation),
          receipts.map((r) => r.outcome),
          receipts.map((r) => canonicalEvidence(r.evidence)),
          receipts.map((r) => r.sector),
          receipts.map((r) => r.created_at),
          receipts.map((r) => r.parent_hash),
          receipts.map((r) => r.key_version),
          receipts.map((r) => r.hash),
          receipts.map((r) => r.signature),
        ],
      );
      records += receipts.length;
      last = receipts[receipts.length - 1];
      progress(`archive restore: receipts ${records} (s3://${bucket}/${b.key})`);
    }
    if (last) {
      await tx.query("UPDATE receipt_chain_head SET seq = $1, hash = $2, created_at = $3", [last.seq, last.hash, last.created_at]);
    }
    return { objects: batches.length, records, signing_keys: keyObjects.length, overwritten: overwritten([...keyObjects, ...batches]) };
  });
  const verification = await verifyChain({ db, saveCheckpoint: false });
  return { ...imported, verification };
}

/**
 * An archived audit line as row values. `details` is taken as the exact jsonb text the archive
 * embedded (see streams.ts), so numbers keep every digit; a line in another layout falls back to
 * JSON re-serialisation.
 */
function auditRow(line: string) {
  const r = JSON.parse(line) as { id: number; occurred_at: string; actor: string; action: string; target: string; outcome: string | null; details: unknown };
  const head = JSON.stringify({ id: r.id, occurred_at: r.occurred_at, actor: r.actor, action: r.action, target: r.target, outcome: r.outcome }).slice(0, -1) + ',"details":';
  const details = line.startsWith(head) && line.endsWith("}") ? line.slice(head.length, -1) : JSON.stringify(r.details);
  return { ...r, details };
}

async function restoreAudit(options: RestoreOptions, progress: (line: string) => void) {
  const { db, s3, ledgerBucket: bucket } = options;
  return db.transaction(async (tx) => {
    await requireEmpty(tx, "audit_log");
    // audit_log ids have gaps (rolled-back inserts), so objects only need to be in order without overlap.
    const batches = orderedBatches(bucket, await listOriginals(s3, bucket, ARCHIVE_PREFIXES.audit), false);
    let records = 0;
    for (const b of batches) {
      const rows = lines(await download(s3, bucket, b)).map(auditRow);
      await tx.query(
        "INSERT INTO audit_log (id, occurred_at, actor, action, target, outcome, details) " +
          "SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])",
        [
          rows.map((r) => r.id),
          rows.map((r) => r.occurred_at),
          rows.map((r) => r.actor),
          rows.map((r) => r.action),
          rows.map((r) => r.target),
          rows.map((r) => r.outcome),
          rows.map((r) => r.details),
        ],
      );
      records += rows.length;
      progress(`archive restore: audit ${records} (s3://${bucket}/${b.key})`);
    }
    if (records > 0) await tx.query("SELECT setval('audit_log_id_seq', (SELECT max(id) FROM audit_log))");
    return { objects: batches.length, records, overwritten: overwritten(batches) };
  });
}

export async function archiveRestore(options: RestoreOptions): Promise<RestoreSummary> {
  const progress = options.progress ?? (() => undefined);
  const streams = options.streams ?? RESTORE_STREAMS;
  const summary: RestoreSummary = { ok: true };
  if (streams.includes("receipts")) {
    summary.receipts = await restoreReceipts(options, progress);
    summary.ok &&= summary.receipts.verification.ok;
  }
  if (streams.includes("audit")) summary.audit = await restoreAudit(options, progress);
  return summary;
}
