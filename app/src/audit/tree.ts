/**
 * The audit log's Merkle tree (migration 0013): the receipt log's structure (RFC 6962 hashing,
 * stored hashes, signed C2SP checkpoints) over the audit entries, so a signed checkpoint commits
 * to every entry before it and an altered, deleted or reordered entry is found by verify-log.
 *
 * Order: entries commit out of id order, so the tree takes an entry only once its transaction is
 * older than every transaction still in progress, in (xact, id) order after the last it took
 * (see the migration); audit_tree_leaves records which entry each leaf is.
 *
 * Leaf data: the entry's line in the archive's audit objects (audit/*.ndjson), UTF-8:
 *   {"id":<id>,"occurred_at":"<UTC, microseconds>","actor":…,"action":…,"target":…,"outcome":…|null,"details":<the jsonb as PostgreSQL prints it>}
 * every field as stored, so changing any of them changes the leaf, and an auditor holding the
 * archived line holds the leaf.
 */
import { ISO_US, jsonLine } from "../archive/record-format";
import type { Database, Sql } from "../db/types";
import { leafHash } from "../receipts/merkle";
import { checkMaxLeaves, extendTree, readTreeHead, TREE_ADVANCE_BATCH, type AdvanceResult, type TreeTables } from "../receipts/tlog/store";

export const AUDIT_TREE: TreeTables = { hashes: "audit_tree_hash_runs", head: "audit_tree_head", checkpoints: "audit_tree_checkpoints" };

/** The audit log's origin (and checkpoint key name): the receipt log's, with "/audit". */
export function auditLogOrigin(receiptLogOrigin: string): string {
  return `${receiptLogOrigin}/audit`;
}

/** How often the service's audit tree catches up without a receipt batch to prompt it. */
export const AUDIT_TREE_CATCH_UP_MS = 1000;

/** An audit entry as its leaf data reads it: every column as text, as stored. */
export interface AuditLeafRow {
  readonly id: string;
  readonly occurred_at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly outcome: string | null;
  readonly details: string;
}

/** The columns of audit_log (as `a`) that make up an entry's leaf data. */
export const AUDIT_LEAF_COLUMNS = `a.id::text AS id, ${ISO_US("a.occurred_at")} AS occurred_at, a.actor, a.action, a.target, a.outcome, a.details::text AS details`;

/** The entry's archive line (without newline). */
export function auditRecordLine(row: AuditLeafRow): string {
  return jsonLine({ id: Number(row.id), occurred_at: row.occurred_at, actor: row.actor, action: row.action, target: row.target, outcome: row.outcome }, { details: row.details });
}

export function auditLeafData(row: AuditLeafRow): Buffer {
  return Buffer.from(auditRecordLine(row), "utf8");
}

/**
 * Appends up to `maxLeaves` settled audit entries after the tree's position (one transaction,
 * under the head's row lock, so concurrent writers queue).
 */
export async function advanceAuditTree(db: Database, maxLeaves = TREE_ADVANCE_BATCH): Promise<AdvanceResult> {
  checkMaxLeaves(maxLeaves);
  return db.transaction(async (tx) => {
    const head = await readTreeHead(tx, true, AUDIT_TREE);
    const { rows: position } = await tx.query<{ last_xact: string; last_id: string }>("SELECT last_xact::text AS last_xact, last_id::text AS last_id FROM audit_tree_head WHERE singleton");
    const { rows } = await tx.query<AuditLeafRow & { xact: string }>(
      `SELECT ${AUDIT_LEAF_COLUMNS}, a.xact::text AS xact FROM audit_log a
       WHERE (a.xact, a.id) > ($1::xid8, $2::bigint) AND a.xact < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY a.xact, a.id LIMIT $3`,
      [position[0].last_xact, position[0].last_id, maxLeaves],
    );
    if (rows.length === 0) return { from: head.size, to: head.size, root: head.root };
    const result = await extendTree(tx, AUDIT_TREE, head, rows.map((r) => leafHash(auditLeafData(r))));
    await tx.query("INSERT INTO audit_tree_leaves (leaf_index, audit_id) SELECT $1::bigint + i - 1, id FROM unnest($2::bigint[]) WITH ORDINALITY AS t(id, i)", [head.size, rows.map((r) => r.id)]);
    const last = rows[rows.length - 1];
    await tx.query("UPDATE audit_tree_head SET last_xact = $1::xid8, last_id = $2 WHERE singleton", [last.xact, last.id]);
    return result;
  });
}

/** Leaves of the audit tree from `from` (0-based), with their entries (null: the entry is gone). */
export async function readAuditLeaves(sql: Sql, from: number, until: number, limit: number): Promise<Array<{ leafIndex: number; auditId: string; entry: AuditLeafRow | null }>> {
  const { rows } = await sql.query<{ leaf_index: string; audit_id: string } & { [K in keyof AuditLeafRow]: AuditLeafRow[K] | null }>(
    `SELECT l.leaf_index::text AS leaf_index, l.audit_id::text AS audit_id, ${AUDIT_LEAF_COLUMNS}
     FROM audit_tree_leaves l LEFT JOIN audit_log a ON a.id = l.audit_id
     WHERE l.leaf_index >= $1 AND l.leaf_index < $2 ORDER BY l.leaf_index LIMIT $3`,
    [from, until, limit],
  );
  return rows.map((r) => ({ leafIndex: Number(r.leaf_index), auditId: r.audit_id, entry: r.id === null ? null : (r as AuditLeafRow) }));
}
