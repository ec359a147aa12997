/**
 * The receipt log's tree, tiles and checkpoints (app/src/receipts/tlog) checked by an
 * implementation this project did not write: tools/tlog-verify runs the Go checksum database's
 * sumdb/tlog and sumdb/note. For trees of 1, 2, 3, 7, 8, 9, 255, 256, 257, 65,537 and random
 * sizes: every checkpoint opens with the published verifier key, inclusion proofs verify against
 * it, consistency proofs between every pair of consecutive sizes and random pairs verify, and the
 * tiles written by their C2SP paths rebuild each checkpoint's root and prove sampled leaves from
 * the files alone. Forged checkpoints (another key, a changed size or root), altered proofs and a
 * changed tile are refused by that verifier, and by this project's own note reader.
 */
import { execFile } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { inclusionProof as batchInclusionProof, leafHash, merkleRoot } from "../../app/src/receipts/merkle";
import { openCheckpoint, signCheckpoint, verifierKey, type NoteSigner } from "../../app/src/receipts/tlog/checkpoint";
import { newTiles, parseTilePath, readTile, tilePath, TILE_WIDTH, type Tile } from "../../app/src/receipts/tlog/tiles";
import { tileHashReader } from "../../app/src/receipts/tlog/tile-reader";
import { consistencyProof, inclusionProof, splitStoredHashIndex, storedHashCount, storedHashesForLeaf, storedHashIndex, treeHash, verifyConsistency, type HashReader } from "../../app/src/receipts/tlog/tree";

const run = promisify(execFile);
const REPO = join(__dirname, "..", "..");
const ORIGIN = "knhk.test/receipts/prod";
const KEY_NAME = "knhk.test/receipts/prod";
const SIZES = [1, 2, 3, 7, 8, 9, 255, 256, 257, 65_537];

jest.setTimeout(300_000);

let verifierBin: string;
let root: string;

