/**
 * How verify-chain cuts the chain into ranges for its threads. Ranges are counted in receipts,
 * not in seq numbers: the planner reads the seq of every GRANULE-th receipt (an index-only scan),
 * so a gap in seq (a deleted receipt, or one moved far past the head) costs nothing and every
 * range holds at most `pageSize` receipts. Ranges shrink towards the end of the chain
 * (guided scheduling), so the threads finish together instead of one finishing a long last range.
 */
import type { Sql } from "../db/types";
import { PIPELINE, type SeqRange } from "./verify-threads";

/** Receipts per planned unit; a range is one or more of them. */
const GRANULE = 64;
/** Receipts whose boundaries one planning query reads. */
const PLAN_ROWS = 65_536;

// The seq of every $3-th receipt after $1 (and of the last one), among at most $2 receipts.
const BOUNDARIES =
  "SELECT seq::text AS seq, n::int AS n FROM (" +
  "SELECT seq, row_number() OVER w AS n, lead(seq) OVER w AS next FROM " +
  "(SELECT seq FROM receipts WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint) r WINDOW w AS (ORDER BY seq)" +
  ") s WHERE n % $3::bigint = 0 OR next IS NULL ORDER BY n";

export interface PlannedRange extends SeqRange {
  /** Receipts in the range when it was planned. */
  readonly receipts: number;
}

/**
 * Granules in the next range: an even share of what remains over 2 x PIPELINE x `verifiers`
 * (each verifier holds up to PIPELINE ranges, so the last ones it holds are small), at least one
 * and at most `pageSize` receipts' worth.
 */
export function nextRangeGranules(remaining: number, verifiers: number, granule: number, pageSize: number): number {
  const most = Math.max(1, Math.floor(pageSize / granule));
  const share = Math.ceil(remaining / (2 * PIPELINE * Math.max(1, verifiers) * granule));
  return Math.min(most, Math.max(1, share));
}

export class RangePlanner {
  private readonly granule: number;
  private readonly bounds: Array<{ to: string; receipts: number }> = [];
  /** Where the next planning query starts (the last boundary read). */
  private cursor: string;
  /** Where the next range starts (the last boundary handed out). */
  private fromSeq: string;
  private planned = 0;
  private handedOut = 0;
  private exhausted = false;

  constructor(
    private readonly db: Sql,
    afterSeq: number,
    /** Receipts to verify at most. */
    private readonly limit: number,
    /** Estimated receipts to verify (for the range sizes only). */
    private readonly expected: number,
    private readonly threads: number,
    private readonly pageSize: number,
  ) {
    this.granule = Math.min(GRANULE, pageSize);
    this.cursor = String(afterSeq);
    this.fromSeq = this.cursor;
  }

  private async plan(): Promise<void> {
    const want = Math.min(PLAN_ROWS, this.limit - this.planned);
    if (want <= 0) {
      this.exhausted = true;
      return;
    }
    const rows = (await this.db.query<{ seq: string; n: number }>(BOUNDARIES, [this.cursor, want, this.granule])).rows;
    let previous = 0;
    for (const row of rows) {
      const n = Number(row.n);
      this.bounds.push({ to: String(row.seq), receipts: n - previous });
      previous = n;
    }
    this.planned += previous;
    if (rows.length) this.cursor = String(rows[rows.length - 1].seq);
    if (previous < want) this.exhausted = true;
  }

  /** The next range, or null when every receipt (up to the limit) has been handed out. */
  async next(): Promise<PlannedRange | null> {
    const granules = nextRangeGranules(Math.max(0, this.expected - this.handedOut), this.threads, this.granule, this.pageSize);
    while (this.bounds.length < granules && !this.exhausted) await this.plan();
    if (this.bounds.length === 0) return null;
    const taken = this.bounds.splice(0, Math.min(granules, this.bounds.length));
    const receipts = taken.reduce((sum, b) => sum + b.receipts, 0);
    const from = this.fromSeq;
    this.fromSeq = taken[taken.length - 1].to;
    this.handedOut += receipts;
    return { from, to: this.fromSeq, receipts };
  }
}
