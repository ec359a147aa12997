/**
 * The three archived streams and how their rows are read: in position order (receipts.seq,
 * audit_log.id, observations.seq), only as a gap-free prefix of what is exportable now, so a
 * checkpoint "everything up to position P is archived" never skips a row.
 *
 * - receipts: every committed receipt. Receipts commit in seq order (the chain head row lock
 *   serialises batches), so a visible seq implies every lower seq is visible.
 * - audit: rows whose occurred_at is older than the settle horizon (default 5 minutes). audit_log ids
 *   come from a sequence, so a slow transaction could commit a lower id after a higher one; the
 *   horizon gives such a transaction that long to commit (audit appends are single statements).
 * - observations: rows whose created_at is older than KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS.
 *
 * jsonb columns are embedded as Postgres renders them (exact numbers), timestamps in ISO 8601 UTC
 * with microseconds (audit, observations) or milliseconds (receipts, as hashed).
 */
import { auditRecordLine } from "../audit/tree";
import type { Sql } from "../db/types";
import { exportReceipts } from "../receipts/store";
import type { ArchiveRecord, StreamName } from "./batch";
import { ISO_US, jsonLine } from "./record-format";

/** Prefixes as in infra/render/archive.ts LEDGER_PREFIXES / DATA_PREFIXES (a test holds them equal). */
export const ARCHIVE_PREFIXES = {
  receipts: "receipts/",
  audit: "audit/",
  observations: "observations/",
  signingKeys: "receipts/signing-keys/",
  /** The receipt log: tiles by their C2SP paths (tile/...) and one object per checkpoint (checkpoints/<size>). */
  receiptLog: "receipts/tlog/",
  /** The audit log's tree, in the same layout. */
  auditLog: "audit/tlog/",
} as const;

export interface Horizon {
  /** Audit rows that occurred before this are settled. */
  readonly auditBefore: Date;
  /** Observations created before this are archived. */
  readonly observationsBefore: Date;
}

export interface StreamSource {
  readonly name: StreamName;
  readonly bucket: "ledger" | "data";
  readonly prefix: string;
  /** Up to `limit` exportable records after position `after`, in order. */
  next(sql: Sql, after: number, limit: number, horizon: Horizon): Promise<ArchiveRecord[]>;
  /** Exactly the records first..last (a staged batch, read again on resume). */
  range(sql: Sql, first: number, last: number): Promise<ArchiveRecord[]>;
  /** How many records are exportable after `after` (for progress lines). */
  count(sql: Sql, after: number, horizon: Horizon): Promise<number>;
}

/** The leading rows that satisfy `ready`: stops at the first one that does not. */
function readyPrefix<R>(rows: R[], ready: (row: R) => boolean): R[] {
  const stop = rows.findIndex((row) => !ready(row));
  return stop === -1 ? rows : rows.slice(0, stop);
}

const receipts: StreamSource = {
  name: "receipts",
  bucket: "ledger",
  prefix: ARCHIVE_PREFIXES.receipts,
  async next(sql, after, limit) {
    const out: ArchiveRecord[] = [];
    for await (const receipt of exportReceipts(sql, { afterSeq: after, batch: limit })) {
      out.push({ position: receipt.seq, timestamp: receipt.created_at, line: JSON.stringify(receipt) });
      if (out.length === limit) break;
    }
    return out;
  },
  async range(sql, first, last) {
    // Re-reading a staged range ignores the horizon: those rows were exportable when staged.
    const out = await receipts.next(sql, first - 1, last - first + 1, { auditBefore: new Date(0), observationsBefore: new Date(0) });
    return out.filter((r) => r.position <= last);
  },
  async count(sql, after) {
    // seq has no gaps (a gap is a chain break), so the head tells the count without a scan.
    const result = await sql.query<{ head: string | null }>("SELECT max(seq) AS head FROM receipts");
    return Math.max(0, Number(result.rows[0].head ?? 0) - after);
  },
};

/**
 * A stream over a table whose rows are read in `key` order and become exportable once
 * `timeColumn` is older than the stream's horizon (`$3` of every query).
 */
