/** Knowledge snapshots: the parent chain, the current pointer, promotion and rollback. */
import { randomUUID } from "node:crypto";
import type { Sql } from "../db/types";
import { iso, isUuid, nextCursor, pageArgs, receipted, timed, type DomainContext } from "./context";
import { ConflictError, NotFoundError } from "./errors";
import { contentHash, knowledgeContentSchema } from "./knowledge";
import type { SnapshotService } from "./index";
import type { KnowledgeContent, ListQuery, Page, Snapshot, SnapshotChangeEvent, SnapshotStatus } from "./types";

interface SnapshotRow {
  id: string;
  parent_id: string | null;
  version: number;
  content: KnowledgeContent;
  content_hash: string;
  proposal_id: string | null;
  status: SnapshotStatus;
  created_at: Date;
  promoted_at: Date | null;
  seq: string | number;
}

export const SNAPSHOT_COLUMNS = "id, parent_id, version, content, content_hash, proposal_id, status, created_at, promoted_at, seq";

export function toSnapshot(row: SnapshotRow): Snapshot {
  return {
    id: row.id,
    parent_id: row.parent_id,
    version: Number(row.version),
    content: row.content,
    content_hash: row.content_hash,
    proposal_id: row.proposal_id,
    created_at: iso(row.created_at),
    promoted_at: row.promoted_at ? iso(row.promoted_at) : null,
    status: row.status,
  };
}

export async function findSnapshot(sql: Sql, id: string): Promise<Snapshot | undefined> {
  if (!isUuid(id)) return undefined;
  const { rows } = await sql.query<SnapshotRow>(`SELECT ${SNAPSHOT_COLUMNS} FROM knowledge_snapshots WHERE id = $1`, [id]);
  return rows[0] ? toSnapshot(rows[0]) : undefined;
}

export async function currentSnapshotId(sql: Sql, lock = false): Promise<string> {
  const { rows } = await sql.query<{ snapshot_id: string }>(
    `SELECT snapshot_id FROM knowledge_current WHERE singleton${lock ? " FOR UPDATE" : ""}`,
  );
  if (!rows[0]) throw new Error("no current knowledge snapshot: the domain was not initialised (call init())");
  return rows[0].snapshot_id;
}

/** Stores a candidate snapshot (child of parent) inside the caller's transaction. */
export async function insertCandidate(
  tx: Sql,
  parent: Snapshot,
  content: KnowledgeContent,
  proposalId: string,
  at: Date,
): Promise<Snapshot> {
  const id = randomUUID();
  const { rows } = await tx.query<SnapshotRow>(
    `INSERT INTO knowledge_snapshots (id, parent_id, version, content, content_hash, proposal_id, status, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'candidate', $7) RETURNING ${SNAPSHOT_COLUMNS}`,
    [id, parent.id, parent.version + 1, JSON.stringify(content), contentHash(content), proposalId, at],
  );
  return toSnapshot(rows[0]);
}

export interface SnapshotInternals extends SnapshotService {
  ensureGenesis(): Promise<void>;
}

