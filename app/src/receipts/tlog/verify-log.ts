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
import { RECEIPT_TREE, readTreeHead, receiptLeafData, type TreeHead, type TreeTables } from "./store";
import { TreeFrontier } from "./tree";

export type LogFindingKind = "truncated" | "rewritten" | "fork" | "bad_signature" | "missing_receipt" | "missing_entry" | "changed_entry";

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
  /** A checkpoint note an auditor kept: the current entries must extend it. */
  readonly remembered?: string;
  readonly onProgress?: (done: number, total: number) => void;
  /** Entries read per query. */
  readonly page?: number;
}

const REMEMBERED = "the remembered checkpoint";

/**
 * The roots a log's entries must give at each size: its stored head's, every signed checkpoint's
 * (each opened with the registered keys) and a remembered checkpoint's. `check` compares them
 * with a tree replayed from the entries as it reaches each size; `unreached` reports the sizes
 * the entries never reached.
 */
export class SignedRoots {
  readonly findings: LogFinding[] = [];
  checkpoints = 0;
  latest: number | null = null;
  private readonly bySize = new Map<number, { root: Buffer; what: string }[]>();
  private sizes: number[] = [];
  private next = 0;

  static async collect(sql: Sql, tables: TreeTables, head: TreeHead, remembered: string | undefined): Promise<SignedRoots> {
    const roots = new SignedRoots();
    roots.expect(head.size, head.root, "the stored tree's head");
    const origins = new Set<string>();
    for (let after = 0; ; ) {
      const batch = await checkpointsAfter(sql, after, 1000, tables);
      if (batch.length === 0) break;
      for (const c of batch) {
        roots.checkpoints++;
        roots.latest = c.size;
        after = c.size;
        try {
          const opened = await openWithRegisteredKeys(sql, c.note);
          origins.add(opened.origin);
          if (opened.size !== c.size || !opened.root.equals(c.root)) roots.findings.push({ kind: "bad_signature", size: c.size, detail: "the signed note does not say the size and root stored with it" });
          roots.expect(c.size, opened.root, "the signed checkpoint");
        } catch (error) {
          roots.findings.push({ kind: "bad_signature", size: c.size, detail: (error as Error).message });
        }
      }
    }
    if (remembered !== undefined) {
      try {
        const opened = await openWithRegisteredKeys(sql, remembered);
        // Both logs are signed with one key: a note of the other log opens too, but is not this log's.
        if (origins.size > 0 && !origins.has(opened.origin)) throw new Error(`it is a checkpoint of ${opened.origin}; this log's checkpoints are of ${[...origins].join(", ")}`);
        roots.expect(opened.size, opened.root, REMEMBERED);
      } catch (error) {
        roots.findings.push({ kind: "bad_signature", size: 0, detail: `${REMEMBERED}: ${(error as Error).message}` });
      }
    }
    roots.sizes = [...roots.bySize.keys()].filter((size) => size > 0).sort((a, b) => a - b);
    return roots;
  }

  private expect(size: number, root: Buffer, what: string): void {
    this.bySize.set(size, [...(this.bySize.get(size) ?? []), { root, what }]);
  }

  /** The largest size a root is expected at (0: none). */
  get until(): number {
    return this.sizes[this.sizes.length - 1] ?? 0;
  }

  /** Whether a size is still to be checked. */
  get pending(): boolean {
    return this.next < this.sizes.length;
  }

  /** After appending a leaf: compares the replayed root with every root expected at its size. */
  check(frontier: TreeFrontier, noun: string): void {
    while (this.next < this.sizes.length && this.sizes[this.next] === frontier.size) {
      for (const { root, what } of this.bySize.get(frontier.size) ?? []) {
        if (root.equals(frontier.root())) continue;
        this.findings.push({ kind: what === REMEMBERED ? "fork" : "rewritten", size: frontier.size, detail: `${what} has root ${root.toString("base64")}; the ${noun} give ${frontier.root().toString("base64")}` });
      }
      this.next++;
    }
  }

  /** Reports every size not reached as truncated, except at or after a gap already reported. */
  unreached(count: number, noun: string, gap: number | undefined): void {
    for (; this.next < this.sizes.length; this.next++) {
      const size = this.sizes[this.next];
      if (gap !== undefined && size >= gap) continue;
      for (const { what } of this.bySize.get(size) ?? []) this.findings.push({ kind: "truncated", size, detail: `${what} covers ${size} ${noun}; the log has ${count}` });
    }
  }
}

export async function verifyLog(sql: Sql, options: VerifyLogOptions = {}): Promise<LogReport> {
  const page = options.page ?? 10_000;
  const head = await readTreeHead(sql);
  const roots = await SignedRoots.collect(sql, RECEIPT_TREE, head, options.remembered);
  const { rows: countRows } = await sql.query<{ n: string }>("SELECT coalesce(max(seq), 0)::text AS n FROM receipts");
  const lastSeq = Number(countRows[0].n);
  const until = roots.until;
  const frontier = TreeFrontier.empty();
  let gap: number | undefined;
  while (roots.pending && frontier.size < Math.min(until, lastSeq) && gap === undefined) {
    const { rows } = await sql.query<{ seq: string; hash: string }>("SELECT seq::text AS seq, hash FROM receipts WHERE seq > $1 AND seq <= $2 ORDER BY receipts.seq LIMIT $3", [frontier.size, until, page]);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (Number(row.seq) !== frontier.size + 1) {
        gap = frontier.size + 1;
        roots.findings.push({ kind: "missing_receipt", size: gap, detail: `receipt seq ${gap} is missing (the next is ${row.seq})` });
        break;
      }
      frontier.append(leafHash(receiptLeafData(row.hash)));
      roots.check(frontier, "receipts");
    }
    options.onProgress?.(frontier.size, until);
  }
  roots.unreached(lastSeq, "receipts", gap);
  const findings = roots.findings;
  return { ok: findings.length === 0, receipts: lastSeq, treeSize: head.size, checkpoints: roots.checkpoints, latestCheckpoint: roots.latest, findings };
}
