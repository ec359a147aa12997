/**
 * Chain verification. Pages of receipts are read in seq order; each page's hashes and signatures
 * are checked by a pool of worker threads (one per core by default) while this thread reads the
 * next page and checks the links: seq without gaps, parent_hash = previous hash, created_at never
 * older than the parent's ("retrocausation").
 *
 * Incremental mode starts after the latest checkpoint in receipt_verification_checkpoints (after
 * confirming the checkpointed receipt still has the checkpointed hash); a run that finds no
 * failure stores a new checkpoint at the last receipt it verified.
 *
 * Every run also holds the receipts to their anchors (anchors.ts): the chain head, every stored
 * checkpoint, and the registrar of each signing key. With `trustedKeys` (published outside this
 * database: Vault transit, or a keys file exported from it), every receipt's key_version must be
 * there with the same public key as receipt_signing_keys, and signatures are checked with the
 * trusted key: a key row swapped inside the database is caught.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { Database, Sql } from "../db/types";
import { checkChainHead, checkCheckpoints, untrustedKeys } from "./anchors";
import { GENESIS_PARENT_HASH } from "./canonical";
import { loadKeyring, type Keyring } from "./keyring";
import {
  VERIFY_WORKER_SOURCE,
  makeInlineVerifier,
  type PageVerifier,
  type RowFailure,
  type VerifyRow,
} from "./verify-core";
import type { ChainFailure, VerificationMetrics, VerificationProgress, VerificationReport } from "./types";

export interface VerifyOptions {
  readonly db: Database;
  /** Public keys by version; loaded from receipt_signing_keys when absent. */
  readonly keyring?: Keyring;
  /**
   * Public keys from a source outside the database (Vault transit, an exported keys file). Each
   * receipt's key_version must be in it with the key receipt_signing_keys holds.
   */
  readonly trustedKeys?: Keyring;
  /** Names the trusted source in failure details, e.g. "Vault transit transit/knhk-receipts". */
  readonly trustedSource?: string;
  /** Incremental: start after the latest stored checkpoint (from genesis when there is none). */
  readonly fromCheckpoint?: boolean;
  /** Verify at most this many receipts. */
  readonly limit?: number;
  readonly onProgress?: (progress: VerificationProgress) => void;
  /** Worker threads; default one per core; 0 verifies in the calling thread. */
  readonly workers?: number;
  /** Receipts per page handed to a worker; default 2048. */
  readonly pageSize?: number;
  /** Store a checkpoint after a run without failures; default true. */
  readonly saveCheckpoint?: boolean;
  readonly metrics?: VerificationMetrics;
}

export interface Checkpoint {
  readonly seq: number;
  readonly hash: string;
  readonly created_at: string;
  readonly verified_at: string;
}

/** Receipts per chunk handed to a verifier thread (~40 ms of work on a slow core). */
const CHUNK_SIZE = 256;

const ISO_UTC = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const SELECT_PAGE =
  `SELECT seq, id::text AS id, operation, outcome, evidence, sector, ${ISO_UTC} AS created_at, ` +
  "parent_hash, key_version, hash, signature FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2";

export async function latestCheckpoint(db: Sql): Promise<Checkpoint | null> {
  const result = await db.query<{ seq: string; hash: string; created_at: string; verified_at: Date }>(
    `SELECT seq, hash, ${ISO_UTC} AS created_at, verified_at FROM receipt_verification_checkpoints ORDER BY seq DESC, id DESC LIMIT 1`,
  );
  const row = result.rows[0];
  return row
    ? { seq: Number(row.seq), hash: row.hash, created_at: row.created_at, verified_at: new Date(row.verified_at).toISOString() }
    : null;
}

interface PageJob {
  readonly rows: VerifyRow[];
  resolve(failures: RowFailure[]): void;
  reject(error: Error): void;
}

/** A fixed pool of verifier threads; pages go to whichever thread is free. */
class VerifierPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly waiting: PageJob[] = [];
  private readonly running = new Map<Worker, PageJob>();

  constructor(size: number, keyring: Array<[number, string]>) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(VERIFY_WORKER_SOURCE, { eval: true, workerData: { keyring } });
      worker.on("message", (message: { failures?: RowFailure[]; error?: string }) => {
        const job = this.running.get(worker);
        this.running.delete(worker);
        if (job) {
          if (message.error) job.reject(new Error(`verifier thread failed: ${message.error}`));
          else job.resolve(message.failures ?? []);
        }
        this.release(worker);
      });
      worker.on("error", (error) => {
        const job = this.running.get(worker);
        this.running.delete(worker);
        job?.reject(error);
      });
      this.all.push(worker);
      this.idle.push(worker);
    }
  }

  verify(rows: VerifyRow[]): Promise<RowFailure[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ rows, resolve, reject });
      this.dispatch();
    });
  }

  private release(worker: Worker): void {
    this.idle.push(worker);
    this.dispatch();
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.waiting.length > 0) {
      const worker = this.idle.pop() as Worker;
      const job = this.waiting.shift() as PageJob;
      this.running.set(worker, job);
      worker.postMessage({ id: 0, rows: job.rows });
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}

