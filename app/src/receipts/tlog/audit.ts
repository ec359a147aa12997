/**
 * An audit of the receipt log from the ledger bucket alone (read access only, no database): every
 * published checkpoint must open with a signing key published beside it, the published tiles must
 * rebuild its root (and the leaf tiles the latest root, leaf by leaf), each checkpoint must be
 * consistent with the one before (so history was only ever appended to), and sampled archived
 * receipts must be included in the latest.
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
  readonly receiptsChecked: number;
  readonly findings: Array<{ kind: AuditFindingKind; key: string; detail: string }>;
}

export interface AuditOptions {
  /** The ledger objects' prefix (default "receipts/"): checkpoints and tiles under <prefix>tlog/. */
  readonly prefix?: string;
  /** Archived receipt objects sampled for inclusion (default 20). */
  readonly sample?: number;
  readonly onProgress?: (line: string) => void;
}

export async function auditBucket(bucket: BucketReader, options: AuditOptions = {}): Promise<AuditReport> {
  const prefix = options.prefix ?? "receipts/";
  const findings: AuditReport["findings"] = [];
  const keys = await Promise.all((await bucket.list(`${prefix}signing-keys/`)).map(async (k) => JSON.parse((await bucket.read(k)).toString("utf8")) as { public_key: string }));
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
    // Every leaf of the latest tree from the level-0 tiles: the roots above come from higher
    // tiles, so this binds the leaf tiles (which proofs read) to the signed root too.
    try {
      const frontier = TreeFrontier.empty();
      for (let n = 0; n * TILE_WIDTH < latest.size; n++) {
        const width = Math.min(TILE_WIDTH, latest.size - n * TILE_WIDTH);
        const tile = await fetchTile(tilePath({ level: 0, n, width }));
        if (tile.length !== width * HASH_BYTES) throw new Error(`${tilePath({ level: 0, n, width })}: ${tile.length} bytes, expected ${width * HASH_BYTES}`);
        for (let i = 0; i < width; i++) frontier.append(Buffer.from(tile.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES)));
      }
      if (!frontier.root().equals(latest.root)) findings.push({ kind: "tiles", key: opened.at(-1)!.key, detail: `the leaf tiles do not rebuild the root of size ${latest.size}` });
    } catch (error) {
      findings.push({ kind: "unreadable", key: opened.at(-1)!.key, detail: (error as Error).message });
    }
    options.onProgress?.(`audit: ${latest.size} leaves rebuilt from the leaf tiles`);
    const archived = (await bucket.list(prefix)).filter((k) => k.endsWith(".ndjson"));
    const step = Math.max(1, Math.floor(archived.length / (options.sample ?? 20)));
    const reader = tileHashReader(latest.size, fetchTile);
    for (let i = 0; i < archived.length; i += step) {
      const first = JSON.parse((await bucket.read(archived[i])).toString("utf8").split("\n", 1)[0]) as { seq: number; hash: string };
      if (first.seq > latest.size) continue;
      try {
        const proof = await inclusionProof(latest.size, first.seq - 1, reader);
        receiptsChecked++;
        if (!verifyInclusion(leafHash(receiptLeafData(first.hash)), first.seq - 1, latest.size, proof, latest.root)) {
          findings.push({ kind: "inclusion", key: archived[i], detail: `receipt seq ${first.seq} is not in the published tree of size ${latest.size}` });
        }
      } catch (error) {
        findings.push({ kind: "unreadable", key: archived[i], detail: (error as Error).message });
      }
    }
  }
  return { ok: findings.length === 0, checkpoints: opened.length, latestSize: latest?.size ?? null, consistencyChecked, receiptsChecked, findings };
}
