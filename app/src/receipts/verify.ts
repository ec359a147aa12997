/**
 * Chain verification. The chain is cut into ranges of receipts (verify-plan.ts); a pool of worker
 * threads (one per core by default) checks each range's hashes, ids, signatures and the links
 * inside it (verify-core.ts), reading the range from PostgreSQL itself when given a connection
 * (verify-threads.ts). This thread joins the ranges in seq order: the first receipt of each range
 * must follow the last of the range before (seq without gaps, parent_hash = previous hash,
 * created_at never older than the parent's: "retrocausation").
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
 *
 * A run that cannot read or check every range (a connection lost, a thread gone) throws: it never
 * reports a chain it did not finish as verified.
 */
import { availableParallelism } from "node:os";
import type { Database, Sql } from "../db/types";
import { checkChainHead, checkCheckpoints, untrustedKeys } from "./anchors";
import { GENESIS_PARENT_HASH } from "./canonical";
import { loadKeyring, type Keyring } from "./keyring";
import { ISO_UTC, SELECT_RANGE, makeInlineRangeVerifier, toRangeRow, type RangeConfig, type RangeResult, type RangeRow } from "./verify-core";
import { RangePlanner, type PlannedRange } from "./verify-plan";
import { runRanges } from "./verify-run";
import { openRangeReader, VerifierThreads, type RangeReader, type VerifierConnection } from "./verify-threads";
import type { ChainFailure, VerificationMetrics, VerificationProgress, VerificationReport } from "./types";

export type { VerifierConnection } from "./verify-threads";

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
  /** Worker threads; default one per core (one fewer with `callingThread`); 0 verifies in the calling thread. */
  readonly workers?: number;
  /**
   * The calling thread verifies ranges too, beside the worker threads: for a process that has
   * nothing else to do meanwhile (the CLI). Not for a service, whose event loop would block for a
   * range at a time. Default false.
   */
  readonly callingThread?: boolean;
  /**
   * The worker threads read receipts themselves over connections of their own to this URL (the
   * same role and TLS settings as `db`'s), instead of this thread reading and posting them.
   */
  readonly connection?: VerifierConnection;
  /** Receipts per range handed to a thread at most; default 1024. */
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

const DEFAULT_PAGE_SIZE = 1024;

export async function latestCheckpoint(db: Sql): Promise<Checkpoint | null> {
  const result = await db.query<{ seq: string; hash: string; created_at: string; verified_at: Date }>(
    `SELECT seq, hash, ${ISO_UTC} AS created_at, verified_at FROM receipt_verification_checkpoints ORDER BY seq DESC, id DESC LIMIT 1`,
  );
  const row = result.rows[0];
  return row
    ? { seq: Number(row.seq), hash: row.hash, created_at: row.created_at, verified_at: new Date(row.verified_at).toISOString() }
    : null;
}

export async function verifyChain(options: VerifyOptions): Promise<VerificationReport> {
  const { db } = options;
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const workerCount = options.workers ?? Math.max(0, availableParallelism() - (options.callingThread ? 1 : 0));
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100_000) {
    throw new RangeError(`pageSize: must be an integer from 1 to 100000, got ${pageSize}`);
  }
  if (limit !== Number.POSITIVE_INFINITY && (!Number.isInteger(limit) || limit < 1)) {
    throw new RangeError(`limit: must be a positive integer, got ${limit}`);
  }
  if (!Number.isInteger(workerCount) || workerCount < 0 || workerCount > 256) {
    throw new RangeError(`workers: must be an integer from 0 to 256, got ${workerCount}`);
  }
  if (options.connection !== undefined && (typeof options.connection.connectionString !== "string" || !/^postgres(ql)?:\/\//.test(options.connection.connectionString))) {
    // The URL holds a password: the message does not repeat it.
    throw new RangeError("connection.connectionString: must be a postgres:// or postgresql:// URL");
  }
  const connection = db.kind === "postgres" ? options.connection : undefined;
  // Started first: threads start up and connect while this thread checks the anchors.
  const threads = workerCount > 0 ? new VerifierThreads(workerCount, connection) : null;
  const callerVerifies = workerCount === 0 || options.callingThread === true;
  const opening = callerVerifies && connection ? openRangeReader(connection) : null;
  opening?.catch(() => undefined); // awaited below
  try {
    const reader = opening ?? (callerVerifies ? "db" : null);
    return await verifyWith(options, { pageSize, limit, workerCount, threads, reader });
  } finally {
    await Promise.all([threads?.close(), opening?.then((r) => r.close(), () => undefined)]);
  }
}

