/**
 * The write path of ingest: an ingest request's observations (one, or a batch's) and its batch
 * row are written inside the receipt ledger's batch transaction, next to the request's receipt
 * (LedgerPort.appendWith). So each request waits for one commit, shared with every concurrent
 * request in the same ledger batch (one WAL flush), and its rows are durable exactly when their
 * receipt is: no outbox entry, no window in which a row exists without its receipt. The rows of
 * all the batch's requests are CTEs of the batch's one INSERT statement. A request whose rows fail on
 * their own (a constraint) fails alone: the ledger's group commit retries the others without it.
 */
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

export function createObservationWriter(deps: { readonly onCommit?: (observations: number) => void } = {}): CompanionWriter<IngestUnit, StoredSeqs> {
  return {
    rows: (unit) => unit.records.length + (unit.batch ? 1 : 0),
    statement(units, receipts, p, param) {
      const batched = units.flatMap((u, i) => (u.batch ? [{ batch: u.batch, size: u.records.length, receiptSeq: receipts[i].seq }] : []));
      const records = units.flatMap((u, i) => u.records.map((r, index) => ({ r, batchId: u.batch?.id ?? null, index: u.batch ? index : null, receiptSeq: receipts[i].seq })));
      const iso = (d: Date) => d.toISOString();
      const column = (values: unknown[], type: string) => `${param(values)}::${type}[]`;
      const ctes =
        `${p}batches AS (INSERT INTO observation_batches (id, item_count, merkle_root, created_at, receipt_seq) SELECT * FROM unnest(` +
        [
          column(batched.map((b) => b.batch.id), "uuid"),
          column(batched.map((b) => b.size), "integer"),
          column(batched.map((b) => b.batch.merkleRoot), "text"),
          column(batched.map((b) => iso(b.batch.createdAt)), "timestamptz"),
          column(batched.map((b) => b.receiptSeq), "bigint"),
        ].join(", ") +
        ") RETURNING 1), " +
        `${p}rows AS (INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks, batch_id, batch_index, receipt_seq) SELECT * FROM unnest(` +
        [
          column(records.map((x) => x.r.id), "uuid"),
          column(records.map((x) => x.r.event_type), "text"),
          column(records.map((x) => JSON.stringify(x.r.value)), "jsonb"),
          column(records.map((x) => x.r.sector), "text"),
          column(records.map((x) => JSON.stringify(x.r.metadata)), "jsonb"),
          column(records.map((x) => iso(x.r.observed_at)), "timestamptz"),
          column(records.map((x) => iso(x.r.created_at)), "timestamptz"),
          column(records.map((x) => x.r.snapshot_id), "uuid"),
          column(records.map((x) => x.r.flagged), "boolean"),
          column(records.map((x) => JSON.stringify(x.r.guards)), "jsonb"),
          column(records.map((x) => x.r.hot_path_ticks), "integer"),
          column(records.map((x) => x.batchId), "uuid"),
          column(records.map((x) => x.index), "integer"),
          column(records.map((x) => x.receiptSeq), "bigint"),
        ].join(", ") +
        ") RETURNING seq, id)";
      const result = `json_build_object('batches', (SELECT count(*) FROM ${p}batches), 'rows', coalesce((SELECT json_agg(json_build_array(id, seq)) FROM ${p}rows), '[]'::json))`;
      return { ctes, result };
    },
    results(value, units) {
      const written = value as { batches: number; rows: [string, number][] };
      const records = units.reduce((n, u) => n + u.records.length, 0);
      const batches = units.filter((u) => u.batch).length;
      if (written.rows.length !== records || written.batches !== batches) {
        throw new Error(`ingest write stored ${written.rows.length} observations and ${written.batches} batches for ${records} and ${batches}`);
      }
      const seqById = new Map(written.rows.map(([id, seq]) => [id, Number(seq)]));
      deps.onCommit?.(records);
      return units.map((u) => u.records.map((r) => seqById.get(r.id)!));
    },
  };
}
