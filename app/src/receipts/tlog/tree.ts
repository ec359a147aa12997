/**
 * The receipt log's Merkle tree as stored hashes: every complete subtree's hash is stored once, in
 * the order the leaves arrive, so appending leaf n writes the leaf hash and one hash per level it
 * completes, and any root, inclusion proof or consistency proof reads O(log n) stored hashes. The
 * hashing is RFC 6962/9162 (merkle.ts); the index layout and proof shapes are those of the Go
 * checksum database's transparency log (golang.org/x/mod/sumdb/tlog), so its verifier checks
 * these proofs unchanged and tiles (tiles.ts) are runs of stored hashes.
 *
 * Stored hash index of the node at `level` covering leaves [n * 2^level, (n + 1) * 2^level):
 * every leaf m contributes 1 + (the number of levels it completes) hashes before leaf m + 1.
 */
import { nodeHash } from "../merkle";

export const HASH_BYTES = 32;

/** Reads stored hashes by index; must return them in the order asked. */
export type HashReader = (indexes: readonly number[]) => Promise<Buffer[]>;

/** SHA-256 of nothing: the root of the empty tree. */
export const EMPTY_TREE_ROOT = Buffer.from("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "hex");

function checkCount(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name}: must be a non-negative safe integer, got ${n}`);
}

/** The largest power of two below n (n >= 2), and its exponent. */
function maxPow2(n: number): { k: number; level: number } {
  let level = 0;
  while (2 ** (level + 1) < n) level++;
  return { k: 2 ** level, level };
}

const trailingOnes = (n: number): number => {
  let count = 0;
  for (let x = n; x % 2 === 1; x = Math.floor(x / 2)) count++;
  return count;
};

/** Index of the stored hash of node `n` at `level`. */
export function storedHashIndex(level: number, n: number): number {
  checkCount("n", n);
  let m = n;
  for (let l = level; l > 0; l--) m = 2 * m + 1;
  let i = 0;
  for (; m > 0; m = Math.floor(m / 2)) i += m;
  return i + level;
}

/** How many hashes a tree of n leaves stores. */
export function storedHashCount(n: number): number {
  checkCount("n", n);
  if (n === 0) return 0;
  return storedHashIndex(0, n - 1) + 1 + trailingOnes(n - 1);
}

/**
 * The hashes appending leaf number `n` (0-based) stores, in index order starting at
 * storedHashCount(n): the leaf hash, then each node it completes.
 */
export async function storedHashesForLeaf(n: number, leaf: Buffer, read: HashReader): Promise<Buffer[]> {
  checkCount("n", n);
  const levels = trailingOnes(n);
  const indexes: number[] = [];
  for (let i = 0; i < levels; i++) indexes[levels - 1 - i] = storedHashIndex(i, Math.floor(n / 2 ** i) - 1);
  const left = await readExactly(read, indexes);
  const out = [leaf];
  let h = leaf;
  for (let i = 0; i < levels; i++) {
    h = nodeHash(left[levels - 1 - i], h);
    out.push(h);
  }
  return out;
}

async function readExactly(read: HashReader, indexes: readonly number[]): Promise<Buffer[]> {
  if (indexes.length === 0) return [];
  const hashes = await read(indexes);
  if (hashes.length !== indexes.length) throw new Error(`hash reader returned ${hashes.length} hashes for ${indexes.length} indexes`);
  for (const h of hashes) if (h.length !== HASH_BYTES) throw new Error(`hash reader returned a ${h.length}-byte hash`);
  return hashes;
}

/** Stored indexes of the complete subtrees that tile [lo, hi), largest first. */
function subtreeIndexes(lo: number, hi: number, need: number[]): void {
  while (lo < hi) {
    const { k, level } = maxPow2(hi - lo + 1);
    need.push(storedHashIndex(level, lo / k));
    lo += k;
  }
}

/** Folds the subtree hashes of [lo, hi) (as subtreeIndexes listed them) into one; returns it and the rest. */
function subtreeHash(lo: number, hi: number, hashes: Buffer[]): [Buffer, Buffer[]] {
  let count = 0;
  while (lo < hi) {
    lo += maxPow2(hi - lo + 1).k;
    count++;
  }
  let h = hashes[count - 1];
  for (let i = count - 2; i >= 0; i--) h = nodeHash(hashes[i], h);
  return [h, hashes.slice(count)];
}

/** The root of the tree of the first n leaves. */
export async function treeHash(n: number, read: HashReader): Promise<Buffer> {
  checkCount("n", n);
  if (n === 0) return EMPTY_TREE_ROOT;
  const need: number[] = [];
  subtreeIndexes(0, n, need);
  return subtreeHash(0, n, await readExactly(read, need))[0];
}

function leafProofIndexes(lo: number, hi: number, n: number, need: number[]): void {
  if (lo + 1 === hi) return;
  const { k } = maxPow2(hi - lo);
  if (n < lo + k) {
    leafProofIndexes(lo, lo + k, n, need);
    subtreeIndexes(lo + k, hi, need);
  } else {
    subtreeIndexes(lo, lo + k, need);
    leafProofIndexes(lo + k, hi, n, need);
  }
}

function leafProof(lo: number, hi: number, n: number, hashes: Buffer[]): [Buffer[], Buffer[]] {
  if (lo + 1 === hi) return [[], hashes];
  const { k } = maxPow2(hi - lo);
  let proof: Buffer[];
  let sibling: Buffer;
  if (n < lo + k) {
    [proof, hashes] = leafProof(lo, lo + k, n, hashes);
    [sibling, hashes] = subtreeHash(lo + k, hi, hashes);
  } else {
    [sibling, hashes] = subtreeHash(lo, lo + k, hashes);
    [proof, hashes] = leafProof(lo + k, hi, n, hashes);
  }
  return [[...proof, sibling], hashes];
}

/** The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 audit path, leaf upward). */
export async function inclusionProof(size: number, index: number, read: HashReader): Promise<Buffer[]> {
  checkCount("size", size);
  checkCount("index", index);
  if (index >= size) throw new RangeError(`index: must be below the tree size ${size}, got ${index}`);
  const need: number[] = [];
  leafProofIndexes(0, size, index, need);
  return leafProof(0, size, index, await readExactly(read, need))[0];
}

function treeProofIndexes(lo: number, hi: number, n: number, need: number[]): void {
  if (n === hi) {
    if (lo !== 0) subtreeIndexes(lo, hi, need);
    return;
  }
  const { k } = maxPow2(hi - lo);
  if (n <= lo + k) {
    treeProofIndexes(lo, lo + k, n, need);
    subtreeIndexes(lo + k, hi, need);
  } else {
    subtreeIndexes(lo, lo + k, need);
    treeProofIndexes(lo + k, hi, n, need);
  }
}

function treeProof(lo: number, hi: number, n: number, hashes: Buffer[]): [Buffer[], Buffer[]] {
  if (n === hi) {
    if (lo === 0) return [[], hashes];
    const [h, rest] = subtreeHash(lo, hi, hashes);
    return [[h], rest];
  }
  const { k } = maxPow2(hi - lo);
  let proof: Buffer[];
  let sibling: Buffer;
  if (n <= lo + k) {
    [proof, hashes] = treeProof(lo, lo + k, n, hashes);
    [sibling, hashes] = subtreeHash(lo + k, hi, hashes);
  } else {
    [sibling, hashes] = subtreeHash(lo, lo + k, hashes);
    [proof, hashes] = treeProof(lo + k, hi, n, hashes);
  }
  return [[...proof, sibling], hashes];
}

/** The consistency proof that the tree of `size` leaves extends the tree of its first `from` leaves (RFC 9162). */
export async function consistencyProof(size: number, from: number, read: HashReader): Promise<Buffer[]> {
  checkCount("size", size);
  checkCount("from", from);
  if (from < 1 || from > size) throw new RangeError(`from: must be from 1 to the tree size ${size}, got ${from}`);
  const need: number[] = [];
  treeProofIndexes(0, size, from, need);
  return treeProof(0, size, from, await readExactly(read, need))[0];
}

/** Stored indexes of the complete subtrees a tree of n leaves splits into, largest first (its right edge). */
export function frontierIndexes(n: number): number[] {
  checkCount("n", n);
  const need: number[] = [];
  subtreeIndexes(0, n, need);
  return need;
}

/**
 * A tree kept as its right edge only (the hashes of frontierIndexes(size), at most log2(size) of
 * them): enough to append leaves, emit the stored hashes each one adds, and give the root. The
 * tree writer seeds it from the stored hashes; verification seeds it empty and replays the leaves.
 */
export class TreeFrontier {
  private constructor(
    private readonly edge: Array<{ level: number; hash: Buffer }>,
    private leaves: number,
  ) {}

  static empty(): TreeFrontier {
    return new TreeFrontier([], 0);
  }

  /** The frontier of a tree of `size` leaves from the hashes at frontierIndexes(size), in that order. */
  static of(size: number, hashes: readonly Buffer[]): TreeFrontier {
    checkCount("size", size);
    const levels: number[] = [];
    for (let level = 52; level >= 0; level--) if (Math.floor(size / 2 ** level) % 2 === 1) levels.push(level);
    if (hashes.length !== levels.length) throw new Error(`a tree of ${size} leaves has ${levels.length} frontier hashes, got ${hashes.length}`);
    return new TreeFrontier(levels.map((level, i) => ({ level, hash: hashes[i] })), size);
  }

  get size(): number {
    return this.leaves;
  }

  /** Appends a leaf hash; returns the stored hashes it adds (the leaf's, then each node it completes). */
  append(leaf: Buffer): Buffer[] {
    if (leaf.length !== HASH_BYTES) throw new RangeError(`leaf: must be ${HASH_BYTES} bytes, got ${leaf.length}`);
    const added = [leaf];
    let hash = leaf;
    let level = 0;
    while (this.edge.length > 0 && this.edge[this.edge.length - 1].level === level) {
      hash = nodeHash(this.edge.pop()!.hash, hash);
      added.push(hash);
      level++;
    }
    this.edge.push({ level, hash });
    this.leaves++;
    return added;
  }

  root(): Buffer {
    if (this.edge.length === 0) return EMPTY_TREE_ROOT;
    let hash = this.edge[this.edge.length - 1].hash;
    for (let i = this.edge.length - 2; i >= 0; i--) hash = nodeHash(this.edge[i].hash, hash);
    return hash;
  }
}

const trailingZeros = (n: number): number => {
  let count = 0;
  for (let x = n; x > 0 && x % 2 === 0; x /= 2) count++;
  return count;
};

/** The level and node number of a stored hash index (the inverse of storedHashIndex). */
export function splitStoredHashIndex(index: number): { level: number; n: number } {
  checkCount("index", index);
  let n = Math.floor(index / 2);
  let indexN = storedHashIndex(0, n);
  for (;;) {
    const x = indexN + 1 + trailingZeros(n + 1);
    if (x > index) break;
    n++;
    indexN = x;
  }
  const level = index - indexN;
  return { level, n: Math.floor(n / 2 ** level) };
}

/**
 * Whether `proof` shows the tree of `size` leaves with root `root` extends the tree of its first
 * `from` leaves with root `fromRoot` (RFC 9162 2.1.4.2). A malformed proof is false, never an error.
 */
export function verifyConsistency(fromRoot: Buffer, root: Buffer, from: number, size: number, proof: readonly Buffer[]): boolean {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(size) || from < 1 || from > size) return false;
  if (from === size) return proof.length === 0 && fromRoot.equals(root);
  // A power-of-two first tree is a node of the second: its root starts the path.
  const path = Number.isInteger(Math.log2(from)) ? [fromRoot, ...proof] : [...proof];
  if (path.length === 0 || path.some((p) => p.length !== HASH_BYTES)) return false;
  let fn = from - 1;
  let sn = size - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(fromRoot) && sr.equals(root);
}