interface Verifiers {
  readonly pageSize: number;
  readonly limit: number;
  readonly workerCount: number;
  readonly threads: VerifierThreads | null;
  /** How the calling thread reads the ranges it verifies: its own connection, `db`, or it verifies none. */
  readonly reader: Promise<RangeReader> | "db" | null;
}

async function verifyWith(options: VerifyOptions, { pageSize, limit, workerCount, threads, reader }: Verifiers): Promise<VerificationReport> {
  const { db, onProgress, metrics } = options;
  const stored = options.keyring ?? (await loadKeyring(db));
  const trusted = options.trustedKeys;
  const trustedSource = options.trustedSource ?? "the trusted key source";

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

  // Receipts missing below the head or a checkpoint, or rewritten below a checkpoint: recorded
  // after the walk, and only where the walk did not already report that receipt the same way (a
  // rewritten last receipt fails its own hash check; the head disagreeing says nothing more).
  const anchorChecks: ChainFailure[] = [];
  for (const failure of [...(await checkChainHead(db)), ...(await checkCheckpoints(db))]) {
    if (checkpointFailed && failure.seq === checkpoint?.seq) continue;
    anchorChecks.push(failure);
  }
  // An explicit keyring is the caller's trust decision; keys read from the table need a trusted registrar.
  const untrusted = options.keyring ? new Map<number, string>() : await untrustedKeys(db);
  const config = rangeConfig(stored, trusted, trustedSource, untrusted);
  threads?.configure(config);

  const headSeq = Number(
    (await db.query<{ seq: string | null }>("SELECT max(seq) AS seq FROM receipts")).rows[0]?.seq ?? 0,
  );
  const total = Math.max(0, Math.min(limit, headSeq - afterSeq));

  // Ranges come back in any order; they are joined in seq order.
  const results = new Map<number, RangeResult>();
  let joined = 0;
  let examined = 0;
  let firstSeq: number | null = null;
  let last: RangeResult["last"] = null;
  let expectedSeq = afterSeq + 1;
  const join = (): void => {
    for (let result = results.get(joined); result !== undefined; result = results.get(joined)) {
      results.delete(joined++);
      if (!result.first || !result.last) continue;
      const [seq, id, parentHash, createdAt] = result.first;
      if (seq !== expectedSeq) record({ id, seq, kind: "sequence_gap", detail: `expected seq ${expectedSeq}, found ${seq}` });
      if (parentHash !== previousHash) record({ id, seq, kind: "parent_mismatch", detail: "parent_hash differs from the previous receipt's hash" });
      if (createdAt < previousCreatedAt) {
        record({ id, seq, kind: "retrocausation", detail: `created_at ${createdAt} is older than its parent's ${previousCreatedAt}` });
      }
      for (const f of result.failures) record({ id: f.id, seq: f.seq, kind: f.kind, detail: f.detail });
      firstSeq ??= seq;
      examined += result.count;
      last = result.last;
      [expectedSeq, previousHash, previousCreatedAt] = [last[0] + 1, last[1], last[2]];
      onProgress?.({ verified: examined, total, seq: last[0] });
    }
  };

  const verifiers = workerCount + (reader ? 1 : 0);
  const callerReads = reader === "db" || reader === null ? reader : await reader;
  const planner = new RangePlanner(db, afterSeq, limit, total, Math.max(1, verifiers), pageSize);
  const read = async (range: PlannedRange): Promise<RangeRow[]> =>
    (await db.query<Parameters<typeof toRangeRow>[0]>(SELECT_RANGE, [range.from, range.to])).rows.map(toRangeRow);
  await runRanges({
    planner,
    threads,
    readForThreads: read,
    caller: callerReads ? { read: callerReads === "db" ? read : (range) => callerReads.read(range), verify: makeInlineRangeVerifier(config) } : null,
    deliver: (index, result) => {
      results.set(index, result);
      join();
    },
  });
  if (results.size > 0) throw new Error(`verify-chain: ${results.size} verified ranges could not be joined to the chain`);
  const walked = new Set([...chainBreaks, ...signatureFailures, ...retrocausation].map((f) => `${f.seq} ${f.kind}`));
  for (const failure of anchorChecks) if (failure.id === "" || !walked.has(`${failure.seq} ${failure.kind}`)) record(failure, false);

  const byOrder = (a: ChainFailure, b: ChainFailure) => a.seq - b.seq || a.kind.localeCompare(b.kind);
  signatureFailures.sort(byOrder);
  chainBreaks.sort(byOrder);
  retrocausation.sort(byOrder);
  const ok = failedSeqs.size === 0 && anchorFailures === 0;
  const verifiedCount = examined - [...failedSeqs].filter((s) => s > afterSeq).length;
  const end = last as RangeResult["last"];

  if (ok && end && options.saveCheckpoint !== false) {
    await db.query(
      "INSERT INTO receipt_verification_checkpoints (seq, hash, created_at, verified_count) VALUES ($1, $2, $3, $4)",
      [end[0], end[1], end[2], examined],
    );
  }
  if (ok) metrics?.onVerifiedSeq?.(end ? end[0] : afterSeq);

  return {
    total_count: examined,
    verified_count: Math.max(0, verifiedCount),
    signature_failures: signatureFailures,
    chain_breaks: chainBreaks,
    retrocausation_violations: retrocausation,
    last_verified_timestamp: end ? end[2] : (checkpoint?.created_at ?? null),
    from_seq: firstSeq,
    to_seq: end ? end[0] : null,
    incremental: checkpoint !== null,
    ok,
  };
}

