/**
 * Verification of the audit log against its signed checkpoints: the tree is replayed from the
 * audit entries in leaf order, each entry's leaf hash compared with the one stored when the tree
 * took it, and the replayed root at every checkpointed size, at the stored head and at a
 * checkpoint an auditor remembers compared with what was signed. Findings, each naming the size:
 * - changed_entry: an entry's fields no longer give the leaf hash stored for it (names the id);
 * - missing_entry: a leaf whose entry is gone, or a leaf index with no entry recorded;
 * - rewritten / truncated / fork / bad_signature: as for the receipt log.
 */
import type { Sql } from "../db/types";
import { leafHash } from "../receipts/merkle";
import { readTreeHead, storedHashReader } from "../receipts/tlog/store";
import { storedHashIndex, TreeFrontier } from "../receipts/tlog/tree";
import { SignedRoots, type LogFinding, type VerifyLogOptions } from "../receipts/tlog/verify-log";
import { AUDIT_TREE, auditLeafData, readAuditLeaves } from "./tree";

export interface AuditLogReport {
  readonly ok: boolean;
  /** Leaves recorded in audit_tree_leaves. */
  readonly leaves: number;
  readonly treeSize: number;
  readonly checkpoints: number;
  readonly latestCheckpoint: number | null;
  readonly findings: LogFinding[];
}

export async function verifyAuditLog(sql: Sql, options: VerifyLogOptions = {}): Promise<AuditLogReport> {
  const page = options.page ?? 10_000;
  const head = await readTreeHead(sql, false, AUDIT_TREE);
  const roots = await SignedRoots.collect(sql, AUDIT_TREE, head, options.remembered);
  const { rows: countRows } = await sql.query<{ n: string }>("SELECT coalesce(max(leaf_index) + 1, 0)::text AS n FROM audit_tree_leaves");
  const leaves = Number(countRows[0].n);
  const until = roots.until;
  const storedHashes = storedHashReader(sql, AUDIT_TREE);
  const frontier = TreeFrontier.empty();
  let gap: number | undefined;
  while (roots.pending && frontier.size < Math.min(until, leaves) && gap === undefined) {
    const batch = await readAuditLeaves(sql, frontier.size, until, page);
    if (batch.length === 0) break;
    // The leaf hashes stored when the tree took these entries (absent past the stored head).
    const stored = await storedHashes(batch.filter((l) => l.leafIndex < head.size).map((l) => storedHashIndex(0, l.leafIndex)));
    for (const [i, leaf] of batch.entries()) {
      if (leaf.leafIndex !== frontier.size || leaf.entry === null) {
        gap = frontier.size;
        const detail = leaf.leafIndex !== frontier.size ? `no audit entry is recorded for leaf ${gap} (the next leaf is ${leaf.leafIndex})` : `audit entry ${leaf.auditId} (leaf ${gap}) is gone`;
        roots.findings.push({ kind: "missing_entry", size: gap + 1, detail });
        break;
      }
      const hash = leafHash(auditLeafData(leaf.entry));
      if (i < stored.length && !stored[i].equals(hash)) {
        roots.findings.push({ kind: "changed_entry", size: frontier.size + 1, detail: `audit entry ${leaf.auditId} (leaf ${frontier.size}) does not give the leaf hash stored when the tree took it` });
      }
      frontier.append(hash);
      roots.check(frontier, "audit entries");
    }
    options.onProgress?.(frontier.size, until);
  }
  roots.unreached(leaves, "audit entries", gap === undefined ? undefined : gap + 1);
  const findings = roots.findings;
  return { ok: findings.length === 0, leaves, treeSize: head.size, checkpoints: roots.checkpoints, latestCheckpoint: roots.latest, findings };
}
