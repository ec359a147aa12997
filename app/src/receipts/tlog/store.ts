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

export async function readTreeHead(sql: Sql, forUpdate = false): Promise<TreeHead> {
  const { rows } = await sql.query<{ size: string; root: Buffer }>(`SELECT size::text AS size, root FROM receipt_tree_head WHERE singleton${forUpdate ? " FOR UPDATE" : ""}`);
  if (!rows[0]) throw new Error("receipt_tree_head has no row: migration 0012 did not run");
  return { size: Number(rows[0].size), root: Buffer.from(rows[0].root) };
}

/** Reads stored hashes by index, in the order asked; a missing one is an error naming it. */
export function storedHashReader(sql: Sql): HashReader {
  return async (indexes) => {
    if (indexes.length === 0) return [];
    const { rows } = await sql.query<{ idx: string; hash: Buffer }>("SELECT idx::text AS idx, hash FROM receipt_tree_hashes WHERE idx = ANY($1::bigint[])", [indexes.map(String)]);
    const byIndex = new Map(rows.map((r) => [Number(r.idx), Buffer.from(r.hash)]));
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

/** Appends up to `maxLeaves` receipts after the tree's head (one transaction). */
export async function advanceTree(db: Database, maxLeaves = TREE_ADVANCE_BATCH): Promise<AdvanceResult> {
  if (!Number.isInteger(maxLeaves) || maxLeaves < 1) throw new RangeError(`maxLeaves: must be a positive integer, got ${maxLeaves}`);
  return db.transaction(async (tx) => {
    const head = await readTreeHead(tx, true);
    const { rows } = await tx.query<{ seq: string; hash: string }>("SELECT seq::text AS seq, hash FROM receipts WHERE seq > $1 ORDER BY receipts.seq LIMIT $2", [head.size, maxLeaves]);
    if (rows.length === 0) return { from: head.size, to: head.size, root: head.root };
    const frontier = TreeFrontier.of(head.size, await storedHashReader(tx)(frontierIndexes(head.size)));
    if (!frontier.root().equals(head.root)) throw new Error(`receipt tree: the stored hashes of size ${head.size} do not give the head's root`);
    const hashes: Buffer[] = [];
    for (const [i, row] of rows.entries()) {
      const expected = head.size + i + 1;
      if (Number(row.seq) !== expected) throw new Error(`receipt tree: receipt seq ${expected} is missing (next is ${row.seq}); the tree never skips a receipt`);
      hashes.push(...frontier.append(leafHash(receiptLeafData(row.hash))));
    }
    const first = storedHashCount(head.size);
    await tx.query("INSERT INTO receipt_tree_hashes (idx, hash) SELECT $1::bigint + i - 1, h FROM unnest($2::bytea[]) WITH ORDINALITY AS t(h, i)", [first, hashes]);
    const root = frontier.root();
    await tx.query("UPDATE receipt_tree_head SET size = $1, root = $2, updated_at = now() WHERE singleton", [frontier.size, root]);
    return { from: head.size, to: frontier.size, root };
  });
}

/** Advances until the tree covers every receipt committed when it started; reports each step. */
export async function advanceTreeFully(db: Database, onStep?: (r: AdvanceResult) => void, maxLeaves = TREE_ADVANCE_BATCH): Promise<TreeHead> {
  for (;;) {
    const r = await advanceTree(db, maxLeaves);
    if (r.to === r.from) return { size: r.to, root: r.root };
    onStep?.(r);
  }
}
