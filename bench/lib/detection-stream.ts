/**
 * The benchmarks' detection stream, inserted by SQL as the owner: observations spread evenly over
 * `seconds` from `backSeconds` ago, cycling through 5 event types, 5 sectors and 2 regions, in
 * INSERT statements of at most `chunk` rows (each fires the per-second count triggers once).
 *
 *   await insertDetectionStream(pg.url(database), { snapshotId, backSeconds: 660, seconds: 780, count: 15_600 });
 */
import { createPostgresDatabase } from "../../app/src/db/postgres";

export interface DetectionStream {
  readonly snapshotId: string;
  /** Where the stream starts, in seconds before now. */
  readonly backSeconds: number;
  /** How long it runs from there (past now when it is longer than backSeconds). */
  readonly seconds: number;
  readonly count: number;
  /** Rows per INSERT statement; default 200,000. */
  readonly chunk?: number;
}

export async function insertDetectionStream(ownerUrl: string, stream: DetectionStream): Promise<void> {
  const chunk = stream.chunk ?? 200_000;
  const owner = createPostgresDatabase({ connectionString: ownerUrl, max: 1 });
  try {
    // One start instant for every chunk, so the chunks tile the same seconds.
    const { rows } = await owner.query<{ start: string }>("SELECT (now() - make_interval(secs => $1))::text AS start", [stream.backSeconds]);
    for (let first = 1; first <= stream.count; first += chunk) {
      await owner.query(
        `INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks)
         SELECT gen_random_uuid(),
                (ARRAY['api.call','api.error','payment.authorised','sensor.reading','shipment.scanned'])[1 + i % 5],
                to_jsonb(i % 1000),
                (ARRAY['finance','generic','healthcare','manufacturing','logistics'])[1 + (i / 5) % 5],
                jsonb_build_object('region', (ARRAY['eu','us'])[1 + i % 2], 'source', 'bench'),
                $1::timestamptz + make_interval(secs => $2::float8 * i / $3), now(), $4, false, '[]'::jsonb, 3
         FROM generate_series($5::bigint, $6::bigint) AS i`,
        [rows[0].start, stream.seconds, stream.count, stream.snapshotId, first, Math.min(stream.count, first + chunk - 1)],
      );
    }
    await owner.query("ANALYZE observations");
    await owner.query("ANALYZE observation_counts");
  } finally {
    await owner.close();
  }
}