/**
 * What the threads check every receipt's key_version against: signatures with the trusted key
 * where there is one (else the stored one); a version missing from the trusted source, or held
 * there with another key than receipt_signing_keys, or registered by a role that may not register
 * keys, fails every receipt signed with it.
 */
function rangeConfig(stored: Keyring, trusted: Keyring | undefined, trustedSource: string, untrusted: ReadonlyMap<number, string>): RangeConfig {
  const keys = [...new Map([...stored, ...(trusted ?? new Map<number, string>())]).entries()];
  const versions = new Set([...stored.keys(), ...(trusted?.keys() ?? []), ...untrusted.keys()]);
  const keyProblems: Array<[number, string[]]> = [...versions].map((version) => {
    const problems: string[] = [];
    if (trusted) {
      const trustedKey = trusted.get(version);
      if (trustedKey === undefined) problems.push(`key_version ${version} is not in ${trustedSource}`);
      else if (stored.get(version) !== trustedKey) {
        problems.push(`key_version ${version}: receipt_signing_keys holds a different public key than ${trustedSource} (the key row was replaced)`);
      }
    }
    const registrar = untrusted.get(version);
    if (registrar !== undefined) {
      problems.push(
        `signed with key_version ${version}, registered by role ${registrar}, which may not register signing keys (only the owner of receipt_signing_keys may)`,
      );
    }
    return [version, problems];
  });
  return { keys, keyProblems, missingKeySource: trusted ? trustedSource : null };
}
