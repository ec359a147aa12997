/**
 * Parallel ed25519 signing for large batches. Signing is most of the CPU cost of an append and it
 * happens while the chain head is locked, so spreading a batch over one thread per core shortens
 * the lock hold and raises the throughput of every process sharing the chain.
 *
 * Threads are started on first use and unref'd while idle, so they never keep a process alive.
 */
import type { KeyObject } from "node:crypto";
import { Worker } from "node:worker_threads";

const SIGNING_WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const crypto = require("node:crypto");
let key = null;
parentPort.on("message", (message) => {
  if (message.key) { key = message.key; return; }
  try {
    const out = new Array(message.hashes.length);
    for (let i = 0; i < message.hashes.length; i++) {
      out[i] = crypto.sign(null, Buffer.from(message.hashes[i], "hex"), key).toString("base64");
    }
    parentPort.postMessage({ id: message.id, signatures: out });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: String(error && error.message || error) });
  }
});
`;

interface Job {
  resolve(signatures: string[]): void;
  reject(error: Error): void;
}

export class SigningPool {
  private workers: Worker[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;

  constructor(
    private readonly privateKey: KeyObject,
    private readonly threads: number,
  ) {}

  private start(): void {
    for (let i = 0; i < this.threads; i++) {
      const worker = new Worker(SIGNING_WORKER_SOURCE, { eval: true });
      worker.postMessage({ key: this.privateKey });
      worker.on("message", (m: { id: number; signatures?: string[]; error?: string }) => {
        const job = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        if (this.jobs.size === 0) this.workers.forEach((w) => w.unref());
        if (!job) return;
        if (m.error) job.reject(new Error(`signing thread failed: ${m.error}`));
        else job.resolve(m.signatures ?? []);
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

  private run(worker: Worker, hashes: string[]): Promise<string[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, hashes });
    });
  }

  /** Signatures (base64) for the hex hashes, in order. */
  async signMany(hashes: string[]): Promise<string[]> {
    if (this.workers.length === 0) this.start();
    if (this.workers.length === 0) throw new Error("no signing threads available");
    const parts = Math.min(this.workers.length, hashes.length);
    const size = Math.ceil(hashes.length / parts);
    const chunks = await Promise.all(
      Array.from({ length: parts }, (_, i) => this.run(this.workers[i], hashes.slice(i * size, (i + 1) * size))),
    );
    return chunks.flat();
  }

  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
