/**
 * The receipt ledger with group commit.
 *
 * Concurrent `append` calls queue up (db/group-commit.ts); one writer loop per ledger takes up to
 * `maxBatch` pending receipts and, in ONE transaction, locks the chain head row (which serialises
 * batches across every process sharing the database, so there is one chain), computes seq /
 * parent_hash / hash / signature for each receipt in order, inserts them with one multi-row INSERT, moves the head and
 * commits with synchronous_commit on. Only then are the callers' promises resolved, so an
 * acknowledged receipt is durable. While a batch commits, new appends accumulate for the next.
 *
 * Receipted domain steps use the outbox (outbox.ts): `stage` stores the receipt input inside the
 * step's own transaction, `appendStaged` appends it; the batch deletes the outbox entry in the
 * statement that inserts the receipt and fills the domain row's `receipt_seq` back-link in the
 * same transaction. `recover` appends what dead processes left in the outbox; an entry whose
 * append failed while this ledger lives (signer or database unavailable) is retried by the
 * ledger itself until it is in the chain. Domain writes stay
 * outside the chain-head lock, so batches stay as short as before (one more CTE, no round trip).
 */
import { randomUUID } from "node:crypto";
import { isConnectionFailure, isServerCondition } from "../db/errors";
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
import { SigningUnavailableError } from "./signing-errors";
import {
  OWNER_LOCK_KEY,
  RECEIPT_LINK_TABLES,
  outboxOwners,
  stagedOf,
  stagingStatement,
  type ReceiptLink,
  type StagedReceipt,
  type StagingStatement,
} from "./outbox";
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
  /**
   * After a staged receipt failed to append (the signer or the database was unavailable), this
   * ledger retries its own outbox entries every this many milliseconds until they are in the
   * chain; default 5000.
   */
  readonly stagedRetryMs?: number;
  /** Most companion rows (appendWith) one batch transaction writes besides its receipts; default 4000. */
  readonly maxCompanionRows?: number;
}

export interface Ledger {
  /** This ledger instance's id in receipt_outbox.owner. */
  readonly owner: string;
  /** Resolves with the stored receipt once its batch has committed durably. */
  append(input: ReceiptInput): Promise<Receipt>;
  /** Stores the receipt in the outbox inside the caller's transaction `tx` (see outbox.ts). */
  stage(tx: Sql, input: ReceiptInput, link?: ReceiptLink): Promise<StagedReceipt>;
  /** The outbox INSERT as one statement (placeholders from `$firstParam`), to run inside the caller's statement. */
  stagingStatement(input: ReceiptInput, firstParam: number, link?: ReceiptLink): Promise<StagingStatement>;
  /**
   * Appends a receipt AND writes the domain rows it receipts in the same transaction (the batch's,
   * under the chain head lock): the rows are durable exactly when their receipt is. `writer` is
   * called once per batch with the values of every item that uses it, in order, and the receipts
   * they got; it returns one result per value.
   */
  appendWith<T, R>(input: ReceiptInput, writer: CompanionWriter<T, R>, value: T, also?: readonly CompanionWrite[]): Promise<{ receipt: Receipt; result: R }>;
  /** Appends a staged receipt once the caller's transaction committed; removes it from the outbox atomically. */
  appendStaged(staged: StagedReceipt): Promise<Receipt>;
  /**
   * Appends every outbox entry left by ledgers that are gone (their owner lock is free) and this
   * ledger's own entries that are not in flight. Run at start, before serving. Resolves with the count.
   */
  recover(): Promise<number>;
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

const INSERT_RECEIPTS_CTES =
  "WITH inserted AS (INSERT INTO receipts " +
  "(seq, id, operation, outcome, evidence, sector, created_at, parent_hash, key_version, hash, signature) " +
  "SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], " +
  "$7::timestamptz[], $8::text[], $9::integer[], $10::text[], $11::text[]) RETURNING 1) " +
  ", unstaged AS (DELETE FROM receipt_outbox WHERE id = ANY($16::uuid[]) RETURNING 1) ";
const MOVE_HEAD =
  "UPDATE receipt_chain_head SET seq = $12, hash = $13, created_at = $14 " +
  "WHERE (SELECT count(*) FROM inserted) = $15 AND (SELECT count(*) FROM unstaged) = $17";
const INSERT_BATCH = INSERT_RECEIPTS_CTES + MOVE_HEAD;
/** The same as CTEs, for companion CTEs to follow (Ledger.appendWith). */
const INSERT_BATCH_CTES = `${INSERT_RECEIPTS_CTES}, moved AS (${MOVE_HEAD} RETURNING 1)`;

/**
 * Rows a receipt's batch transaction writes next to the receipts (see Ledger.appendWith), in the
 * same statement as the receipts: `statement` returns data-modifying CTEs (named with `prefix`,
 * placeholders from `param`) and one SQL expression over them whose value, as JSON, `results`
 * turns into one result per value. So a batch with companions still costs one statement. `rows`
 * weighs a value, so one batch transaction stays bounded (LedgerOptions.maxCompanionRows).
 */
export interface CompanionWriter<T, R> {
  rows(value: T): number;
  statement(values: readonly T[], receipts: readonly { readonly seq: number }[], prefix: string, param: (value: unknown) => string): { readonly ctes: string; readonly result: string };
  results(value: unknown, values: readonly T[]): R[];
}

/**
 * More rows for the same transaction (e.g. the request's audit row): `committed` is set once the
 * transaction that wrote them committed, so a caller can tell whether they still need writing.
 */
export interface CompanionWrite {
  readonly writer: CompanionWriter<any, unknown>;
  readonly value: unknown;
  committed?: boolean;
  result?: unknown;
}

/** What the batch writer queues: a receipt, the outbox entry it completes (if staged), the rows written with it. */
interface BatchItem {
  readonly input: ValidatedInput;
  readonly staged?: StagedReceipt;
  readonly companions?: readonly CompanionWrite[];
}

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
  const owner = randomUUID();
  const inFlight = new Set<string>();
  let ownerLock: Promise<void> | undefined;
  let releaseOwnerLock: (() => void) | undefined;
  let ownerSession: Promise<void> | undefined;
  const stagedRetryMs = options.stagedRetryMs ?? 5000;
  let retryTimer: NodeJS.Timeout | undefined;

