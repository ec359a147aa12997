/** archive_checkpoints (migration 0005_archive): per-stream progress and the staged batch. */
import type { Sql } from "../db/types";
import type { Batch, StreamName } from "./batch";

export interface StagedBatch {
  readonly first: number;
  readonly last: number;
  readonly key: string;
  readonly sha256Hex: string;
}

export interface Checkpoint {
  readonly stream: StreamName;
  readonly lastPosition: number;
  readonly lastKey: string | null;
  readonly archivedRecords: number;
  readonly archivedObjects: number;
  readonly pending: StagedBatch | null;
}

interface Row {
  stream: StreamName;
  last_position: string;
  last_key: string | null;
  archived_records: string;
  archived_objects: string;
  pending_first: string | null;
  pending_last: string | null;
  pending_key: string | null;
  pending_sha256: string | null;
}

function fromRow(row: Row): Checkpoint {
  return {
    stream: row.stream,
    lastPosition: Number(row.last_position),
    lastKey: row.last_key,
    archivedRecords: Number(row.archived_records),
    archivedObjects: Number(row.archived_objects),
    pending:
      row.pending_key !== null
        ? { first: Number(row.pending_first), last: Number(row.pending_last), key: row.pending_key, sha256Hex: row.pending_sha256 as string }
        : null,
  };
}

export async function loadCheckpoint(sql: Sql, stream: StreamName): Promise<Checkpoint> {
  await sql.query("INSERT INTO archive_checkpoints (stream) VALUES ($1) ON CONFLICT (stream) DO NOTHING", [stream]);
  const result = await sql.query<Row>("SELECT * FROM archive_checkpoints WHERE stream = $1", [stream]);
  return fromRow(result.rows[0]);
}

export async function listCheckpoints(sql: Sql): Promise<Checkpoint[]> {
  return (await sql.query<Row>("SELECT * FROM archive_checkpoints ORDER BY stream")).rows.map(fromRow);
}

/** Records the batch about to be uploaded (write-ahead), so a resumed run repeats exactly it. */
export async function stageBatch(sql: Sql, batch: Batch): Promise<void> {
  const result = await sql.query(
    "UPDATE archive_checkpoints SET pending_first = $2, pending_last = $3, pending_key = $4, pending_sha256 = $5, updated_at = now() " +
      "WHERE stream = $1 AND pending_key IS NULL AND last_position < $2",
    [batch.stream, batch.first, batch.last, batch.key, batch.sha256Hex],
  );
  if (result.rowCount !== 1) throw new Error(`archive_checkpoints: could not stage ${batch.key} for stream ${batch.stream} (another run?)`);
}

/** The batch is in object storage: advance the checkpoint past it and clear the staged batch. */
export async function completeBatch(sql: Sql, batch: Batch): Promise<void> {
  const result = await sql.query(
    "UPDATE archive_checkpoints SET last_position = $2, last_key = $3, archived_records = archived_records + $4, " +
      "archived_objects = archived_objects + 1, pending_first = NULL, pending_last = NULL, pending_key = NULL, " +
      "pending_sha256 = NULL, updated_at = now() WHERE stream = $1 AND pending_key = $3",
    [batch.stream, batch.last, batch.key, batch.records],
  );
  if (result.rowCount !== 1) throw new Error(`archive_checkpoints: ${batch.key} was not the staged batch of stream ${batch.stream}`);
}
