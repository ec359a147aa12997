/**
 * Verifier threads for verify-chain. Each thread checks whole ranges of receipts (verify-core).
 *
 * With a connection, each thread reads its ranges itself over its own PostgreSQL connection (the
 * same URL, hence role and TLS settings, as the caller's), so no row is parsed or copied by the
 * calling thread: it only hands out seq ranges and gets back failures and the two ends of each
 * range. Without one (the embedded database, or a caller with no URL), the caller reads each range
 * and posts the rows.
 *
 * Each thread gets up to PIPELINE ranges at once: it sends the next range's query before checking
 * the current one, so PostgreSQL produces rows while the thread verifies.
 *
 * `openRangeReader` reads ranges the same way in the calling thread, when it verifies too.
 */
import { Worker } from "node:worker_threads";
import { Client, type QueryArrayConfig } from "pg";
import { SELECT_RANGE, VERIFY_CORE_SOURCE, type RangeConfig, type RangeResult, type RangeRow } from "./verify-core";

/** Where the threads read receipts from; the URL holds a password: it is never logged or reported. */
export interface VerifierConnection {
  readonly connectionString: string;
}

/** Ranges handed to one thread at a time. */
export const PIPELINE = 3;

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const makeCore = ${VERIFY_CORE_SOURCE};
const RAW = { getTypeParser: () => (value) => value };
let core = null;
let client = null;
let ready = null;
let broken = null;
const reply = (message) => parentPort.postMessage(message);
function describe(error) {
  return String((error && error.message) || error);
}
function loadPg(path) {
  // pg checks for a Cloudflare runtime when it loads: without a navigator (Node 20) it touches the
  // Response global, which loads Node's fetch implementation, a third of a thread's start-up.
  const stub = typeof globalThis.navigator === "undefined";
  if (stub) Object.defineProperty(globalThis, "navigator", { value: { userAgent: "Node.js" }, configurable: true });
  try {
    return require(path);
  } finally {
    if (stub) delete globalThis.navigator;
  }
}
if (workerData.connection) {
  const { Client } = loadPg(workerData.pgPath);
  client = new Client({ connectionString: workerData.connection.connectionString, application_name: "knhk verify-chain" });
  // A connection that drops between queries fails the next one; the event must not crash the thread.
  client.on("error", (error) => { broken = broken || error; });
  ready = client.connect();
  ready.catch(() => undefined);
}
// One query at a time on the connection (pg queues no more), each sent as soon as the one before
// has its rows: the checks run in a later macrotask, after the next query has gone out.
let tail = Promise.resolve();
function readRange(from, to) {
  const rows = tail.then(async () => {
    await ready;
    if (broken) throw broken;
    return (await client.query({ name: "knhk-verify-range", text: workerData.selectRange, values: [from, to], rowMode: "array", types: RAW })).rows;
  });
  tail = rows.catch(() => undefined);
  return rows;
}
parentPort.on("message", (message) => {
  if (message.config) {
    core = makeCore(require("node:crypto"), message.config);
    return;
  }
  if (message.close) {
    const ended = client ? client.end().catch(() => undefined) : Promise.resolve();
    ended.then(() => parentPort.close());
    return;
  }
  const rows = message.rows ? Promise.resolve(message.rows) : readRange(message.from, message.to);
  rows.then(
    (rows) => setImmediate(() => {
      try {
        reply({ id: message.id, result: core.verifyRange(rows) });
      } catch (error) {
        reply({ id: message.id, error: "verification failed: " + describe(error) });
      }
    }),
    (error) => reply({ id: message.id, error: "reading receipts " + message.from + ".." + message.to + " failed: " + describe(error) }),
  );
});
`;

interface Job {
  resolve(result: RangeResult): void;
  reject(error: Error): void;
}

interface Thread {
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
  exited: boolean;
}

/** A range of receipts by seq: from < seq <= to (bigint text). */
export interface SeqRange {
  readonly from: string;
  readonly to: string;
}

export class VerifierThreads {
  private readonly threads: Thread[] = [];
  private nextId = 1;

  private configured = false;

  /** Starts the threads (and their connections) now; they verify once `configure` has run. */
  constructor(count: number, readonly connection?: VerifierConnection) {
    const workerData = {
      connection: connection ? { connectionString: connection.connectionString } : null,
      pgPath: connection ? require.resolve("pg") : null,
      selectRange: SELECT_RANGE,
    };
    for (let i = 0; i < count; i++) {
      // Plain JavaScript: no loader hooks of the parent's execArgv (tsx, ts-node) to start.
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData, execArgv: [] });
      const thread: Thread = { worker, jobs: new Map(), exited: false };
      worker.on("message", (message: { id: number; result?: RangeResult; error?: string }) => {
        const job = thread.jobs.get(message.id);
        thread.jobs.delete(message.id);
        if (!job) return;
        if (message.error !== undefined) job.reject(new Error(`verifier thread: ${message.error}`));
        else job.resolve(message.result as RangeResult);
      });
      const failAll = (error: Error) => {
        for (const job of thread.jobs.values()) job.reject(error);
        thread.jobs.clear();
      };
      worker.on("error", (error) => failAll(new Error(`verifier thread failed: ${error.message}`)));
      worker.on("exit", (code) => {
        thread.exited = true;
        failAll(new Error(`verifier thread exited (code ${code}) before finishing its ranges`));
      });
      this.threads.push(thread);
    }
  }

  /** The keys and key problems every range is checked with (see RangeConfig). */
  configure(config: RangeConfig): void {
    for (const thread of this.threads) thread.worker.postMessage({ config });
    this.configured = true;
  }

  get size(): number {
    return this.threads.length;
  }

  /** A thread with room for another range, or null when all have PIPELINE ranges. */
  private available(): Thread | null {
    let best: Thread | null = null;
    for (const thread of this.threads) {
      if (thread.exited || thread.jobs.size >= PIPELINE) continue;
      if (!best || thread.jobs.size < best.jobs.size) best = thread;
    }
    return best;
  }

  hasRoom(): boolean {
    return this.available() !== null;
  }

  /** Verifies a range on a thread with room (read by the thread itself unless `rows` are given). */
  verify(range: SeqRange, rows?: RangeRow[]): Promise<RangeResult> {
    const thread = this.available();
    if (!thread) return Promise.reject(new Error("verifier threads: no thread has room for another range"));
    if (!this.configured) return Promise.reject(new Error("verifier threads: not configured"));
    if (!rows && !this.connection) return Promise.reject(new Error("verifier threads: no connection to read receipts with"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      thread.jobs.set(id, { resolve, reject });
      thread.worker.postMessage(rows ? { id, from: range.from, to: range.to, rows } : { id, from: range.from, to: range.to });
    });
  }

  /** Ends each thread's connection, then the thread; a thread that does not end is terminated. */
  async close(): Promise<void> {
    await Promise.all(
      this.threads.map(async (thread) => {
        if (thread.exited) return;
        const exited = new Promise<void>((resolve) => thread.worker.once("exit", () => resolve()));
        thread.worker.postMessage({ close: true });
        const timer = setTimeout(() => void thread.worker.terminate(), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** Every column as PostgreSQL's text output: the checks compare and hash exactly that text. */
const RAW_TEXT = { getTypeParser: () => (value: string) => value };

export interface RangeReader {
  read(range: SeqRange): Promise<RangeRow[]>;
  close(): Promise<void>;
}

/** A connection of its own that reads ranges as the threads do (array rows of text). */
export async function openRangeReader(connection: VerifierConnection): Promise<RangeReader> {
  const client = new Client({ connectionString: connection.connectionString, application_name: "knhk verify-chain" });
  let broken: Error | null = null;
  client.on("error", (error) => {
    broken ??= error;
  });
  await client.connect();
  // One query at a time (pg queues no more): each read waits for the one before.
  let tail: Promise<unknown> = Promise.resolve();
  return {
    read(range) {
      const query: QueryArrayConfig = { name: "knhk-verify-range", text: SELECT_RANGE, values: [range.from, range.to], rowMode: "array", types: RAW_TEXT as never };
      const rows = tail.then(async () => {
        if (broken) throw broken;
        try {
          return (await client.query(query)).rows as RangeRow[];
        } catch (error) {
          throw new Error(`reading receipts ${range.from}..${range.to} failed: ${(error as Error).message}`);
        }
      });
      tail = rows.catch(() => undefined);
      return rows;
    },
    close: () => client.end().catch(() => undefined),
  };
}
