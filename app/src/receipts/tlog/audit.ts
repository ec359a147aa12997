/**
 * An audit of a published log (the receipt log, or the audit log) from the ledger bucket alone (read access only, no database): every
 * published checkpoint must open with a signing key published beside it, the published tiles must
 * rebuild its root (and the leaf tiles the latest root, leaf by leaf), each checkpoint must be
 * consistent with the one before (so history was only ever appended to), and sampled archived
 * records must be included in the latest.
 */
import { verify } from "node:crypto";
import { publicKeyFromRaw } from "../keys";
import { leafHash, verifyInclusion } from "../merkle";
import { openCheckpoint, type Checkpoint } from "./checkpoint";
import { receiptLeafData } from "./store";
import { tileHashReader } from "./tile-reader";
import { tilePath, TILE_WIDTH } from "./tiles";
import { consistencyProof, HASH_BYTES, inclusionProof, TreeFrontier, treeHash, verifyConsistency } from "./tree";

/** What the audit needs of a bucket: list keys under a prefix, read an object. */
export interface BucketReader {
  list(prefix: string): Promise<string[]>;
  read(key: string): Promise<Buffer>;
}

export type AuditFindingKind = "bad_signature" | "tiles" | "fork" | "inclusion" | "unreadable";

export interface AuditReport {
  readonly ok: boolean;
  readonly checkpoints: number;
  readonly latestSize: number | null;
  readonly consistencyChecked: number;
  /** Sampled archived records (receipts or audit entries) whose inclusion was checked. */
  readonly receiptsChecked: number;
  readonly findings: Array<{ kind: AuditFindingKind; key: string; detail: string }>;
}

/** A sampled archived record's leaf: its data, and its index when the record says it. */
export interface SampledLeaf {
  readonly data: Buffer;
  readonly index?: number;
  /** How a finding names the record. */
  readonly name: string;
}

/** A receipt line names its leaf: seq - 1, its hash as leaf data. */
export function receiptLineLeaf(line: string): SampledLeaf {
  const r = JSON.parse(line) as { seq: number; hash: string };
  return { data: receiptLeafData(r.hash), index: r.seq - 1, name: `receipt seq ${r.seq}` };
}

export interface AuditOptions {
  /** The log's objects' prefix (default "receipts/"): checkpoints and tiles under <prefix>tlog/, archived records under <prefix>. */
  readonly prefix?: string;
  /** Where the signing keys are published (default <prefix>signing-keys/). */
  readonly keysPrefix?: string;
  /**
   * The leaf of an archived record line (default: a receipt's). A leaf without an index is looked
   * up by its hash among the leaves of the latest tree.
   */
  readonly leafOf?: (line: string) => SampledLeaf;
  /** Archived receipt objects sampled for inclusion (default 20). */
  readonly sample?: number;
  readonly onProgress?: (line: string) => void;
}