  /** A staged receipt that failed stays in the outbox: append it (and any other of ours) once the cause is gone. */
  function retryStagedLater(): void {
    if (retryTimer || closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (closed) return;
      stagedOf(db, owner)
        .then((entries) => appendAll(entries.filter((s) => !inFlight.has(s.outboxId))))
        .catch(() => retryStagedLater());
    }, stagedRetryMs);
    retryTimer.unref();
  }

  /**
   * PostgreSQL: a session advisory lock on this ledger's owner id, held until close, tells other
   * processes' recovery that this ledger's outbox entries are still being appended. (PGlite is one
   * process: nothing to tell.) A lost session drops the lock; the count check in INSERT_BATCH
   * still keeps an entry from being appended twice.
   */
  function holdOwnerLock(): Promise<void> {
    if (db.kind !== "postgres") return Promise.resolve();
    ownerLock ??= new Promise<void>((held, failed) => {
      const released = new Promise<void>((release) => (releaseOwnerLock = release));
      ownerSession = db
        .session(async (session) => {
          await session.query(`SELECT pg_advisory_lock(${OWNER_LOCK_KEY})`, [owner]);
          held();
          await released;
          await session.query(`SELECT pg_advisory_unlock(${OWNER_LOCK_KEY})`, [owner]);
        })
        .catch((error: Error) => {
          ownerLock = undefined;
          failed(error);
        });
    });
    return ownerLock;
  }

  /**
   * One transaction: lock the head, THEN take what is queued (everything that arrived while this
   * process waited for the lock joins the batch), link, hash, sign, insert, move the head.
   */
  async function writeBatch(tx: Sql, take: () => BatchItem[]): Promise<Receipt[]> {
    const head = (await tx.query<HeadRow>(LOCK_HEAD)).rows[0];
    if (!head) throw new Error("receipt_chain_head is empty: migration 0002_receipts has not run");
    const items = take();
    const taken = items.map((item) => item.input);
    const outboxIds = items.flatMap((item) => (item.staged ? [item.staged.outboxId] : []));
    // A child is never older than its parent, even if this process's clock lags another's.
    const createdMs = Math.max(clock(), Number(head.created_ms));
    const createdAt = isoMillis(createdMs);
    // One version per batch: a transit signer may move to a newer version between batches.
    const keyVersion = signer.keyVersion;
    let seq = Number(head.seq);
    let parent = head.hash;
    const seqs: number[] = [];
    const parents: string[] = [];
    const hashes: string[] = [];
    for (const input of taken) {
      seq += 1;
      const hash = sha256Hex(
        canonicalReceiptText({ ...input, seq, created_at: createdAt, parent_hash: parent, key_version: keyVersion }),
      );
      seqs.push(seq);
      parents.push(parent);
      hashes.push(hash);
      parent = hash;
    }
    const signatures = await signer.signMany(hashes, keyVersion);
    if (signatures.length !== hashes.length) throw new SigningUnavailableError(`signer returned ${signatures.length} signatures for ${hashes.length} receipts`);
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
        key_version: keyVersion,
        hash: hashes[i],
        signature: signatures[i],
      }),
    );
    const params: unknown[] = [
      seqs,
      receipts.map((r) => r.id),
      taken.map((p) => p.operation),
      taken.map((p) => p.outcome),
      taken.map((p) => p.evidenceJson),
      taken.map((p) => p.sector),
      receipts.map(() => createdAt),
      parents,
      receipts.map(() => keyVersion),
      hashes,
      signatures,
      seq,
      parent,
      createdAt,
      taken.length,
      outboxIds,
      outboxIds.length,
    ];
    const companions = companionsOf(items, receipts);
    const moved = companions.length === 0 ? (await tx.query(INSERT_BATCH, params)).rowCount : await insertWithCompanions(tx, params, companions);
    if (moved !== 1) {
      throw new Error(
        `receipt batch insert did not store all ${taken.length} receipts` +
          (outboxIds.length ? " (or one of its outbox entries was already appended by another process)" : ""),
      );
    }
    await fillBackLinks(tx, items, receipts);
    return receipts;
  }

  /** The batch's companion writes grouped by writer, in batch order, with their receipts. */
  function companionsOf(items: BatchItem[], receipts: Receipt[]): [CompanionWriter<any, unknown>, { write: CompanionWrite; receipt: Receipt }[]][] {
    const byWriter = new Map<CompanionWriter<any, unknown>, { write: CompanionWrite; receipt: Receipt }[]>();
    items.forEach((item, i) => {
      for (const write of item.companions ?? []) byWriter.set(write.writer, [...(byWriter.get(write.writer) ?? []), { write, receipt: receipts[i] }]);
    });
    return [...byWriter];
  }

  /**
   * INSERT_BATCH with each companion writer's CTEs in the same statement: the receipts, the head
   * move and every companion row in one round trip. Returns the number of head rows moved (1).
   */
  async function insertWithCompanions(tx: Sql, params: unknown[], companions: ReturnType<typeof companionsOf>): Promise<number> {
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const parts = companions.map(([writer, writes], k) => writer.statement(writes.map((w) => w.write.value), writes.map((w) => w.receipt), `c${k}_`, param));
    const sql =
      INSERT_BATCH_CTES +
      parts.map((p) => `, ${p.ctes}`).join("") +
      ` SELECT (SELECT count(*) FROM moved)::int AS moved${parts.map((p, k) => `, (${p.result}) AS c${k}`).join("")}`;
    const row = (await tx.query<Record<string, unknown>>(sql, params)).rows[0];
    companions.forEach(([writer, writes], k) => {
      const results = writer.results(row[`c${k}`], writes.map((w) => w.write.value));
      if (results.length !== writes.length) throw new Error(`companion writer returned ${results.length} results for ${writes.length} writes`);
      writes.forEach((w, i) => (w.write.result = results[i]));
    });
    return Number(row.moved);
  }

  /** `receipt_seq` of the domain rows the batch's staged receipts belong to, in the batch's transaction. */
  async function fillBackLinks(tx: Sql, items: BatchItem[], receipts: Receipt[]): Promise<void> {
    for (const table of RECEIPT_LINK_TABLES) {
      const rowSeqs: number[] = [];
      const receiptSeqs: number[] = [];
      items.forEach((item, i) => {
        if (item.staged?.link?.table !== table) return;
        rowSeqs.push(item.staged.link.seq);
        receiptSeqs.push(receipts[i].seq);
      });
      if (rowSeqs.length === 0) continue;
      // `table` comes from RECEIPT_LINK_TABLES, never from input.
      await tx.query(
        `UPDATE ${table} t SET receipt_seq = v.receipt_seq FROM unnest($1::bigint[], $2::bigint[]) AS v(seq, receipt_seq) WHERE t.seq = v.seq`,
        [rowSeqs, receiptSeqs],
      );
    }
  }

  const batches = createGroupCommit<BatchItem, Receipt>(
    maxBatch,
    async (take) => {
      let taken: BatchItem[] = [];
      const receipts = await db.transaction((tx) => writeBatch(tx, () => (taken = take())));
      for (const item of taken) for (const write of item.companions ?? []) write.committed = true;
      metrics?.onBatch?.(receipts.length);
      metrics?.onAppended?.(receipts.length);
      return receipts;
    },
    {
      // A signer that cannot sign fails the whole batch: splitting it would only repeat the wait.
      isolate: (error) => !(error instanceof SigningUnavailableError) && !isConnectionFailure(error) && !isServerCondition(error),
      weight: (item) => (item.companions ?? []).reduce((n, c) => n + c.writer.rows(c.value), 1),
      maxWeight: options.maxCompanionRows ?? 4000,
    },
  );

  async function prepareStaging(input: ReceiptInput, firstParam: number, link?: ReceiptLink): Promise<StagingStatement> {
    if (closed) throw new LedgerClosedError();
    await holdOwnerLock();
    return stagingStatement(owner, input, firstParam, link);
  }

  function appendStaged(staged: StagedReceipt): Promise<Receipt> {
    if (closed) return Promise.reject(new LedgerClosedError());
    inFlight.add(staged.outboxId);
    return batches
      .submit({ input: staged.input, staged })
      .catch((error: Error) => {
        retryStagedLater();
        throw error;
      })
      .finally(() => inFlight.delete(staged.outboxId));
  }

  async function appendAll(staged: StagedReceipt[]): Promise<number> {
    await Promise.all(staged.map(appendStaged));
    return staged.length;
  }

  /** Appends the entries of an owner whose lock this session can take (it is gone), holding the lock meanwhile. */
  async function adoptIfGone(other: string): Promise<number> {
    if (db.kind !== "postgres") return appendAll(await stagedOf(db, other));
    return db.session(async (session) => {
      const free = (await session.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${OWNER_LOCK_KEY}) AS ok`, [other])).rows[0].ok;
      if (!free) return 0;
      try {
        return await appendAll(await stagedOf(session, other));
      } finally {
        await session.query(`SELECT pg_advisory_unlock(${OWNER_LOCK_KEY})`, [other]).catch(() => undefined);
      }
    });
  }

  return {
    owner,
    append(input) {
      if (closed) return Promise.reject(new LedgerClosedError());
      let validated: ValidatedInput;
      try {
        validated = validateReceiptInput(input);
      } catch (error) {
        return Promise.reject(error);
      }
      return batches.submit({ input: validated });
    },
    async stage(tx, input, link) {
      const statement = await prepareStaging(input, 1, link);
      await tx.query(statement.sql, statement.params);
      return statement.staged;
    },
    stagingStatement: prepareStaging,
    async appendWith<T, R>(input: ReceiptInput, writer: CompanionWriter<T, R>, value: T, also: readonly CompanionWrite[] = []) {
      if (closed) throw new LedgerClosedError();
      const primary: CompanionWrite = { writer, value };
      const receipt = await batches.submit({ input: validateReceiptInput(input), companions: [primary, ...also] });
      return { receipt, result: primary.result as R };
    },
    appendStaged,
    async recover() {
      if (closed) throw new LedgerClosedError();
      await holdOwnerLock();
      let appended = 0;
      for (const other of await outboxOwners(db)) {
        if (other === owner) {
          appended += await appendAll((await stagedOf(db, owner)).filter((s) => !inFlight.has(s.outboxId)));
        } else {
          appended += await adoptIfGone(other);
        }
      }
      return appended;
    },
    get: (id) => getReceipt(db, id),
    list: (listOptions) => listReceipts(db, listOptions),
    head: () => chainHead(db),
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      await batches.drained();
      releaseOwnerLock?.();
      await ownerSession;
    },
  };
}
