/**
 * The Merkle tree of batch receipts: the Certificate Transparency test vectors (roots of the
 * first 1..8 leaves of the reference log, and inclusion paths), a recursive reference of the
 * tree definition, and hostile proofs that must all be refused.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { inclusionProof, leafHash, merkleRoot, nodeHash, verifyInclusion } from "../../app/src/receipts/merkle";

// The leaves and roots of the reference tree in the Certificate Transparency sources (merkle_tree_test).
const LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map((h) => Buffer.from(h, "hex"));
const ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
const hashes = LEAVES.map(leafHash);

/** The tree as RFC 9162 defines it, recursively: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])). */
function referenceRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash("sha256").digest();
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

const leafSets = fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 70 }).map((ls) => ls.map((l) => leafHash(Buffer.from(l))));

test("the roots of the reference tree's first 1..8 leaves", () => {
  expect(createHash("sha256").digest("hex")).toBe(merkleRoot([]).toString("hex"));
  for (let n = 1; n <= 8; n++) expect(merkleRoot(hashes.slice(0, n)).toString("hex")).toBe(ROOTS[n - 1]);
});

test("inclusion paths of the reference tree", () => {
  // Leaf 0 of 8: the sibling leaf, then the roots of leaves 2-3 and of 4-7.
  expect(inclusionProof(hashes, 0).map((h) => h.toString("hex"))).toEqual([
    hashes[1].toString("hex"),
    merkleRoot(hashes.slice(2, 4)).toString("hex"),
    merkleRoot(hashes.slice(4, 8)).toString("hex"),
  ]);
  // Leaf 6 of 7: the last leaf has only the roots of 4-5 and of 0-3 as siblings.
  expect(inclusionProof(hashes.slice(0, 7), 6).map((h) => h.toString("hex"))).toEqual([
    merkleRoot(hashes.slice(4, 6)).toString("hex"),
    ROOTS[3],
  ]);
  for (let n = 1; n <= 8; n++) {
    for (let i = 0; i < n; i++) {
      expect(verifyInclusion(hashes[i], i, n, inclusionProof(hashes.slice(0, n), i), Buffer.from(ROOTS[n - 1], "hex"))).toBe(true);
    }
  }
});

test("the level-by-level root equals the recursive definition for every size", () => {
  fc.assert(fc.property(leafSets, (leaves) => merkleRoot(leaves).equals(referenceRoot(leaves))), { numRuns: 300, seed: 15 });
});

test("every leaf's proof verifies, and its length is at most ceil(log2 n)", () => {
  fc.assert(
    fc.property(leafSets, (leaves) => {
      const root = merkleRoot(leaves);
      leaves.forEach((leaf, i) => {
        const proof = inclusionProof(leaves, i);
        expect(proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(leaves.length)));
        expect(verifyInclusion(leaf, i, leaves.length, proof, root)).toBe(true);
      });
    }),
    { numRuns: 150, seed: 16 },
  );
});

test("a proof is refused for another leaf, index, size or root, and when any hash is altered, dropped or added", () => {
  fc.assert(
    fc.property(leafSets.filter((l) => l.length >= 2), fc.nat(), fc.nat(), fc.nat({ max: 255 }), (leaves, pick, other, byte) => {
      const i = pick % leaves.length;
      const root = merkleRoot(leaves);
      const proof = inclusionProof(leaves, i);
      const n = leaves.length;
      const j = other % n;
      if (!leaves[j].equals(leaves[i])) expect(verifyInclusion(leaves[j], i, n, proof, root)).toBe(false);
      expect(verifyInclusion(leaves[i], n, n, proof, root)).toBe(false);
      expect(verifyInclusion(leaves[i], -1, n, proof, root)).toBe(false);
      expect(verifyInclusion(leaves[i], i, n, proof, leafHash("not the root"))).toBe(false);
      expect(verifyInclusion(leaves[i], i, n, [...proof, root], root)).toBe(false);
      if (proof.length > 0) {
        expect(verifyInclusion(leaves[i], i, n, proof.slice(1), root)).toBe(false);
        const k = byte % proof.length;
        const altered = proof.map((h, x) => (x === k ? Buffer.from(h.map((b, y) => (y === byte % 32 ? b ^ 1 : b))) : h));
        expect(verifyInclusion(leaves[i], i, n, altered, root)).toBe(false);
        expect(verifyInclusion(leaves[i], i, n, [...proof.slice(0, k), proof[k].subarray(0, 31), ...proof.slice(k + 1)], root)).toBe(false);
      }
      if (j !== i && !leaves[j].equals(leaves[i])) expect(verifyInclusion(leaves[i], j, n, proof, root)).toBe(false);
    }),
    { numRuns: 300, seed: 17 },
  );
});

test("a leaf hash is not a node hash: the two-leaf root does not verify as a leaf of a one-leaf tree", () => {
  const root = merkleRoot(hashes.slice(0, 2));
  expect(leafHash(Buffer.concat([hashes[0], hashes[1]])).equals(root)).toBe(false);
  expect(verifyInclusion(root, 0, 1, [], root)).toBe(true);
  expect(verifyInclusion(root, 0, 2, [], root)).toBe(false);
});

test("inclusionProof refuses an index outside the tree, naming it", () => {
  expect(() => inclusionProof(hashes, 8)).toThrow("index: must be an integer from 0 to 7, got 8");
});
