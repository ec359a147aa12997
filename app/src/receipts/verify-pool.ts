/**
 * Parallel ed25519 verification of signatures a remote signer (Vault transit) returned, before
 * the batch commits. An ed25519 verification costs about three signatures, and it happens while
 * the chain head is locked, so a large batch is spread over one thread per core.
 *
 * Threads are started on first use and unref'd while idle, so they never keep a process alive.
 */
import { verify, type KeyObject } from "node:crypto";
import { Worker } from "node:worker_threads";

const VERIFY_WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const crypto = require("node:crypto");
parentPort.on("message", (m) => {
  try {
    let bad = -1;
    for (let i = 0; i < m.hashes.length; i++) {
      if (!crypto.verify(null, Buffer.from(m.hashes[i], "hex"), m.key, Buffer.from(m.signatures[i], "base64"))) { bad = i; break; }
    }
    parentPort.postMessage({ id: m.id, bad });
  } catch (error) {
    parentPort.postMessage({ id: m.id, error: String(error && error.message || error) });
  }
});
`;

/** Batches smaller than this are verified in the calling thread (a thread hop costs more). */
const PARALLEL_MIN = 16;

interface Job {
  resolve(bad: number): void;
  reject(error: Error): void;
}

export class VerifyPool {
  private workers: Worker[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;

  constructor(private readonly threads: number) {}

  /** Index of the first signature that does not verify with `key`, or -1 when all do. */
  async firstInvalid(key: KeyObject, hashes: readonly string[], signatures: readonly string[]): Promise<number> {
    if (this.threads < 2 || hashes.length < PARALLEL_MIN) return firstInvalidInline(key, hashes, signatures, 0, hashes.length);
    if (this.workers.length === 0) this.start();
    const parts = Math.min(this.workers.length, hashes.length);
    const size = Math.ceil(hashes.length / parts);
    const results = await Promise.all(
      Array.from({ length: parts }, (_, i) => this.run(this.workers[i], key, hashes.slice(i * size, (i + 1) * size), signatures.slice(i * size, (i + 1) * size))),
    );
    const part = results.findIndex((bad) => bad >= 0);
    return part < 0 ? -1 : part * size + results[part];
  }

  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private start(): void {
    for (let i = 0; i < this.threads; i++) {
      const worker = new Worker(VERIFY_WORKER_SOURCE, { eval: true });
      worker.on("message", (m: { id: number; bad?: number; error?: string }) => {
        const job = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        if (this.jobs.size === 0) this.workers.forEach((w) => w.unref());
        if (!job) return;
        if (m.error) job.reject(new Error(`verification thread failed: ${m.error}`));
        else job.resolve(m.bad ?? -1);
      });
      worker.on("error", (error) => {
        for (const job of this.jobs.values()) job.reject(error);
        this.jobs.clear();
        this.workers = this.workers.filter((w) => w !== worker);
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  private run(worker: Worker, key: KeyObject, hashes: string[], signatures: string[]): Promise<number> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, key, hashes, signatures });
    });
  }
}

function firstInvalidInline(key: KeyObject, hashes: readonly string[], signatures: readonly string[], from: number, to: number): number {
  for (let i = from; i < to; i++) {
    if (!verify(null, Buffer.from(hashes[i], "hex"), key, Buffer.from(signatures[i], "base64"))) return i;
  }
  return -1;
}
