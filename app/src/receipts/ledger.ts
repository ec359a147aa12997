/**
 * The receipt ledger with group commit.
 *
 * Concurrent `append` calls queue up (db/group-commit.ts); one writer loop per ledger takes up to
 * `maxBatch` pending receipts and, in ONE transaction, locks the chain head row (which serialises
 * batches across every process sharing the database, so there is one chain), computes seq /
 * parent_hash / hash / signature for each receipt in order, inserts them with one multi-row INSERT, moves the head and
 * commits with synchronous_commit on. Only then are the callers' promises resolved, so an
 * acknowledged receipt is durable. While a batch commits, new appends accumulate for the next.
 */
import { createGroupCommit } from "../db/group-commit";
import type { Database, Sql } from "../db/types";
import {
  canonicalReceiptText,
  isoMillis,
  receiptIdFromHash,
  sha256Hex,
  validateReceiptInput,
  type ValidatedInput,
} from "./canonical";
import type { Signer } from "./keys";
import { chainHead, getReceipt, listReceipts, type ChainHead, type ListOptions } from "./store";
import type { LedgerMetrics, Receipt, ReceiptInput } from "./types";
import type { JsonValue } from "./types";

export interface LedgerOptions {
  readonly db: Database;
  readonly signer: Signer;
  /** Milliseconds since the epoch; default Date.now. */
  readonly clock?: () => number;
  /** Most receipts per transaction; default 256. */
  readonly maxBatch?: number;
  readonly metrics?: LedgerMetrics;
}

export interface Ledger {
  /** Resolves with the stored receipt once its batch has committed durably. */
  append(input: ReceiptInput): Promise<Receipt>;
  get(id: string): Promise<Receipt | null>;
  list(options: ListOptions): Promise<Receipt[]>;
  head(): Promise<ChainHead>;
  /** Stops accepting appends and waits until every queued receipt is committed (or failed). */
  close(): Promise<void>;
}

interface HeadRow {
  seq: string | number;
  hash: string;
  created_ms: number | string;
}

const LOCK_HEAD =
  "SELECT set_config('synchronous_commit', 'on', true) AS sync, seq, hash, " +
  "(extract(epoch FROM created_at) * 1000)::float8 AS created_ms FROM receipt_chain_head FOR UPDATE";

const INSERT_BATCH =
  "WITH inserted AS (INSERT INTO receipts " +
  "(seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature) " +
  "SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], " +
  "$7::timestamptz[], $8::text[], $9::integer[], $10::text[], $11::text[]) RETURNING 1) " +
  "UPDATE receipt_chain_head SET seq = $12, hash = $13, created_at = $14 " +
  "WHERE (SELECT count(*) FROM inserted) = $15";

export class LedgerClosedError extends Error {
  constructor() {
    super("receipt ledger is closed");
    this.name = "LedgerClosedError";
  }
}

export function createLedger(options: LedgerOptions): Ledger {
  const { db, signer, metrics } = options;
  const clock = options.clock ?? Date.now;
  const maxBatch = options.maxBatch ?? 256;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) {
    throw new RangeError(`maxBatch: must be an integer from 1 to 4096, got ${maxBatch}`);
  }
  let closed = false;

  /**
   * One transaction: lock the head, THEN take what is queued (everything that arrived while this
   * process waited for the lock joins the batch), link, hash, sign, insert, move the head.
   */
  async function writeBatch(tx: Sql, take: () => ValidatedInput[]): Promise<Receipt[]> {
    const head = (await tx.query<HeadRow>(LOCK_HEAD)).rows[0];
    if (!head) throw new Error("receipt_chain_head is empty: migration 0002_receipts has not run");
    const taken = take();
    // A child is never older than its parent, even if this process's clock lags another's.
    const createdMs = Math.max(clock(), Number(head.created_ms));
    const createdAt = isoMillis(createdMs);
    let seq = Number(head.seq);
    let parent = head.hash;
    const seqs: number[] = [];
    const parents: string[] = [];
    const hashes: string[] = [];
    for (const input of taken) {
      seq += 1;
      const hash = sha256Hex(
        canonicalReceiptText({ ...input, seq, created_at: createdAt, parent_hash: parent, key_version: signer.keyVersion }),
      );
      seqs.push(seq);
      parents.push(parent);
      hashes.push(hash);
      parent = hash;
    }
    const signatures = await signer.signMany(hashes);
    const receipts = taken.map(
      (input, i): Receipt => ({
        id: receiptIdFromHash(hashes[i]),
        seq: seqs[i],
        operation: input.operation,
        outcome: input.outcome,
        evidence: JSON.parse(input.evidenceJson) as { [key: string]: JsonValue },
        sector: input.sector,
        created_at: createdAt,
        parent_hash: parents[i],
        key_version: signer.keyVersion,
        hash: hashes[i],
        signature: signatures[i],
      }),
    );
    const updated = await tx.query(INSERT_BATCH, [
      seqs,
      receipts.map((r) => r.id),
      taken.map((p) => p.operation),
      taken.map((p) => p.outcome),
      taken.map((p) => p.evidenceJson),
      taken.map((p) => p.sector),
      receipts.map(() => createdAt),
      parents,
      receipts.map(() => signer.keyVersion),
      hashes,
      signatures,
      seq,
      parent,
      createdAt,
      taken.length,
    ]);
    if (updated.rowCount !== 1) throw new Error(`receipt batch insert did not store all ${taken.length} receipts`);
    return receipts;
  }

  const batches = createGroupCommit<ValidatedInput, Receipt>(maxBatch, async (take) => {
    const receipts = await db.transaction((tx) => writeBatch(tx, take));
    metrics?.onBatch?.(receipts.length);
    metrics?.onAppended?.(receipts.length);
    return receipts;
  });

  return {
    append(input) {
      if (closed) return Promise.reject(new LedgerClosedError());
      let validated: ValidatedInput;
      try {
        validated = validateReceiptInput(input);
      } catch (error) {
        return Promise.reject(error);
      }
      return batches.submit(validated);
    },
    get: (id) => getReceipt(db, id),
    list: (listOptions) => listReceipts(db, listOptions),
    head: () => chainHead(db),
    async close() {
      closed = true;
      await batches.drained();
    },
  };
}
