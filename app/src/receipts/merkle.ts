/**
 * Merkle tree hashing as Certificate Transparency defines it (RFC 9162 section 2.1, SHA-256):
 * a leaf hashes as SHA-256(0x00 || data), an interior node as SHA-256(0x01 || left || right), and
 * a tree of n leaves splits at the largest power of two below n. The domain-separation bytes keep
 * a leaf from ever passing for a node (no second-preimage trick), and the split keeps a batch's
 * tree fixed by its leaves alone. An inclusion proof is the log2(n) sibling hashes from a leaf to
 * the root.
 */
import { createHash } from "node:crypto";

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

export function leafHash(data: Buffer | string): Buffer {
  return createHash("sha256").update(LEAF_PREFIX).update(data).digest();
}

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest();
}

/** The largest power of two smaller than n (n >= 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The root over leaf hashes, in order (the empty tree's root is SHA-256 of nothing). */
export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash("sha256").digest();
  // Bottom-up, one level at a time; an odd last node is carried up unchanged, which yields the
  // same tree as the recursive split of RFC 9162.
  let level: Buffer[] = [...leaves];
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i], level[i + 1]));
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

/** The inclusion proof of leaf `index` (RFC 9162 2.1.3.1: PATH(m, D[n])), siblings from the leaf up. */
export function inclusionProof(leaves: readonly Buffer[], index: number): Buffer[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
    throw new RangeError(`index: must be an integer from 0 to ${leaves.length - 1}, got ${index}`);
  }
  const path = (m: number, from: number, to: number): Buffer[] => {
    const n = to - from;
    if (n === 1) return [];
    const k = split(n);
    return m < k
      ? [...path(m, from, from + k), merkleRoot(leaves.slice(from + k, to))]
      : [...path(m - k, from + k, to), merkleRoot(leaves.slice(from, from + k))];
  };
  return path(index, 0, leaves.length);
}

/**
 * Whether `proof` shows leaf hash `leaf` at `index` in a tree of `size` leaves with root `root`
 * (RFC 9162 2.1.3.2). Any malformed proof (wrong length, index out of range) is false, never an error.
 */
export function verifyInclusion(leaf: Buffer, index: number, size: number, proof: readonly Buffer[], root: Buffer): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.length === root.length && r.equals(root);
}
