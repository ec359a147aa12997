/**
 * The receipt tree in PostgreSQL (migration 0012): `advanceTree` appends the receipts committed
 * since the tree's head, in seq order, with the stored hashes they add and the new root, in one
 * transaction under the head's row lock, so concurrent writers (every service process) queue and
 * a crash leaves the tree exactly at a previous head. It refuses to skip: the next receipt must
 * have seq = head size + 1. verify-log.ts recomputes the tree from the receipts alone.
 */
import type { Database, Sql } from "../../db/types";
import { leafHash } from "../merkle";
import { frontierIndexes, storedHashCount, TreeFrontier, type HashReader } from "./tree";

/** The tables of one log's tree: the receipt log's (migration 0012) or the audit log's (0013). */
export interface TreeTables {
  /** Stored hashes in runs (first_idx, hashes): up to RUN_HASHES consecutive hashes concatenated, 32 bytes each (migration 0014). */
  readonly hashes: string;
  /** The one-row head (size, root); its row lock serialises the tree's writers. */
  readonly head: string;
  /** Signed checkpoints, one per size. */
  readonly checkpoints: string;
}

/** Stored hashes per run row (7,680 bytes, so a run stays in its heap page); migration 0014's CHECKs hold the same number. */
export const RUN_HASHES = 240;

export const RECEIPT_TREE: TreeTables = { hashes: "receipt_tree_hash_runs", head: "receipt_tree_head", checkpoints: "receipt_tree_checkpoints" };

export interface TreeHead {
  readonly size: number;
  readonly root: Buffer;
}

/** Receipts appended to the tree per transaction by default. */
export const TREE_ADVANCE_BATCH = 5000;

/** The leaf data of a receipt: its SHA-256 hash, hex-decoded (32 bytes). */
export function receiptLeafData(hashHex: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(hashHex)) throw new Error(`receipt hash ${JSON.stringify(hashHex)} is not 64 lowercase hex digits`);
  return Buffer.from(hashHex, "hex");
}

export async function readTreeHead(sql: Sql, forUpdate = false, tables: TreeTables = RECEIPT_TREE): Promise<TreeHead> {
  const { rows } = await sql.query<{ size: string; root: Buffer }>(`SELECT size::text AS size, root FROM ${tables.head} WHERE singleton${forUpdate ? " FOR UPDATE" : ""}`);
  if (!rows[0]) throw new Error(`${tables.head} has no row: its migration did not run`);
  return { size: Number(rows[0].size), root: Buffer.from(rows[0].root) };
}

/** The first stored-hash index of the run that holds stored hash `index`. */
export const runStart = (index: number): number => index - (index % RUN_HASHES);

/** Reads stored hashes by index, in the order asked; a missing one is an error naming it. */
export function storedHashReader(sql: Sql, tables: TreeTables = RECEIPT_TREE): HashReader {
  return async (indexes) => {
    if (indexes.length === 0) return [];
    const { rows } = await sql.query<{ idx: string; hash: Buffer | null }>(
      `SELECT i::text AS idx, (SELECT substring(r.hashes FROM (i % ${RUN_HASHES})::int * 32 + 1 FOR 32) FROM ${tables.hashes} r WHERE r.first_idx = i - i % ${RUN_HASHES}) AS hash
       FROM unnest($1::bigint[]) AS i`,
      [indexes.map(String)],
    );
    // A hash past the end of its run comes back empty, one in a missing run as null.
    const byIndex = new Map(rows.filter((r) => r.hash?.length === 32).map((r) => [Number(r.idx), Buffer.from(r.hash!)]));
    return indexes.map((i) => {
      const h = byIndex.get(i);
      if (!h) throw new Error(`stored tree hash ${i} is missing`);
      return h;
    });
  };
}

export interface AdvanceResult {
  readonly from: number;
  readonly to: number;
  readonly root: Buffer;
}

/**
 * Appends leaf hashes to the tree at `head` (read FOR UPDATE in `tx`): checks that the stored
 * hashes still give the head's root, inserts the hashes the leaves add and moves the head.
 */