beforeAll(async () => {
  const { stdout } = await run("bash", [join(REPO, "scripts", "tlog-verify-build.sh")], { timeout: 600_000 });
  verifierBin = join(stdout.trim(), "tlog-verify");
  root = mkdtempSync(join(tmpdir(), "knhk-tlog-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** An in-memory log: leaf data and the stored hashes appended the way the ledger will. */
class MemoryLog {
  readonly data: Buffer[] = [];
  readonly hashes: Buffer[] = [];
  readonly read: HashReader = async (indexes) =>
    indexes.map((i) => {
      const h = this.hashes[i];
      if (!h) throw new Error(`no stored hash ${i}`);
      return h;
    });
  async append(data: Buffer): Promise<void> {
    const n = this.data.length;
    this.hashes.push(...(await storedHashesForLeaf(n, leafHash(data), this.read)));
    this.data.push(data);
  }
}

function ed25519Signer(name: string, key = generateKeyPairSync("ed25519")): NoteSigner & { key: { privateKey: KeyObject; publicKey: KeyObject } } {
  const raw = Buffer.from(key.publicKey.export({ format: "jwk" }).x!, "base64url");
  return { name, publicKey: raw, sign: async (m) => sign(null, m, key.privateKey), key };
}

const noteVerifier = (s: ReturnType<typeof ed25519Signer>) => ({ name: s.name, publicKey: s.publicKey, verify: (m: Buffer, sig: Buffer) => verify(null, m, s.key.publicKey, sig) });

interface VerifyAnswer {
  ok: boolean;
  error?: string;
  size?: number;
  root?: string;
}
interface VerifyResult {
  checkpoints: VerifyAnswer[];
  inclusion: VerifyAnswer[];
  consistency: VerifyAnswer[];
  tiles: VerifyAnswer[];
}

async function independentlyVerify(request: unknown): Promise<VerifyResult> {
  const file = join(root, `request-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(request));
  const { stdout } = await run(verifierBin, [file], { timeout: 120_000, maxBuffer: 64 * 2 ** 20 });
  return JSON.parse(stdout) as VerifyResult;
}

const b64 = (b: Buffer) => b.toString("base64");
const leafData = (i: number) => Buffer.from(JSON.stringify({ seq: i + 1, hash: i.toString(16).padStart(64, "0") }));
const flip = (h: Buffer) => {
  const c = Buffer.from(h);
  c[0] ^= 1;
  return c;
};

async function writeTiles(dir: string, log: MemoryLog, from: number, to: number): Promise<Tile[]> {
  const tiles = newTiles(from, to);
  for (const t of tiles) {
    const file = join(dir, tilePath(t));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, await readTile(t, log.read));
  }
  return tiles;
}

describe("stored hashes", () => {
  test("after every append the log holds storedHashCount(n) hashes, and each level's node sits at storedHashIndex", async () => {
    const log = new MemoryLog();
    for (let i = 0; i < 600; i++) {
      await log.append(leafData(i));
      expect(log.hashes.length).toBe(storedHashCount(i + 1));
      expect(log.hashes[storedHashIndex(0, i)]).toEqual(leafHash(leafData(i)));
    }
    // The node over leaves 256..511 is the root of those leaves alone.
    expect(log.hashes[storedHashIndex(8, 1)]).toEqual(merkleRoot(log.data.slice(256, 512).map((d) => leafHash(d))));
  });

  test("roots and inclusion proofs equal the RFC 9162 reference over the leaves (merkle.ts) for every size to 300", async () => {
    const log = new MemoryLog();
    for (let i = 0; i < 300; i++) await log.append(leafData(i));
    const leaves = log.data.map((d) => leafHash(d));
    for (let n = 1; n <= 300; n++) {
      expect(await treeHash(n, log.read)).toEqual(merkleRoot(leaves.slice(0, n)));
      for (const index of new Set([0, n - 1, Math.floor(n / 2)])) {
        expect(await inclusionProof(n, index, log.read)).toEqual(batchInclusionProof(leaves.slice(0, n), index));
      }
    }
  });

  test("out-of-range arguments are errors naming the argument", async () => {
    const log = new MemoryLog();
    await log.append(leafData(0));
    await expect(inclusionProof(1, 1, log.read)).rejects.toThrow(/^index: must be below the tree size 1/);
    await expect(consistencyProof(1, 2, log.read)).rejects.toThrow(/^from: must be from 1 to the tree size 1/);
    await expect(treeHash(-1, log.read)).rejects.toThrow(/^n: /);
    await expect(inclusionProof(1.5, 0, log.read)).rejects.toThrow(/^size: /);
  });
});

describe("what an auditor computes from tiles", () => {
  test("splitStoredHashIndex inverts storedHashIndex", () => {
    for (let level = 0; level <= 12; level++) for (let n = 0; n < 300; n++) expect(splitStoredHashIndex(storedHashIndex(level, n))).toEqual({ level, n });
  });

  test("consistency proofs verify for every pair of sizes to 70 and refuse an altered proof or root, or a first tree larger than the second", async () => {
    const log = new MemoryLog();
    for (let i = 0; i < 70; i++) await log.append(leafData(i));
    for (let size = 1; size <= 70; size++) {
      const root = await treeHash(size, log.read);
      for (let from = 1; from <= size; from++) {
        const fromRoot = await treeHash(from, log.read);
        const proof = await consistencyProof(size, from, log.read);
        expect({ from, size, ok: verifyConsistency(fromRoot, root, from, size, proof) }).toEqual({ from, size, ok: true });
        if (from < size) {
          expect(verifyConsistency(flip(fromRoot), root, from, size, proof)).toBe(false);
          expect(verifyConsistency(fromRoot, flip(root), from, size, proof)).toBe(false);
          if (proof.length) expect(verifyConsistency(fromRoot, root, from, size, [flip(proof[0]), ...proof.slice(1)])).toBe(false);
          // (A size is bound to its root by the checkpoint's signature, not by the proof: the same
          // path can fit two sizes, as in RFC 9162's own algorithm, so only impossible sizes are refused here.)
          expect(verifyConsistency(fromRoot, root, size + 1, size, proof)).toBe(false);
        }
      }
    }
  });

  test("hashes read from the tiles of a size equal the stored hashes: roots and proofs for sizes across tile edges", async () => {
    const log = new MemoryLog();
    for (let i = 0; i < 66_000; i++) await log.append(leafData(i));
    const tiles = new Map<string, Buffer>();
    for (const t of newTiles(0, 66_000)) tiles.set(tilePath(t), await readTile(t, log.read));
    let published = 0;
    for (const size of [1, 255, 256, 257, 511, 65_535, 65_536, 65_537, 66_000]) {
      for (const t of newTiles(published, size)) tiles.set(tilePath(t), await readTile(t, log.read));
      published = Math.max(published, size);
    }
    for (const size of [1, 255, 256, 257, 511, 65_535, 65_536, 65_537, 66_000]) {
      const fromTiles = tileHashReader(size, async (path) => {
        const t = tiles.get(path);
        if (!t) throw new Error(`no tile ${path}`);
        return t;
      });
      expect(await treeHash(size, fromTiles)).toEqual(await treeHash(size, log.read));
      for (const index of [0, size - 1, Math.floor(size / 2)]) expect(await inclusionProof(size, index, fromTiles)).toEqual(await inclusionProof(size, index, log.read));
      expect(await consistencyProof(size, Math.ceil(size / 3), fromTiles)).toEqual(await consistencyProof(size, Math.ceil(size / 3), log.read));
    }
  });
});

describe("tile paths", () => {
  test("the C2SP layout: x-prefixed groups of three digits, .p/<width> for a partial tile", () => {
    expect(tilePath({ level: 0, n: 0, width: TILE_WIDTH })).toBe("tile/0/000");
    expect(tilePath({ level: 1, n: 1234067, width: 17 })).toBe("tile/1/x001/x234/067.p/17");
    expect(tilePath({ level: 2, n: 1000, width: TILE_WIDTH })).toBe("tile/2/x001/000");
  });

  test("every tile's path parses back to it, and any string is either a tile or an error, never a throw", () => {
    fc.assert(
      fc.property(fc.record({ level: fc.integer({ min: 0, max: 63 }), n: fc.integer({ min: 0, max: 2 ** 40 }), width: fc.integer({ min: 1, max: TILE_WIDTH }) }), (t) => {
        expect(parseTilePath(tilePath(t))).toEqual(t);
      }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^tile\/[0-9x.p/]{0,20}$/)), (s) => {
        const parsed = parseTilePath(s);
        if (!("error" in parsed)) expect(tilePath(parsed)).toBe(s);
      }),
    );
    for (const bad of ["tile/0/1", "tile/0/x000/001", "tile/0/000.p/256", "tile/0/000.p/0", "tile/64/000", "tile/01/000", "tile/0/001/002", "tile/entries/000", "../tile/0/000"]) {
      expect(parseTilePath(bad)).toHaveProperty("error");
    }
  });
});

describe("checked by the Go checksum database's tlog and note packages", () => {
  const signer = ed25519Signer(KEY_NAME);
  const vkey = verifierKey(signer.name, signer.publicKey);
  const log = new MemoryLog();
  const sizes = [...SIZES, ...fc.sample(fc.integer({ min: 10, max: 65_536 }), { numRuns: 3, seed: 20261203 })].sort((a, b) => a - b);
  const notes: string[] = [];
  let tilesDir: string;

  beforeAll(async () => {
    tilesDir = join(root, "bucket");
    let published = 0;
    for (const size of sizes) {
      while (log.data.length < size) await log.append(leafData(log.data.length));
      notes.push(await signCheckpoint({ origin: ORIGIN, size, root: await treeHash(size, log.read) }, signer));
      await writeTiles(tilesDir, log, published, size);
      published = size;
    }
  });

  test("checkpoints open with the verifier key; inclusion, consistency and tile proofs verify", async () => {
    const inclusion: unknown[] = [];
    for (const [c, size] of sizes.entries()) {
      for (const index of new Set([0, size - 1, Math.floor(size / 3), Math.floor(Math.random() * size)])) {
        inclusion.push({ checkpoint: c, index, data: b64(log.data[index]), proof: (await inclusionProof(size, index, log.read)).map(b64) });
      }
    }
    const pairs: Array<[number, number]> = sizes.slice(1).map((_, i) => [i, i + 1]);
    for (let i = 0; i < 10; i++) {
      const a = Math.floor(Math.random() * sizes.length);
      const b = Math.floor(Math.random() * sizes.length);
      pairs.push([Math.min(a, b), Math.max(a, b)]);
    }
    const consistency = await Promise.all(pairs.map(async ([older, newer]) => ({ older, newer, proof: (await consistencyProof(sizes[newer], sizes[older], log.read)).map(b64) })));
    const tileChecks = sizes.map((size, c) => {
      const indexes = [...new Set([0, size - 1, Math.floor(size / 2)])];
      return { dir: tilesDir, checkpoint: c, indexes, data: indexes.map((i) => b64(log.data[i])) };
    });
    const result = await independentlyVerify({ vkey, checkpoints: notes, inclusion, consistency, tiles: tileChecks });

    expect(result.checkpoints.map((r) => r.size)).toEqual(sizes);
    expect(result.checkpoints.every((r) => r.ok)).toBe(true);
    expect(result.inclusion).toHaveLength(inclusion.length);
    expect(result.inclusion.filter((r) => !r.ok)).toEqual([]);
    expect(result.consistency).toHaveLength(pairs.length);
    expect(result.consistency.filter((r) => !r.ok)).toEqual([]);
    expect(result.tiles).toHaveLength(tileChecks.reduce((n, t) => n + 1 + t.indexes.length, 0));
    expect(result.tiles.filter((r) => !r.ok)).toEqual([]);
    // Our own reader opens them too and agrees on the root.
    for (const [c, note] of notes.entries()) {
      expect(openCheckpoint(note, [noteVerifier(signer)])).toEqual({ origin: ORIGIN, size: sizes[c], root: await treeHash(sizes[c], log.read) });
    }
  });

  test("forged checkpoints are refused: another key of the same name, a changed size, a changed root", async () => {
    const size = 257;
    const real = await treeHash(size, log.read);
    const impostor = ed25519Signer(KEY_NAME);
    const reSigned = await signCheckpoint({ origin: ORIGIN, size, root: real }, impostor);
    const genuine = await signCheckpoint({ origin: ORIGIN, size, root: real }, signer);
    const wrongSize = genuine.replace(`\n${size}\n`, `\n${size + 1}\n`);
    const wrongRoot = genuine.replace(b64(real), b64(flip(real)));
    const result = await independentlyVerify({ vkey, checkpoints: [genuine, reSigned, wrongSize, wrongRoot] });
    expect(result.checkpoints.map((r) => r.ok)).toEqual([true, false, false, false]);
    for (const forged of [reSigned, wrongSize, wrongRoot]) expect(() => openCheckpoint(forged, [noteVerifier(signer)])).toThrow(/no signature by a known key verifies/);
  });

  test("altered proofs and a changed tile are refused", async () => {
    const c = sizes.indexOf(65_537);
    const size = sizes[c];
    const proof = await inclusionProof(size, 1000, log.read);
    const olderC = sizes.indexOf(257);
    const cons = await consistencyProof(size, 257, log.read);
    const tampered = join(root, "tampered");
    await writeTiles(tampered, log, 0, size);
    const victim = join(tampered, tilePath({ level: 0, n: 3, width: TILE_WIDTH }));
    const bytes = readFileSync(victim);
    bytes[40] ^= 1;
    writeFileSync(victim, bytes);
    const result = await independentlyVerify({
      vkey,
      checkpoints: notes,
      inclusion: [
        { checkpoint: c, index: 1000, data: b64(log.data[1000]), proof: proof.map(b64) },
        { checkpoint: c, index: 1000, data: b64(log.data[1001]), proof: proof.map(b64) },
        { checkpoint: c, index: 1000, data: b64(log.data[1000]), proof: [b64(flip(proof[0])), ...proof.slice(1).map(b64)] },
        { checkpoint: c, index: 1001, data: b64(log.data[1000]), proof: proof.map(b64) },
        { checkpoint: c, index: 1000, data: b64(log.data[1000]), proof: proof.slice(1).map(b64) },
      ],
      consistency: [
        { older: olderC, newer: c, proof: cons.map(b64) },
        { older: olderC, newer: c, proof: [...cons.slice(0, -1), flip(cons[cons.length - 1])].map(b64) },
        { older: olderC - 1, newer: c, proof: cons.map(b64) },
      ],
      tiles: [{ dir: tampered, checkpoint: c, indexes: [3 * TILE_WIDTH + 1], data: [b64(log.data[3 * TILE_WIDTH + 1])] }],
    });
    expect(result.inclusion.map((r) => r.ok)).toEqual([true, false, false, false, false]);
    expect(result.consistency.map((r) => r.ok)).toEqual([true, false, false]);
    // The root reads only the tiles above the changed one; proving a leaf under it reads it and fails.
    expect(result.tiles.map((r) => r.ok)).toEqual([true, false]);
  });
});

test("the verifier key is the form the note package reads: <name>+<8 hex digits>+<base64 of 0x01 and the key>", () => {
  const key = generateKeyPairSync("ed25519");
  const s = ed25519Signer("example.com/log", { privateKey: createPrivateKey(key.privateKey.export({ format: "pem", type: "pkcs8" })), publicKey: createPublicKey(key.publicKey.export({ format: "pem", type: "spki" })) });
  expect(verifierKey(s.name, s.publicKey)).toMatch(/^example\.com\/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
  expect(() => verifierKey("has space", s.publicKey)).toThrow(/^key name: /);
});