export async function verifyChain(options: VerifyOptions): Promise<VerificationReport> {
  const { db, onProgress, metrics } = options;
  const pageSize = options.pageSize ?? 2048;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const workerCount = options.workers ?? availableParallelism();
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100_000) {
    throw new RangeError(`pageSize: must be an integer from 1 to 100000, got ${pageSize}`);
  }
  if (limit !== Number.POSITIVE_INFINITY && (!Number.isInteger(limit) || limit < 1)) {
    throw new RangeError(`limit: must be a positive integer, got ${limit}`);
  }
  if (!Number.isInteger(workerCount) || workerCount < 0 || workerCount > 256) {
    throw new RangeError(`workers: must be an integer from 0 to 256, got ${workerCount}`);
  }
  const stored = options.keyring ?? (await loadKeyring(db));
  const trusted = options.trustedKeys;
  const trustedSource = options.trustedSource ?? "the trusted key source";
  // Signatures are checked with the trusted key where there is one (a version missing from the
  // trusted source is reported once below, and checked with the stored key meanwhile).
  const keyring = [...new Map([...stored, ...(trusted ?? new Map<number, string>())]).entries()];

  const signatureFailures: ChainFailure[] = [];
  const chainBreaks: ChainFailure[] = [];
  const retrocausation: ChainFailure[] = [];
  const failedSeqs = new Set<number>();
  let anchorFailures = 0;
  const record = (failure: ChainFailure, examinedReceipt = true): void => {
    // A failure against an anchor (head, checkpoint) may name a seq with no stored receipt.
    if (examinedReceipt) failedSeqs.add(failure.seq);
    else anchorFailures++;
    metrics?.onFailure?.(failure.kind);
    if (failure.kind === "signature_invalid") signatureFailures.push(failure);
    else if (failure.kind === "retrocausation") retrocausation.push(failure);
    else chainBreaks.push(failure);
  };

  // Where the walk starts: genesis, or the latest checkpoint in incremental mode.
  let afterSeq = 0;
  let previousHash = GENESIS_PARENT_HASH;
  let previousCreatedAt = "";
  const checkpoint = options.fromCheckpoint ? await latestCheckpoint(db) : null;
  let checkpointFailed = false;
  if (checkpoint) {
    const anchor = await db.query<{ id: string; hash: string }>("SELECT id::text AS id, hash FROM receipts WHERE seq = $1", [
      checkpoint.seq,
    ]);
    checkpointFailed = !anchor.rows.length || anchor.rows[0].hash !== checkpoint.hash;
    if (checkpointFailed) {
      // checkCheckpoints (below) words the failure; this only records that the anchor failed.
      record({
        id: anchor.rows[0]?.id ?? "",
        seq: checkpoint.seq,
        kind: anchor.rows.length ? "hash_mismatch" : "sequence_gap",
        detail: anchor.rows.length
          ? `receipt seq ${checkpoint.seq} no longer has the hash a verification on ${checkpoint.verified_at} checkpointed (rewritten)`
          : `receipt seq ${checkpoint.seq} is missing, but a verification on ${checkpoint.verified_at} checkpointed it (truncated)`,
      }, anchor.rows.length > 0);
    }
    afterSeq = checkpoint.seq;
    previousHash = checkpoint.hash;
    previousCreatedAt = checkpoint.created_at;
  }

  // Receipts missing below the head or a checkpoint, or rewritten below a checkpoint.
  for (const failure of [...(await checkChainHead(db)), ...(await checkCheckpoints(db))]) {
    if (checkpointFailed && failure.seq === checkpoint?.seq) continue;
    record(failure, false);
  }
  // An explicit keyring is the caller's trust decision; keys read from the table need a trusted registrar.
  const untrusted = options.keyring ? new Map<number, string>() : await untrustedKeys(db);

  const headSeq = Number(
    (await db.query<{ seq: string | null }>("SELECT max(seq) AS seq FROM receipts")).rows[0]?.seq ?? 0,
  );
  const total = Math.max(0, Math.min(limit, headSeq - afterSeq));

  const inline: PageVerifier | null = workerCount === 0 ? makeInlineVerifier(keyring) : null;
  const pool = workerCount > 0 ? new VerifierPool(workerCount, keyring) : null;
  const chunkSize = Math.min(pageSize, CHUNK_SIZE);
  const inFlight: Promise<void>[] = [];
  // Chunks queued or being verified: enough that no thread waits for the next page's query.
  const maxInFlight = Math.max(2, workerCount * 2) * Math.ceil(pageSize / chunkSize);

  let examined = 0;
  let expectedSeq = afterSeq + 1;
  let lastRow: VerifyRow | null = null;
  let pageError: Error | null = null;
  let firstSeq: number | null = null;
  try {
    let cursor = afterSeq;
    while (examined < limit) {
      const want = Math.min(pageSize, limit - examined);
      const rows = (await db.query<VerifyRow>(SELECT_PAGE, [cursor, want])).rows;
      if (rows.length === 0) break;
      // Links are checked here, in order; hashes and signatures by the pool.
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seq !== expectedSeq) {
          record({ id: row.id, seq, kind: "sequence_gap", detail: `expected seq ${expectedSeq}, found ${seq}` });
        }
        if (row.parent_hash !== previousHash) {
          record({ id: row.id, seq, kind: "parent_mismatch", detail: "parent_hash differs from the previous receipt's hash" });
        }
        if (row.created_at < previousCreatedAt) {
          record({
            id: row.id,
            seq,
            kind: "retrocausation",
            detail: `created_at ${row.created_at} is older than its parent's ${previousCreatedAt}`,
          });
        }
        if (trusted) {
          const version = Number(row.key_version);
          const trustedKey = trusted.get(version);
          if (trustedKey === undefined) {
            record({ id: row.id, seq, kind: "signature_invalid", detail: `key_version ${version} is not in ${trustedSource}` });
          } else if (stored.get(version) !== trustedKey) {
            record({
              id: row.id,
              seq,
              kind: "signature_invalid",
              detail: `key_version ${version}: receipt_signing_keys holds a different public key than ${trustedSource} (the key row was replaced)`,
            });
          }
        }
        const registrar = untrusted.get(Number(row.key_version));
        if (registrar !== undefined) {
          record({
            id: row.id,
            seq,
            kind: "signature_invalid",
            detail: `signed with key_version ${row.key_version}, registered by role ${registrar}, which may not register signing keys (only the owner of receipt_signing_keys may)`,
          });
        }
        expectedSeq = seq + 1;
        previousHash = row.hash;
        previousCreatedAt = row.created_at;
      }
      // A page is read in one query but handed to the threads in smaller chunks, so they finish
      // together: with whole pages, the last one kept one thread busy while the others idled.
      for (let from = 0; from < rows.length; from += chunkSize) {
        const chunk = rows.slice(from, from + chunkSize);
        const checked = (pool ? pool.verify(chunk) : Promise.resolve((inline as PageVerifier)(chunk))).then((failures) => {
          for (const f of failures) {
            const row = chunk[f.index];
            record({ id: row.id, seq: Number(row.seq), kind: f.kind, detail: f.detail });
          }
        }, (error: Error) => {
          pageError ??= error;
        });
        inFlight.push(checked);
      }
      firstSeq ??= Number(rows[0].seq);
      examined += rows.length;
      lastRow = rows[rows.length - 1];
      cursor = Number(lastRow.seq);
      onProgress?.({ verified: examined, total, seq: cursor });
      while (inFlight.length > maxInFlight) await inFlight.shift();
      if (rows.length < want) break;
    }
    await Promise.all(inFlight);
  } finally {
    await pool?.close();
  }
  if (pageError) throw pageError;

  const byOrder = (a: ChainFailure, b: ChainFailure) => a.seq - b.seq || a.kind.localeCompare(b.kind);
  signatureFailures.sort(byOrder);
  chainBreaks.sort(byOrder);
  retrocausation.sort(byOrder);
  const ok = failedSeqs.size === 0 && anchorFailures === 0;
  const verifiedCount = examined - [...failedSeqs].filter((s) => s > afterSeq).length;

  if (ok && lastRow && options.saveCheckpoint !== false) {
    await db.query(
      "INSERT INTO receipt_verification_checkpoints (seq, hash, created_at, verified_count) VALUES ($1, $2, $3, $4)",
      [Number(lastRow.seq), lastRow.hash, lastRow.created_at, examined],
    );
  }
  if (ok) metrics?.onVerifiedSeq?.(lastRow ? Number(lastRow.seq) : afterSeq);

  return {
    total_count: examined,
    verified_count: Math.max(0, verifiedCount),
    signature_failures: signatureFailures,
    chain_breaks: chainBreaks,
    retrocausation_violations: retrocausation,
    last_verified_timestamp: lastRow ? lastRow.created_at : (checkpoint?.created_at ?? null),
    from_seq: firstSeq,
    to_seq: lastRow ? Number(lastRow.seq) : null,
    incremental: checkpoint !== null,
    ok,
  };
}
