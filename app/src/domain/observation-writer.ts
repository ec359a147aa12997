/**
 * The write path of ingest: an ingest request's observations (one, or a batch's) and its batch
 * row are written inside the receipt ledger's batch transaction, next to the request's receipt
 * (LedgerPort.appendWith). So each request waits for one commit, shared with every concurrent
 * request in the same ledger batch (one WAL flush), and its rows are durable exactly when their
 * receipt is: no outbox entry, no window in which a row exists without its receipt. One
 * statement per ledger batch stores the rows of all its requests. A request whose rows fail on
 * their own (a constraint) fails alone: the ledger's group commit retries the others without it.
 */
import type { Sql } from "../db/types";
import type { CompanionWriter } from "./ports";
import type { GuardOutcome, JsonObject, JsonValue, Sector } from "./types";

export interface ObservationRecord {
  readonly id: string;
  readonly event_type: string;
  readonly value: JsonValue;
  readonly sector: Sector;
  readonly metadata: JsonObject;
  readonly observed_at: Date;
  readonly created_at: Date;
  readonly snapshot_id: string;
  readonly flagged: boolean;
  readonly guards: readonly GuardOutcome[];
  readonly hot_path_ticks: number;
}

/** One ingest request's rows. */
export interface IngestUnit {
  readonly records: readonly ObservationRecord[];
  /** Present for a batch: its id and the Merkle root over its records' leaves, in order. */
  readonly batch?: { readonly id: string; readonly merkleRoot: string; readonly createdAt: Date };
}

/** `seq` of each record, in the unit's order. */
export type StoredSeqs = readonly number[];

const WRITE_UNITS = `
WITH batch_rows AS (
  INSERT INTO observation_batches (id, item_count, merkle_root, created_at, receipt_seq)
  SELECT * FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::timestamptz[], $5::bigint[])
  RETURNING 1
), inserted AS (
  INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks, batch_id, batch_index, receipt_seq)
  SELECT * FROM unnest($6::uuid[], $7::text[], $8::jsonb[], $9::text[], $10::jsonb[], $11::timestamptz[], $12::timestamptz[],
                       $13::uuid[], $14::boolean[], $15::jsonb[], $16::integer[], $17::uuid[], $18::integer[], $19::bigint[])
  RETURNING seq, id
)
SELECT seq, id::text AS id, (SELECT count(*) FROM batch_rows)::int AS batches FROM inserted`;

interface WrittenRow {
  seq: string | number;
  id: string;
  batches: number;
}

export function createObservationWriter(deps: { readonly onCommit?: (observations: number) => void } = {}): CompanionWriter<IngestUnit, StoredSeqs> {
  return {
    rows: (unit) => unit.records.length + (unit.batch ? 1 : 0),
    async write(tx: Sql, units, receipts) {
      const batched = units.flatMap((u, i) => (u.batch ? [{ batch: u.batch, size: u.records.length, receiptSeq: receipts[i].seq }] : []));
      const records = units.flatMap((u, i) => u.records.map((r, index) => ({ r, batchId: u.batch?.id ?? null, index: u.batch ? index : null, receiptSeq: receipts[i].seq })));
      const iso = (d: Date) => d.toISOString();
      const { rows } = await tx.query<WrittenRow>(WRITE_UNITS, [
        batched.map((b) => b.batch.id),
        batched.map((b) => b.size),
        batched.map((b) => b.batch.merkleRoot),
        batched.map((b) => iso(b.batch.createdAt)),
        batched.map((b) => b.receiptSeq),
        records.map((x) => x.r.id),
        records.map((x) => x.r.event_type),
        records.map((x) => JSON.stringify(x.r.value)),
        records.map((x) => x.r.sector),
        records.map((x) => JSON.stringify(x.r.metadata)),
        records.map((x) => iso(x.r.observed_at)),
        records.map((x) => iso(x.r.created_at)),
        records.map((x) => x.r.snapshot_id),
        records.map((x) => x.r.flagged),
        records.map((x) => JSON.stringify(x.r.guards)),
        records.map((x) => x.r.hot_path_ticks),
        records.map((x) => x.batchId),
        records.map((x) => x.index),
        records.map((x) => x.receiptSeq),
      ]);
      if (rows.length !== records.length || (rows[0]?.batches ?? 0) !== batched.length) {
        throw new Error(`ingest write stored ${rows.length} observations and ${rows[0]?.batches ?? 0} batches for ${records.length} and ${batched.length}`);
      }
      const seqById = new Map(rows.map((row) => [row.id, Number(row.seq)]));
      deps.onCommit?.(records.length);
      return units.map((u) => u.records.map((r) => seqById.get(r.id)!));
    },
  };
}