function horizonStream<R extends { ready: boolean }>(spec: {
  readonly name: StreamName;
  readonly bucket: "ledger" | "data";
  readonly prefix: string;
  readonly table: string;
  readonly key: string;
  readonly timeColumn: string;
  /** Column list of the SELECT. */
  readonly columns: string;
  horizonOf(horizon: Horizon): Date;
  toRecord(row: R): ArchiveRecord;
}): StreamSource {
  const select = `SELECT ${spec.columns}, ${spec.timeColumn} < $3 AS ready FROM ${spec.table}`;
  return {
    name: spec.name,
    bucket: spec.bucket,
    prefix: spec.prefix,
    async next(sql, after, limit, horizon) {
      const rows = (await sql.query<R>(`${select} WHERE ${spec.key} > $1 ORDER BY ${spec.key} LIMIT $2`, [after, limit, spec.horizonOf(horizon)])).rows;
      return readyPrefix(rows, (r) => r.ready).map(spec.toRecord);
    },
    async range(sql, first, last) {
      // Re-reading a staged range ignores the horizon: those rows were exportable when staged.
      const rows = await sql.query<R>(`${select} WHERE ${spec.key} BETWEEN $1 AND $2 ORDER BY ${spec.key}`, [first, last, "infinity"]);
      return rows.rows.map(spec.toRecord);
    },
    async count(sql, after, horizon) {
      const result = await sql.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${spec.table} WHERE ${spec.key} > $1 AND ${spec.timeColumn} < $2`,
        [after, spec.horizonOf(horizon)],
      );
      return Number(result.rows[0].n);
    },
  };
}

interface AuditRow {
  id: string;
  occurred_at: string;
  actor: string;
  action: string;
  target: string;
  outcome: string | null;
  details: string;
  ready: boolean;
}

const audit = horizonStream<AuditRow>({
  name: "audit",
  bucket: "ledger",
  prefix: ARCHIVE_PREFIXES.audit,
  table: "audit_log",
  key: "id",
  timeColumn: "occurred_at",
  columns: `id, ${ISO_US("occurred_at")} AS occurred_at, actor, action, target, outcome, details::text AS details`,
  horizonOf: (h) => h.auditBefore,
  toRecord(row) {
    return { position: Number(row.id), timestamp: row.occurred_at, line: auditRecordLine(row) };
  },
});

interface ObservationRow {
  seq: string;
  id: string;
  event_type: string;
  value: string;
  sector: string;
  metadata: string;
  observed_at: string;
  created_at: string;
  snapshot_id: string;
  flagged: boolean;
  guards: string;
  hot_path_ticks: number;
  batch_id: string | null;
  batch_index: number | null;
  ready: boolean;
}

const observations = horizonStream<ObservationRow>({
  name: "observations",
  bucket: "data",
  prefix: ARCHIVE_PREFIXES.observations,
  table: "observations",
  key: "seq",
  timeColumn: "created_at",
  columns:
    "seq, id::text AS id, event_type, value::text AS value, sector, metadata::text AS metadata, " +
    `${ISO_US("observed_at")} AS observed_at, ${ISO_US("created_at")} AS created_at, snapshot_id::text AS snapshot_id, ` +
    "flagged, guards::text AS guards, hot_path_ticks, batch_id::text AS batch_id, batch_index",
  horizonOf: (h) => h.observationsBefore,
  toRecord(row) {
    const seq = Number(row.seq);
    return {
      position: seq,
      timestamp: row.created_at,
      line: jsonLine(
        {
          seq,
          id: row.id,
          event_type: row.event_type,
          sector: row.sector,
          observed_at: row.observed_at,
          created_at: row.created_at,
          snapshot_id: row.snapshot_id,
          flagged: row.flagged,
          hot_path_ticks: Number(row.hot_path_ticks),
          // A batch member's position: with the batch's receipt it proves the observation after archiving.
          ...(row.batch_id ? { batch_id: row.batch_id, batch_index: Number(row.batch_index) } : {}),
        },
        { value: row.value, metadata: row.metadata, guards: row.guards },
      ),
    };
  },
});

export const STREAMS: Readonly<Record<StreamName, StreamSource>> = { receipts, audit, observations };
export const STREAM_NAMES: readonly StreamName[] = ["receipts", "audit", "observations"];
