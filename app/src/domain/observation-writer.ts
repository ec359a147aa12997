/**
 * The write path of ingest, group-committed: concurrent ingest requests (a single observation or
 * a batch) queue up and one writer loop stores up to MAX_UNITS_PER_COMMIT of them with ONE
 * statement in one transaction: their observations, their batch rows and their receipts' outbox
 * entries, so every request that shares the commit shares its WAL flush. A request resolves only
 * once its commit is durable; its receipt is then appended to the chain by the ledger (itself
 * group-committed). A unit that fails on its own (a constraint) fails alone: the group commit
 * retries the others without it.
 */
import { createGroupCommit, type GroupCommit } from "../db/group-commit";
import type { Database } from "../db/types";
import type { LedgerPort, ReceiptEntry, StagedEntry } from "./ports";
import type { GuardOutcome, JsonObject, JsonValue, Sector } from "./types";

/** Ingest requests per commit: with batches of up to 1,000 observations, up to 32,000 rows. */
export const MAX_UNITS_PER_COMMIT = 32;

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

/** One ingest request's rows and its receipt. */
export interface IngestUnit {
  readonly records: readonly ObservationRecord[];
  /** Present for a batch: its id and the Merkle root over its records' leaves, in order. */
  readonly batch?: { readonly id: string; readonly merkleRoot: string; readonly createdAt: Date };
  readonly receipt: ReceiptEntry;
}

export interface StoredUnit {
  /** `seq` of each record, in the unit's order. */
  readonly seqs: readonly number[];
  readonly batchSeq?: number;
  /** The receipt in the outbox, committed with the rows: append it next. */
  readonly staged: StagedEntry;
}

export interface ObservationWriter {
  write(unit: IngestUnit): Promise<StoredUnit>;
  drained(): Promise<void>;
}

const WRITE_UNITS = `
WITH batch_rows AS (
  INSERT INTO observation_batches (id, item_count, merkle_root, created_at)
  SELECT * FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::timestamptz[])
  RETURNING seq, id
), staged AS (
  INSERT INTO receipt_outbox (id, owner, operation, outcome, evidence, sector, link_table, link_seq)
  SELECT s.id, $5::uuid, s.operation, s.outcome, s.evidence, s.sector,
         CASE WHEN b.seq IS NULL THEN NULL ELSE 'observation_batches' END, b.seq
  FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::uuid[])
       AS s(id, operation, outcome, evidence, sector, batch_id)
  LEFT JOIN batch_rows b ON b.id = s.batch_id
  RETURNING 1
), inserted AS (
  INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks, batch_id, batch_index)
  SELECT * FROM unnest($12::uuid[], $13::text[], $14::jsonb[], $15::text[], $16::jsonb[], $17::timestamptz[], $18::timestamptz[],
                       $19::uuid[], $20::boolean[], $21::jsonb[], $22::integer[], $23::uuid[], $24::integer[])
  RETURNING seq, id
)
SELECT 'o' AS kind, seq, id::text AS id, (SELECT count(*) FROM staged)::int AS staged FROM inserted
UNION ALL
SELECT 'b', seq, id::text, (SELECT count(*) FROM staged)::int FROM batch_rows`;

interface WrittenRow {
  kind: "o" | "b";
  seq: string | number;
  id: string;
  staged: number;
}

export function createObservationWriter(deps: {
  readonly db: Database;
  readonly ledger: LedgerPort;
  /** Called with the observations of each commit. */
  readonly onCommit?: (observations: number) => void;
}): ObservationWriter {
  const commits: GroupCommit<IngestUnit, StoredUnit> = createGroupCommit(MAX_UNITS_PER_COMMIT, async (take) => {
    const units = take();
    const staging = await deps.ledger.stagingRows(units.map((u) => u.receipt));
    const batches = units.flatMap((u) => (u.batch ? [u.batch] : []));
    const records = units.flatMap((u) => u.records.map((r, index) => ({ r, batchId: u.batch?.id ?? null, index: u.batch ? index : null })));
    const iso = (d: Date) => d.toISOString();
    const { rows } = await deps.db.query<WrittenRow>(WRITE_UNITS, [
      batches.map((b) => b.id),
      units.flatMap((u) => (u.batch ? [u.records.length] : [])),
      batches.map((b) => b.merkleRoot),
      batches.map((b) => iso(b.createdAt)),
      staging.owner,
      staging.ids,
      staging.operations,
      staging.outcomes,
      staging.evidence,
      staging.sectors,
      units.map((u) => u.batch?.id ?? null),
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
    ]);
    const seqById = new Map<string, number>();
    for (const row of rows) seqById.set(row.id, Number(row.seq));
    const staged = rows[0]?.staged ?? 0;
    if (staged !== units.length || rows.length !== records.length + batches.length) {
      throw new Error(`ingest commit stored ${rows.length} rows and ${staged} receipts for ${records.length + batches.length} rows and ${units.length} receipts`);
    }
    deps.onCommit?.(records.length);
    return units.map((u, i): StoredUnit => {
      const batchSeq = u.batch ? seqById.get(u.batch.id) : undefined;
      return {
        seqs: u.records.map((r) => seqById.get(r.id)!),
        batchSeq,
        staged: staging.staged(i, batchSeq === undefined ? undefined : { table: "observation_batches", seq: batchSeq }),
      };
    });
  });
  return { write: (unit) => commits.submit(unit), drained: () => commits.drained() };
}
