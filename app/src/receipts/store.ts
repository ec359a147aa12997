/** Reading stored receipts: by id, by seq range, and as an export stream for the archive. */
import type { Sql } from "../db/types";
import type { JsonValue, Receipt } from "./types";

export const RECEIPT_COLUMNS =
  "seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature";

export interface ReceiptRow {
  seq: string | number | bigint;
  id: string;
  operation: string;
  outcome: string;
  evidence: string;
  sector: string;
  created_at: Date | string;
  parent_hash: string;
  key_version: number | string;
  hash: string;
  signature: string;
}

export function receiptFromRow(row: ReceiptRow): Receipt {
  return {
    id: row.id,
    seq: Number(row.seq),
    operation: row.operation,
    outcome: row.outcome,
    evidence: JSON.parse(row.evidence) as { [key: string]: JsonValue },
    sector: row.sector,
    created_at: new Date(row.created_at).toISOString(),
    parent_hash: row.parent_hash,
    key_version: Number(row.key_version),
    hash: row.hash,
    signature: row.signature,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isReceiptId(id: string): boolean {
  return UUID.test(id);
}

/** The receipt with this id, or null (also for ids that are not UUIDs). */
export async function getReceipt(db: Sql, id: string): Promise<Receipt | null> {
  if (!isReceiptId(id)) return null;
  const result = await db.query<ReceiptRow>(`SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE id = $1`, [id]);
  return result.rows.length ? receiptFromRow(result.rows[0]) : null;
}

export async function getReceiptBySeq(db: Sql, seq: number): Promise<Receipt | null> {
  const result = await db.query<ReceiptRow>(`SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE seq = $1`, [seq]);
  return result.rows.length ? receiptFromRow(result.rows[0]) : null;
}

export interface ListOptions {
  /** Only receipts with seq greater than this (keyset pagination); default 0. */
  readonly afterSeq?: number;
  /** 1..1000. */
  readonly limit: number;
}

function checkNonNegativeInteger(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field}: must be a non-negative integer, got ${value}`);
}

/** Receipts in seq order after `afterSeq`. */
export async function listReceipts(db: Sql, options: ListOptions): Promise<Receipt[]> {
  const afterSeq = options.afterSeq ?? 0;
  checkNonNegativeInteger("afterSeq", afterSeq);
  if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > 1000) {
    throw new RangeError(`limit: must be an integer from 1 to 1000, got ${options.limit}`);
  }
  const result = await db.query<ReceiptRow>(
    `SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2`,
    [afterSeq, options.limit],
  );
  return result.rows.map(receiptFromRow);
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export async function chainHead(db: Sql): Promise<ChainHead> {
  const result = await db.query<{ seq: string; hash: string }>("SELECT seq, hash FROM receipt_chain_head");
  if (!result.rows.length) throw new Error("receipt_chain_head is empty: migration 0002_receipts has not run");
  return { seq: Number(result.rows[0].seq), hash: result.rows[0].hash };
}

export interface ExportOptions {
  /** Export receipts with seq greater than this; default 0 (everything). */
  readonly afterSeq?: number;
  /** Rows fetched per query; default 1000. */
  readonly batch?: number;
}

/**
 * Every receipt after `afterSeq` in seq order, fetched page by page (constant memory). Used by
 * `receipts export` and the archive job; each item serialises to one NDJSON line.
 */
export async function* exportReceipts(db: Sql, options: ExportOptions = {}): AsyncGenerator<Receipt> {
  let after = options.afterSeq ?? 0;
  const batch = options.batch ?? 1000;
  checkNonNegativeInteger("afterSeq", after);
  if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) {
    throw new RangeError(`batch: must be an integer from 1 to 100000, got ${batch}`);
  }
  for (;;) {
    const result = await db.query<ReceiptRow>(
      `SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2`,
      [after, batch],
    );
    for (const row of result.rows) yield receiptFromRow(row);
    if (result.rows.length < batch) return;
    after = Number(result.rows[result.rows.length - 1].seq);
  }
}
