/**
 * The receipt log as its readers see it (the API's /receipts/checkpoint, proof, consistency and
 * tile endpoints, and the CLI): proofs against signed checkpoints, computed from the stored
 * hashes in O(log n) reads. Bad input is a LogInputError naming the field and the reason.
 */
import type { Sql } from "../../db/types";
import { leafHash } from "../merkle";
import { checkpointsAt, type StoredCheckpoint } from "./checkpoints";
import { readTreeHead, receiptLeafData, storedHashReader } from "./store";
import { parseTilePath, readTile, TILE_WIDTH } from "./tiles";
import { consistencyProof, inclusionProof } from "./tree";

export class LogInputError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = "LogInputError";
  }
}

export interface InclusionProofAnswer {
  readonly receipt_id: string;
  readonly seq: number;
  /** 0-based leaf index (seq - 1). */
  readonly leaf_index: number;
  readonly tree_size: number;
  /** base64 of the leaf data (the receipt's 32-byte hash) and of its leaf hash. */
  readonly leaf_data: string;
  readonly leaf_hash: string;
  /** base64 hashes, from the leaf upward (RFC 9162 audit path). */
  readonly proof: string[];
  /** The signed checkpoint of tree_size. */
  readonly checkpoint: string;
}

export interface ConsistencyProofAnswer {
  readonly from: number;
  readonly to: number;
  readonly proof: string[];
  readonly from_checkpoint: string;
  readonly to_checkpoint: string;
}

const b64 = (b: Buffer) => b.toString("base64");

function signedAt(checkpoints: ReadonlyMap<number, StoredCheckpoint>, size: number, field: string): StoredCheckpoint {
  const checkpoint = checkpoints.get(size);
  if (!checkpoint) throw new LogInputError(field, `no signed checkpoint has size ${size}; use the size of a checkpoint (GET /api/v1/receipts/checkpoint gives the latest)`);
  return checkpoint;
}

/** The inclusion proof of a receipt (by id) in the checkpointed tree of `size` (default: the latest checkpoint). Undefined: no such receipt. */
export async function proveReceipt(sql: Sql, receiptId: string, size?: number): Promise<InclusionProofAnswer | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(receiptId)) return undefined;
  // The receipt and its checkpoint (of `size`, else the latest) in one round trip.
  const { rows } = await sql.query<{ seq: string; hash: string; size: string | null; note: string | null }>(
    `SELECT r.seq::text AS seq, r.hash, c.size::text AS size, c.note FROM receipts r
     LEFT JOIN LATERAL (SELECT t.size, t.note FROM receipt_tree_checkpoints t WHERE $2::bigint IS NULL OR t.size = $2 ORDER BY t.size DESC LIMIT 1) c ON true
     WHERE r.id = $1`,
    [receiptId, size ?? null],
  );
  if (!rows[0]) return undefined;
  if (rows[0].size === null || rows[0].note === null) {
    if (size !== undefined) throw new LogInputError("size", `no signed checkpoint has size ${size}; use the size of a checkpoint (GET /api/v1/receipts/checkpoint gives the latest)`);
    throw new LogInputError("size", "the log has no signed checkpoint yet");
  }
  const checkpoint = { size: Number(rows[0].size), note: rows[0].note };
  const seq = Number(rows[0].seq);
  if (seq > checkpoint.size) throw new LogInputError("size", `receipt seq ${seq} is not in the tree of size ${checkpoint.size}; use a later checkpoint`);
  const data = receiptLeafData(rows[0].hash);
  const proof = await inclusionProof(checkpoint.size, seq - 1, storedHashReader(sql));
  return { receipt_id: receiptId, seq, leaf_index: seq - 1, tree_size: checkpoint.size, leaf_data: b64(data), leaf_hash: b64(leafHash(data)), proof: proof.map(b64), checkpoint: checkpoint.note };
}

/** The consistency proof between two checkpointed sizes, from <= to. */
export async function proveConsistency(sql: Sql, from: number, to: number): Promise<ConsistencyProofAnswer> {
  if (from > to) throw new LogInputError("from", `must not exceed to (${to})`);
  // The proof's hashes depend only on the two sizes: they are read while the checkpoints are.
  const [checkpoints, proof] = await Promise.allSettled([checkpointsAt(sql, [from, to]), consistencyProof(to, from, storedHashReader(sql))]);
  if (checkpoints.status === "rejected") throw checkpoints.reason;
  const [older, newer] = [signedAt(checkpoints.value, from, "from"), signedAt(checkpoints.value, to, "to")];
  if (proof.status === "rejected") throw proof.reason;
  return { from, to, proof: proof.value.map(b64), from_checkpoint: older.note, to_checkpoint: newer.note };
}

/** A tile's bytes by its C2SP path (`tile/...`); undefined: not (yet) in the tree. */
export async function readTileByPath(sql: Sql, path: string): Promise<{ bytes: Buffer; full: boolean } | undefined> {
  const tile = parseTilePath(path);
  if ("error" in tile) throw new LogInputError("path", tile.error);
  const head = await readTreeHead(sql);
  const nodesAtLevel = Math.floor(head.size / TILE_WIDTH ** tile.level);
  if (tile.n * TILE_WIDTH + tile.width > nodesAtLevel) return undefined;
  return { bytes: await readTile(tile, storedHashReader(sql)), full: tile.width === TILE_WIDTH };
}
