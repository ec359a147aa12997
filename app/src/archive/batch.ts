/**
 * Pure pieces of an archive batch: the NDJSON body, its SHA-256, the deterministic object key and
 * the Object Lock retain-until date. The same rows always give the same key and checksum, which is
 * what makes a resumed run recognise an object it uploaded before it was interrupted.
 */
import { createHash } from "node:crypto";

export type StreamName = "receipts" | "audit" | "observations";

/** One exported row: its position in the stream (seq or id), its timestamp and its NDJSON line. */
export interface ArchiveRecord {
  readonly position: number;
  /** ISO 8601 UTC. */
  readonly timestamp: string;
  /** JSON text of the row, without the newline. */
  readonly line: string;
}

export interface Batch {
  readonly stream: StreamName;
  readonly key: string;
  readonly body: string;
  readonly sha256Hex: string;
  /** The same digest base64-encoded, as S3's x-amz-checksum-sha256 wants it. */
  readonly sha256Base64: string;
  readonly first: number;
  readonly last: number;
  readonly records: number;
  readonly lastTimestamp: string;
}

const POSITION_DIGITS = 12;
const DAY_MS = 86_400_000;

function pad(position: number): string {
  return String(position).padStart(POSITION_DIGITS, "0");
}

/** Milliseconds of an ISO timestamp that may carry microseconds (Postgres precision). */
export function timestampMs(iso: string): number {
  const ms = Date.parse(iso.replace(/(\.\d{3})\d+/, "$1"));
  if (Number.isNaN(ms)) throw new RangeError(`not an ISO timestamp: ${JSON.stringify(iso)}`);
  return ms;
}

/**
 * `<prefix>YYYY/MM/DD/<first>-<last>.ndjson`: the UTC day of the batch's first record, then the
 * positions zero-padded so a listing sorts in stream order.
 */
export function objectKey(prefix: string, firstTimestamp: string, first: number, last: number): string {
  const day = new Date(timestampMs(firstTimestamp)).toISOString().slice(0, 10).replace(/-/g, "/");
  return `${prefix}${day}/${pad(first)}-${pad(last)}.ndjson`;
}

/** Positions encoded in a key written by objectKey, or null for any other key. */
export function positionsOfKey(key: string): { first: number; last: number } | null {
  const match = /\/(\d{4})\/(\d{2})\/(\d{2})\/(\d+)-(\d+)\.ndjson$/.exec(key);
  return match ? { first: Number(match[4]), last: Number(match[5]) } : null;
}

export function sha256(body: string | Buffer): { hex: string; base64: string } {
  const digest = typeof body === "string" ? createHash("sha256").update(body, "utf8").digest() : createHash("sha256").update(body).digest();
  return { hex: digest.toString("hex"), base64: digest.toString("base64") };
}

export function buildBatch(stream: StreamName, prefix: string, records: readonly ArchiveRecord[]): Batch {
  if (records.length === 0) throw new RangeError("a batch needs at least one record");
  for (let i = 1; i < records.length; i++) {
    if (records[i].position <= records[i - 1].position) throw new RangeError(`${stream}: records out of order at position ${records[i].position}`);
  }
  const body = records.map((r) => r.line + "\n").join("");
  const digest = sha256(body);
  const first = records[0].position;
  const last = records[records.length - 1].position;
  return {
    stream,
    key: objectKey(prefix, records[0].timestamp, first, last),
    body,
    sha256Hex: digest.hex,
    sha256Base64: digest.base64,
    first,
    last,
    records: records.length,
    lastTimestamp: records[records.length - 1].timestamp,
  };
}

/**
 * Object Lock retain-until: the last record's timestamp plus the retention, so every record in the
 * object stays locked at least `days` after it was written. S3 refuses a date in the past, so a
 * record already older than the retention (short dev retention) is locked for one more day.
 */
export function retainUntil(lastTimestamp: string, days: number, now: Date): Date {
  const fromRecord = timestampMs(lastTimestamp) + days * DAY_MS;
  return new Date(Math.max(fromRecord, now.getTime() + DAY_MS));
}