export async function auditBucket(bucket: BucketReader, options: AuditOptions = {}): Promise<AuditReport> {
  const prefix = options.prefix ?? "receipts/";
  const findings: AuditReport["findings"] = [];
  const keys = await Promise.all((await bucket.list(options.keysPrefix ?? `${prefix}signing-keys/`)).map(async (k) => JSON.parse((await bucket.read(k)).toString("utf8")) as { public_key: string }));
  const opened: Array<{ key: string; checkpoint: Checkpoint }> = [];
  const checkpointKeys = await bucket.list(`${prefix}tlog/checkpoints/`);
  for (const key of checkpointKeys) {
    const note = (await bucket.read(key)).toString("utf8");
    const origin = note.split("\n", 1)[0];
    const verifiers = keys.map((k) => {
      const publicKey = publicKeyFromRaw(k.public_key);
      return { name: origin, publicKey: Buffer.from(k.public_key, "base64"), verify: (m: Buffer, s: Buffer) => verify(null, m, publicKey, s) };
    });
    try {
      opened.push({ key, checkpoint: openCheckpoint(note, verifiers) });
    } catch (error) {
      findings.push({ kind: "bad_signature", key, detail: (error as Error).message });
    }
  }
  if (checkpointKeys.length === 0) findings.push({ kind: "unreadable", key: `${prefix}tlog/checkpoints/`, detail: "no published checkpoint" });
  opened.sort((a, b) => a.checkpoint.size - b.checkpoint.size);
  const fetchTile = (path: string) => bucket.read(`${prefix}tlog/${path}`);
  let consistencyChecked = 0;
  let previous: (typeof opened)[number] | undefined;
  for (const [i, { key, checkpoint }] of opened.entries()) {
    const reader = tileHashReader(checkpoint.size, fetchTile);
    try {
      if (!(await treeHash(checkpoint.size, reader)).equals(checkpoint.root)) {
        findings.push({ kind: "tiles", key, detail: `the published tiles do not rebuild the root of size ${checkpoint.size}` });
      } else if (previous) {
        const proof = await consistencyProof(checkpoint.size, previous.checkpoint.size, reader);
        consistencyChecked++;
        if (!verifyConsistency(previous.checkpoint.root, checkpoint.root, previous.checkpoint.size, checkpoint.size, proof)) {
          findings.push({ kind: "fork", key, detail: `size ${checkpoint.size} does not extend the published checkpoint of size ${previous.checkpoint.size} (${previous.key})` });
        }
      }
    } catch (error) {
      findings.push({ kind: "unreadable", key, detail: (error as Error).message });
    }
    previous = { key, checkpoint };
    options.onProgress?.(`audit: checkpoint ${i + 1} of ${opened.length} (size ${checkpoint.size})`);
  }

  let receiptsChecked = 0;
  const latest = opened.at(-1)?.checkpoint;
  if (latest) {
    const archived = (await bucket.list(prefix)).filter((k) => k.endsWith(".ndjson"));
    const step = Math.max(1, Math.floor(archived.length / (options.sample ?? 20)));
    const leafOf = options.leafOf ?? receiptLineLeaf;
    const sampled: Array<{ key: string; leaf: SampledLeaf; hash: Buffer; index?: number }> = [];
    for (let i = 0; i < archived.length; i += step) {
      try {
        const leaf = leafOf((await bucket.read(archived[i])).toString("utf8").split("\n", 1)[0]);
        sampled.push({ key: archived[i], leaf, hash: leafHash(leaf.data), index: leaf.index });
      } catch (error) {
        findings.push({ kind: "unreadable", key: archived[i], detail: (error as Error).message });
      }
    }
    const byHash = new Map(sampled.filter((s) => s.index === undefined).map((s) => [s.hash.toString("hex"), s]));
    // Every leaf of the latest tree from the level-0 tiles: the roots above come from higher
    // tiles, so this binds the leaf tiles (which proofs read) to the signed root too.
    try {
      const frontier = TreeFrontier.empty();
      for (let n = 0; n * TILE_WIDTH < latest.size; n++) {
        const width = Math.min(TILE_WIDTH, latest.size - n * TILE_WIDTH);
        const tile = await fetchTile(tilePath({ level: 0, n, width }));
        if (tile.length !== width * HASH_BYTES) throw new Error(`${tilePath({ level: 0, n, width })}: ${tile.length} bytes, expected ${width * HASH_BYTES}`);
        for (let i = 0; i < width; i++) {
          const hash = Buffer.from(tile.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES));
          const wanted = byHash.get(hash.toString("hex"));
          if (wanted && wanted.index === undefined) wanted.index = frontier.size;
          frontier.append(hash);
        }
      }
      if (!frontier.root().equals(latest.root)) findings.push({ kind: "tiles", key: opened.at(-1)!.key, detail: `the leaf tiles do not rebuild the root of size ${latest.size}` });
    } catch (error) {
      findings.push({ kind: "unreadable", key: opened.at(-1)!.key, detail: (error as Error).message });
    }
    options.onProgress?.(`audit: ${latest.size} leaves rebuilt from the leaf tiles`);
    const reader = tileHashReader(latest.size, fetchTile);
    for (const { key, leaf, hash, index } of sampled) {
      if (leaf.index !== undefined && leaf.index >= latest.size) continue;
      if (index === undefined) {
        findings.push({ kind: "inclusion", key, detail: `${leaf.name} is not a leaf of the published tree of size ${latest.size}` });
        continue;
      }
      try {
        const proof = await inclusionProof(latest.size, index, reader);
        receiptsChecked++;
        if (!verifyInclusion(hash, index, latest.size, proof, latest.root)) {
          findings.push({ kind: "inclusion", key, detail: `${leaf.name} is not in the published tree of size ${latest.size}` });
        }
      } catch (error) {
        findings.push({ kind: "unreadable", key, detail: (error as Error).message });
      }
    }
  }
  return { ok: findings.length === 0, checkpoints: opened.length, latestSize: latest?.size ?? null, consistencyChecked, receiptsChecked, findings };
}