export function createSnapshotService(ctx: DomainContext): SnapshotInternals {
  let cached: Snapshot | undefined;

  async function load(id: string): Promise<Snapshot> {
    const snapshot = await findSnapshot(ctx.db, id);
    if (!snapshot) throw new NotFoundError("snapshot", id);
    return snapshot;
  }

  async function publish(event: SnapshotChangeEvent): Promise<void> {
    // A replica that misses the broadcast still converges: its cache is only a hint, the pointer
    // in the database decides (see current()).
    await ctx.broadcaster?.publish(event).catch(() => undefined);
  }

  async function ensureGenesis(): Promise<void> {
    const parsed = knowledgeContentSchema.parse(ctx.genesisContent) as KnowledgeContent;
    await ctx.db.transaction(async (tx) => {
      await tx.query("LOCK TABLE knowledge_current IN EXCLUSIVE MODE");
      const existing = await tx.query("SELECT 1 FROM knowledge_current");
      if (existing.rows.length > 0) return;
      const id = randomUUID();
      const now = ctx.clock.now();
      await tx.query(
        `INSERT INTO knowledge_snapshots (id, parent_id, version, content, content_hash, status, created_at, promoted_at)
         VALUES ($1, NULL, 1, $2, $3, 'current', $4, $4)`,
        [id, JSON.stringify(parsed), contentHash(parsed), now],
      );
      await tx.query("INSERT INTO knowledge_current (snapshot_id, changed_at) VALUES ($1, $2)", [id, now]);
    });
  }

  async function current(): Promise<Snapshot> {
    // The cache saves the content read; the one-row pointer read keeps every replica correct
    // even when a broadcast is lost.
    const id = await currentSnapshotId(ctx.db);
    if (cached?.id === id) return cached;
    cached = await load(id);
    return cached;
  }

  async function list(query: ListQuery = {}): Promise<Page<Snapshot>> {
    const { limit, before } = pageArgs(query);
    const { rows } = await ctx.db.query<SnapshotRow>(
      `SELECT ${SNAPSHOT_COLUMNS} FROM knowledge_snapshots WHERE ($1::bigint IS NULL OR seq < $1) ORDER BY seq DESC LIMIT $2`,
      [before, limit],
    );
    return { items: rows.map(toSnapshot), next_cursor: nextCursor(rows.map((r) => ({ seq: Number(r.seq) })), limit) };
  }

  async function promote(id: string): Promise<Snapshot> {
    return timed(ctx, "promotion", async () => {
      const now = ctx.clock.now();
      const { value: promoted } = await receipted(ctx, async (tx) => {
        const currentId = await currentSnapshotId(tx, true);
        const snapshot = await findSnapshot(tx, id);
        if (!snapshot) throw new NotFoundError("snapshot", id);
        if (snapshot.id === currentId) throw new ConflictError(`snapshot ${id} is already current`, "already_current");
        if (!snapshot.proposal_id) throw new ConflictError(`snapshot ${id} has no proposal: only validated proposals are promoted`, "not_validated");
        const report = await tx.query<{ outcome: string; snapshot_id: string }>(
          "SELECT outcome, snapshot_id FROM validation_reports WHERE proposal_id = $1 ORDER BY seq DESC LIMIT 1",
          [snapshot.proposal_id],
        );
        const latest = report.rows[0];
        if (!latest || latest.outcome !== "passed" || latest.snapshot_id !== snapshot.id) {
          throw new ConflictError(
            `snapshot ${id}: its proposal's latest validation is ${latest ? latest.outcome : "missing"}; only a passed validation of this snapshot allows promotion`,
            "not_validated",
          );
        }
        if (snapshot.parent_id !== currentId) {
          throw new ConflictError(
            `snapshot ${id} was built on ${snapshot.parent_id}, but the current snapshot is ${currentId}: rebase and validate again`,
            "stale_parent",
          );
        }
        await tx.query("UPDATE knowledge_current SET snapshot_id = $1, changed_at = $2 WHERE singleton", [snapshot.id, now]);
        await tx.query("UPDATE knowledge_snapshots SET status = 'superseded' WHERE id = $1", [currentId]);
        await tx.query("UPDATE knowledge_snapshots SET status = 'current', promoted_at = $2 WHERE id = $1", [snapshot.id, now]);
        await tx.query("UPDATE proposals SET status = 'promoted' WHERE id = $1", [snapshot.proposal_id]);
        const transition = await tx.query<{ seq: string }>(
          "INSERT INTO snapshot_transitions (kind, from_snapshot_id, to_snapshot_id, at) VALUES ('promote', $1, $2, $3) RETURNING seq",
          [currentId, snapshot.id, now],
        );
        return {
          value: { ...snapshot, previous: currentId },
          receipt: {
            operation: "snapshot.promote",
            outcome: "success",
            evidence: { snapshot_id: snapshot.id, previous_snapshot_id: currentId, proposal_id: snapshot.proposal_id, version: snapshot.version, content_hash: snapshot.content_hash },
            sector: "generic",
          },
          link: { table: "snapshot_transitions", seq: Number(transition.rows[0].seq) },
        };
      });
      cached = undefined;
      ctx.metrics.inc("knhk_snapshot_promotions_total");
      await publish({ kind: "promote", snapshot_id: promoted.id, previous_snapshot_id: promoted.previous, version: promoted.version });
      return load(promoted.id);
    });
  }

  async function rollback(): Promise<Snapshot> {
    return timed(ctx, "rollback", async () => {
      const now = ctx.clock.now();
      const { value: { target, from } } = await receipted(ctx, async (tx) => {
        const currentId = await currentSnapshotId(tx, true);
        const currentSnapshot = await findSnapshot(tx, currentId);
        if (!currentSnapshot) throw new Error(`current snapshot ${currentId} is missing`);
        if (!currentSnapshot.parent_id) throw new ConflictError("the current snapshot is the genesis snapshot: nothing to roll back to", "at_genesis");
        const parent = await findSnapshot(tx, currentSnapshot.parent_id);
        if (!parent) throw new Error(`parent ${currentSnapshot.parent_id} of the current snapshot is missing`);
        await tx.query("UPDATE knowledge_current SET snapshot_id = $1, changed_at = $2 WHERE singleton", [parent.id, now]);
        await tx.query("UPDATE knowledge_snapshots SET status = 'rolled_back' WHERE id = $1", [currentId]);
        await tx.query("UPDATE knowledge_snapshots SET status = 'current' WHERE id = $1", [parent.id]);
        const transition = await tx.query<{ seq: string }>(
          "INSERT INTO snapshot_transitions (kind, from_snapshot_id, to_snapshot_id, at) VALUES ('rollback', $1, $2, $3) RETURNING seq",
          [currentId, parent.id, now],
        );
        return {
          value: { target: parent, from: currentSnapshot },
          receipt: {
            operation: "snapshot.rollback",
            outcome: "success",
            evidence: { snapshot_id: parent.id, rolled_back_snapshot_id: currentSnapshot.id, version: parent.version, content_hash: parent.content_hash },
            sector: "generic",
          },
          link: { table: "snapshot_transitions", seq: Number(transition.rows[0].seq) },
        };
      });
      cached = undefined;
      ctx.metrics.inc("knhk_snapshot_rollbacks_total");
      await publish({ kind: "rollback", snapshot_id: target.id, previous_snapshot_id: from.id, version: target.version });
      return load(target.id);
    });
  }

  return {
    ensureGenesis,
    list,
    get: load,
    current,
    promote,
    rollback,
    invalidate: () => {
      cached = undefined;
    },
  };
}
