/**
 * Verification of the receipt log against the receipts themselves: the tree is recomputed from
 * the receipts in one pass (O(log n) memory) and its root at every checkpointed size, at the
 * stored head and at a checkpoint an auditor remembers is compared with what was signed. What it
 * reports, each as a finding naming the size:
 * - truncated: fewer receipts than a signed checkpoint (or the stored tree) covers;
 * - rewritten: the receipts give another root than the one signed for that size (an entry was
 *   changed, removed or reordered);
 * - fork: a remembered checkpoint, validly signed, that the current receipts do not extend;
 * - bad signature: a stored checkpoint no registered key verifies.
 */
import { verify } from "node:crypto";
import type { Sql } from "../../db/types";
import { publicKeyFromRaw } from "../keys";
import { loadKeyring } from "../keyring";
import { leafHash } from "../merkle";
import { openCheckpoint, type Checkpoint } from "./checkpoint";
import { checkpointsAfter } from "./checkpoints";
import { readTreeHead, receiptLeafData } from "./store";
import { TreeFrontier } from "./tree";

export type LogFindingKind = "truncated" | "rewritten" | "fork" | "bad_signature" | "missing_receipt";

export interface LogFinding {
  readonly kind: LogFindingKind;
  readonly size: number;
  readonly detail: string;
}

export interface LogReport {
  readonly ok: boolean;
  readonly receipts: number;
  readonly treeSize: number;
  readonly checkpoints: number;
  readonly latestCheckpoint: number | null;
  readonly findings: LogFinding[];
}

/** Verifiers for every registered key version, under the note's own key name (the origin). */
export async function registeredNoteVerifiers(sql: Sql, name: string) {
  const keyring = await loadKeyring(sql);
  return [...keyring.values()].map((raw) => {
    const key = publicKeyFromRaw(raw);
    return { name, publicKey: Buffer.from(raw, "base64"), verify: (message: Buffer, signature: Buffer) => verify(null, message, key, signature) };
  });
}

/** Opens a note with the registered keys (its first line names the origin and key). */
export async function openWithRegisteredKeys(sql: Sql, note: string): Promise<Checkpoint> {
  const origin = note.split("\n", 1)[0];
  return openCheckpoint(note, await registeredNoteVerifiers(sql, origin));
}

export interface VerifyLogOptions {
  /** A checkpoint note an auditor kept: the current receipts must extend it. */
  readonly remembered?: string;
  readonly onProgress?: (done: number, total: number) => void;
  /** Receipts read per query. */
  readonly page?: number;
}

export async function verifyLog(sql: Sql, options: VerifyLogOptions = {}): Promise<LogReport> {
  const page = options.page ?? 10_000;
  const findings: LogFinding[] = [];
  const head = await readTreeHead(sql);
  const expected = new Map<number, { root: Buffer; what: string }[]>();
  const expect = (size: number, root: Buffer, what: string) => expected.set(size, [...(expected.get(size) ?? []), { root, what }]);
  expect(head.size, head.root, "the stored tree's head");

  let checkpoints = 0;
  let latest: number | null = null;
  for (let after = 0; ; ) {
    const batch = await checkpointsAfter(sql, after, 1000);
    if (batch.length === 0) break;
    for (const c of batch) {
      checkpoints++;
      latest = c.size;
      after = c.size;
      try {
        const opened = await openWithRegisteredKeys(sql, c.note);
        if (opened.size !== c.size || !opened.root.equals(c.root)) findings.push({ kind: "bad_signature", size: c.size, detail: "the signed note does not say the size and root stored with it" });
        expect(c.size, opened.root, "the signed checkpoint");
      } catch (error) {
        findings.push({ kind: "bad_signature", size: c.size, detail: (error as Error).message });
      }
    }
  }
  if (options.remembered !== undefined) {
    try {
      const remembered = await openWithRegisteredKeys(sql, options.remembered);
      expect(remembered.size, remembered.root, "the remembered checkpoint");
    } catch (error) {
      findings.push({ kind: "bad_signature", size: 0, detail: `the remembered checkpoint: ${(error as Error).message}` });
    }
  }

  const { rows: countRows } = await sql.query<{ n: string }>("SELECT coalesce(max(seq), 0)::text AS n FROM receipts");
  const lastSeq = Number(countRows[0].n);
  const wanted = [...expected.keys()].filter((s) => s > 0).sort((a, b) => a - b);
  const until = Math.max(0, ...wanted);
  const frontier = TreeFrontier.empty();
  let gap: number | undefined;
  const check = (size: number) => {
    for (const { root, what } of expected.get(size) ?? []) {
      if (root.equals(frontier.root())) continue;
      const kind: LogFindingKind = what === "the remembered checkpoint" ? "fork" : "rewritten";
      findings.push({ kind, size, detail: `${what} has root ${root.toString("base64")}; the receipts give ${frontier.root().toString("base64")}` });
    }
  };
  let next = 0;
  while (next < wanted.length && frontier.size < Math.min(until, lastSeq) && gap === undefined) {
    const { rows } = await sql.query<{ seq: string; hash: string }>("SELECT seq::text AS seq, hash FROM receipts WHERE seq > $1 AND seq <= $2 ORDER BY receipts.seq LIMIT $3", [frontier.size, until, page]);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (Number(row.seq) !== frontier.size + 1) {
        gap = frontier.size + 1;
        findings.push({ kind: "missing_receipt", size: gap, detail: `receipt seq ${gap} is missing (the next is ${row.seq})` });
        break;
      }
      frontier.append(leafHash(receiptLeafData(row.hash)));
      while (next < wanted.length && wanted[next] === frontier.size) check(wanted[next++]);
    }
    options.onProgress?.(frontier.size, until);
  }
  for (; next < wanted.length; next++) {
    const size = wanted[next];
    for (const { what } of expected.get(size) ?? []) {
      if (gap !== undefined && size >= gap) continue;
      findings.push({ kind: "truncated", size, detail: `${what} covers ${size} receipts; the log has ${lastSeq}` });
    }
  }
  return { ok: findings.length === 0, receipts: lastSeq, treeSize: head.size, checkpoints, latestCheckpoint: latest, findings };
}
