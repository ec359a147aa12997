/**
 * Signed checkpoints of a log's tree (the receipts' in receipt_tree_checkpoints, the audit log's
 * in audit_tree_checkpoints; one per size): a new one is due once the tree has grown by
 * `everyReceipts` since the last, or has grown at all and the last is `intervalMs` old. Signed with the receipt signing key's current version (its
 * key name is the log's origin), so a rotated key leaves older checkpoints verifiable with the
 * version they name.
 */
import type { Sql } from "../../db/types";
import type { Signer } from "../keys";
import { signCheckpoint, type NoteSigner } from "./checkpoint";
import { RECEIPT_TREE, readTreeHead, type TreeTables } from "./store";

export interface CheckpointPolicy {
  /** The log's origin line, also the signing key's name in the note. */
  readonly origin: string;
  readonly everyReceipts: number;
  readonly intervalMs: number;
  /** Whose tree; default the receipt tree. */
  readonly tables?: TreeTables;
}

export interface StoredCheckpoint {
  readonly size: number;
  readonly root: Buffer;
  readonly keyVersion: number;
  readonly note: string;
  readonly createdAt: Date;
}

interface CheckpointRow {
  size: string;
  root: Buffer;
  key_version: number;
  note: string;
  created_at: Date;
}

const COLUMNS = "size::text AS size, root, key_version, note, created_at";
const toCheckpoint = (r: CheckpointRow): StoredCheckpoint => ({ size: Number(r.size), root: Buffer.from(r.root), keyVersion: r.key_version, note: r.note, createdAt: new Date(r.created_at) });

export async function latestCheckpoint(sql: Sql, tables: TreeTables = RECEIPT_TREE): Promise<StoredCheckpoint | undefined> {
  const { rows } = await sql.query<CheckpointRow>(`SELECT ${COLUMNS} FROM ${tables.checkpoints} ORDER BY ${tables.checkpoints}.size DESC LIMIT 1`);
  return rows[0] ? toCheckpoint(rows[0]) : undefined;
}

export async function checkpointAt(sql: Sql, size: number, tables: TreeTables = RECEIPT_TREE): Promise<StoredCheckpoint | undefined> {
  const { rows } = await sql.query<CheckpointRow>(`SELECT ${COLUMNS} FROM ${tables.checkpoints} WHERE size = $1`, [size]);
  return rows[0] ? toCheckpoint(rows[0]) : undefined;
}

/** The checkpoints of the given sizes (one round trip), by size; a size without one is absent. */
export async function checkpointsAt(sql: Sql, sizes: readonly number[], tables: TreeTables = RECEIPT_TREE): Promise<Map<number, StoredCheckpoint>> {
  const { rows } = await sql.query<CheckpointRow>(`SELECT ${COLUMNS} FROM ${tables.checkpoints} WHERE size = ANY($1::bigint[])`, [sizes.map(String)]);
  return new Map(rows.map(toCheckpoint).map((c) => [c.size, c]));
}

/** Checkpoints in size order after `afterSize` (publication, audit). */
export async function checkpointsAfter(sql: Sql, afterSize: number, limit: number, tables: TreeTables = RECEIPT_TREE): Promise<StoredCheckpoint[]> {
  const { rows } = await sql.query<CheckpointRow>(`SELECT ${COLUMNS} FROM ${tables.checkpoints} WHERE size > $1 ORDER BY ${tables.checkpoints}.size LIMIT $2`, [afterSize, limit]);
  return rows.map(toCheckpoint);
}

export function checkpointDue(head: { size: number }, last: StoredCheckpoint | undefined, policy: CheckpointPolicy, now: number): boolean {
  if (head.size === 0 || (last && head.size <= last.size)) return false;
  if (!last) return true;
  return head.size - last.size >= policy.everyReceipts || now - last.createdAt.getTime() >= policy.intervalMs;
}

/** The receipt signer's current version as a note signer whose key name is the log's origin. */
export function noteSigner(signer: Signer, origin: string): NoteSigner {
  const keyVersion = signer.keyVersion;
  const publicKey = Buffer.from(signer.publicKey, "base64");
  return { name: origin, publicKey, sign: async (m) => Buffer.from(await signer.signMessage(m, keyVersion), "base64") };
}

/**
 * Signs and stores a checkpoint of the tree's head if one is due; returns the latest checkpoint.
 * Two processes racing for one size store one note (the first insert wins; the other reads it).
 */
export async function checkpointIfDue(sql: Sql, signer: Signer, policy: CheckpointPolicy, now = Date.now()): Promise<StoredCheckpoint | undefined> {
  const tables = policy.tables ?? RECEIPT_TREE;
  const [head, last] = await Promise.all([readTreeHead(sql, false, tables), latestCheckpoint(sql, tables)]);
  if (!checkpointDue(head, last, policy, now)) return last;
  const keyVersion = signer.keyVersion;
  const note = await signCheckpoint({ origin: policy.origin, size: head.size, root: head.root }, noteSigner(signer, policy.origin));
  await sql.query(`INSERT INTO ${tables.checkpoints} (size, root, key_version, note) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING`, [head.size, head.root, keyVersion, note]);
  return checkpointAt(sql, head.size, tables);
}