export async function extendTree(tx: Sql, tables: TreeTables, head: TreeHead, leafHashes: readonly Buffer[]): Promise<AdvanceResult> {
  // The advance need not wait for its own WAL flush: a crash can only lose advances that the
  // entries rebuild exactly, and a checkpoint of this head commits synchronously later, which
  // flushes the WAL up to its own record and so this transaction first. The appends it shares
  // the disk with then pay for one flush fewer per advance.
  await tx.query("SET LOCAL synchronous_commit = off");
  const frontier = TreeFrontier.of(head.size, await storedHashReader(tx, tables)(frontierIndexes(head.size)));
  if (!frontier.root().equals(head.root)) throw new Error(`${tables.head}: the stored hashes of size ${head.size} do not give the head's root`);
  const hashes: Buffer[] = [];
  for (const leaf of leafHashes) hashes.push(...frontier.append(leaf));
  await appendStoredHashes(tx, tables, storedHashCount(head.size), hashes);
  const root = frontier.root();
  await tx.query(`UPDATE ${tables.head} SET size = $1, root = $2, updated_at = now() WHERE singleton`, [frontier.size, root]);
  return { from: head.size, to: frontier.size, root };
}

/** Stores hashes at indexes first.. : completes the last, partial run, then adds runs of RUN_HASHES. */
async function appendStoredHashes(tx: Sql, tables: TreeTables, first: number, hashes: readonly Buffer[]): Promise<void> {
  let next = first;
  let i = 0;
  if (next % RUN_HASHES !== 0 && hashes.length > 0) {
    i = Math.min(hashes.length, RUN_HASHES - (next % RUN_HASHES));
    const grown = await tx.query(`UPDATE ${tables.hashes} SET hashes = hashes || $2 WHERE first_idx = $1 AND length(hashes) = $3`, [runStart(next), Buffer.concat(hashes.slice(0, i)), (next % RUN_HASHES) * 32]);
    if (grown.rowCount !== 1) throw new Error(`${tables.hashes}: the run at ${runStart(next)} does not end at stored hash ${next}`);
    next += i;
  }
  const starts: string[] = [];
  const runs: Buffer[] = [];
  for (; i < hashes.length; i += RUN_HASHES, next += RUN_HASHES) {
    starts.push(String(next));
    runs.push(Buffer.concat(hashes.slice(i, i + RUN_HASHES)));
  }
  if (runs.length > 0) await tx.query(`INSERT INTO ${tables.hashes} (first_idx, hashes) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, [starts, runs]);
}

export function checkMaxLeaves(maxLeaves: number): void {
  if (!Number.isInteger(maxLeaves) || maxLeaves < 1) throw new RangeError(`maxLeaves: must be a positive integer, got ${maxLeaves}`);
}

/** Appends up to `maxLeaves` receipts after the tree's head (one transaction). */
export async function advanceTree(db: Database, maxLeaves = TREE_ADVANCE_BATCH): Promise<AdvanceResult> {
  checkMaxLeaves(maxLeaves);
  return db.transaction(async (tx) => {
    const head = await readTreeHead(tx, true);
    const { rows } = await tx.query<{ seq: string; hash: string }>("SELECT seq::text AS seq, hash FROM receipts WHERE seq > $1 ORDER BY receipts.seq LIMIT $2", [head.size, maxLeaves]);
    if (rows.length === 0) return { from: head.size, to: head.size, root: head.root };
    const leaves = rows.map((row, i) => {
      const expected = head.size + i + 1;
      if (Number(row.seq) !== expected) throw new Error(`receipt tree: receipt seq ${expected} is missing (next is ${row.seq}); the tree never skips a receipt`);
      return leafHash(receiptLeafData(row.hash));
    });
    return extendTree(tx, RECEIPT_TREE, head, leaves);
  });
}

/** Advances until the tree covers every leaf committed when it started; reports each step. */
export async function advanceTreeFully(db: Database, onStep?: (r: AdvanceResult) => void, maxLeaves = TREE_ADVANCE_BATCH, advance: (db: Database, maxLeaves: number) => Promise<AdvanceResult> = advanceTree): Promise<TreeHead> {
  for (;;) {
    const r = await advance(db, maxLeaves);
    if (r.to === r.from) return { size: r.to, root: r.root };
    onStep?.(r);
  }
}
