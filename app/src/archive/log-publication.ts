/**
 * Publishes a log to the ledger bucket: the receipt log with the receipts stream of `knhk archive
 * run` (under receipts/tlog/), the audit log with the audit stream (under audit/tlog/). For every
 * signed checkpoint after the last published one, in size order, the tiles that changed since the
 * previous one (C2SP tlog-tiles paths, <prefix>tile/...) and then the checkpoint itself as
 * <prefix>checkpoints/<size, 20 digits>, all under Object Lock like the other ledger objects. An
 * auditor with read access to the bucket verifies everything offline.
 *
 * The C2SP layout's single mutable `checkpoint` object cannot exist under Object Lock COMPLIANCE
 * (it could never be replaced), so every checkpoint is its own immutable object, listed in size
 * order. Progress is the log's publication table's published_size, advanced after each checkpoint's
 * objects are acknowledged; a rerun re-sends nothing that is already there (same checksum: skip).
 */
import { AUDIT_TREE } from "../audit/tree";
import type { Sql } from "../db/types";
import { checkpointsAfter } from "../receipts/tlog/checkpoints";
import { RECEIPT_TREE, storedHashReader, type TreeTables } from "../receipts/tlog/store";
import { newTiles, readTile, tilePath } from "../receipts/tlog/tiles";
import { sha256 } from "./batch";
import type { ArchiveConfig } from "./config";
import { META, putOnce } from "./run";
import type { S3Sender } from "./s3";
import { ARCHIVE_PREFIXES } from "./streams";

/** A log as it is published: its tree, the table of its progress, its objects' prefix and stream name. */
export interface PublishedLog {
  readonly tables: TreeTables;
  readonly publication: string;
  readonly prefix: string;
  readonly stream: string;
}

export const RECEIPT_LOG: PublishedLog = { tables: RECEIPT_TREE, publication: "receipt_tree_publication", prefix: ARCHIVE_PREFIXES.receiptLog, stream: "receipt-log" };
export const AUDIT_LOG: PublishedLog = { tables: AUDIT_TREE, publication: "audit_tree_publication", prefix: ARCHIVE_PREFIXES.auditLog, stream: "audit-log" };

export interface LogPublicationSummary {
  checkpoints: number;
  tiles_uploaded: number;
  tiles_skipped: number;
  published_size: number;
}

/** The object key of a checkpoint: sizes zero-padded so keys list in size order. */
export function checkpointObjectKey(size: number, log: PublishedLog = RECEIPT_LOG): string {
  return `${log.prefix}checkpoints/${String(size).padStart(20, "0")}`;
}

export function tileObjectKey(path: string, log: PublishedLog = RECEIPT_LOG): string {
  return `${log.prefix}${path}`;
}

export async function publishLog(
  sql: Sql,
  log: PublishedLog,
  options: { s3: S3Sender; config: ArchiveConfig; now: () => Date; progress: (line: string) => void },
): Promise<LogPublicationSummary> {
  const { rows } = await sql.query<{ published_size: string }>(`SELECT published_size::text AS published_size FROM ${log.publication} WHERE singleton`);
  let published = Number(rows[0]?.published_size ?? 0);
  const summary: LogPublicationSummary = { checkpoints: 0, tiles_uploaded: 0, tiles_skipped: 0, published_size: published };
  const bucket = options.config.ledgerBucket;
  const lock = () => ({ mode: options.config.retentionMode, until: new Date(options.now().getTime() + options.config.retentionDays * 86_400_000) });
  const read = storedHashReader(sql, log.tables);
  for (;;) {
    const checkpoints = await checkpointsAfter(sql, published, 100, log.tables);
    if (checkpoints.length === 0) break;
    for (const checkpoint of checkpoints) {
      for (const tile of newTiles(published, checkpoint.size)) {
        const body = await readTile(tile, read);
        const digest = sha256(body);
        const outcome = await putOnce(
          options.s3,
          bucket,
          { key: tileObjectKey(tilePath(tile), log), body, contentType: "application/octet-stream", sha256Hex: digest.hex, sha256Base64: digest.base64, metadata: { [META.stream]: log.stream } },
          lock(),
          options.config.kmsKeyId,
        );
        if (outcome === "uploaded") summary.tiles_uploaded++;
        else summary.tiles_skipped++;
      }
      const digest = sha256(checkpoint.note);
      await putOnce(
        options.s3,
        bucket,
        { key: checkpointObjectKey(checkpoint.size, log), body: checkpoint.note, contentType: "text/plain; charset=utf-8", sha256Hex: digest.hex, sha256Base64: digest.base64, metadata: { [META.stream]: log.stream, [META.last]: String(checkpoint.size) } },
        lock(),
        options.config.kmsKeyId,
      );
      await sql.query(`UPDATE ${log.publication} SET published_size = $1, updated_at = now() WHERE singleton AND published_size < $1`, [checkpoint.size]);
      published = checkpoint.size;
      summary.checkpoints++;
      summary.published_size = published;
      options.progress(`archive: ${log.stream} checkpoint ${checkpoint.size} published to s3://${bucket}/${checkpointObjectKey(checkpoint.size, log)}`);
    }
  }
  return summary;
}
