/**
 * Warm-up plus repeated timed runs. Each repetition calls `fn` `iterations` times (or once when the
 * function does its own looping and returns the number of operations it performed) and records
 * nanoseconds per operation, so callers get a distribution instead of one lucky number.
 */
import { summarize, Summary } from "./stats";

export interface RepeatOptions {
  /** Repetitions discarded before measuring (JIT tier-up, caches, CPU frequency). Default 3. */
  readonly warmup?: number;
  /** Measured repetitions. Default 9. */
  readonly repetitions?: number;
}

export interface Measurement {
  /** ns per operation, one entry per measured repetition. */
  readonly samples: number[];
  readonly summary: Summary;
}

/**
 * `body` runs one repetition and returns how many operations it performed; the elapsed wall time
 * divided by that count is the sample (ns/op).
 */
export function measureNsPerOp(body: () => number, options: RepeatOptions = {}): Measurement {
  const warmup = options.warmup ?? 3;
  const repetitions = options.repetitions ?? 9;
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`warmup must be a non-negative integer, got ${warmup}`);
  if (!Number.isInteger(repetitions) || repetitions < 1) {
    throw new Error(`repetitions must be a positive integer, got ${repetitions}`);
  }
  for (let i = 0; i < warmup; i++) body();
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const start = process.hrtime.bigint();
    const ops = body();
    const elapsed = Number(process.hrtime.bigint() - start);
    if (!(ops > 0)) throw new Error(`benchmark body must return a positive operation count, got ${ops}`);
    samples.push(elapsed / ops);
  }
  return { samples, summary: summarize(samples) };
}

/** Same as measureNsPerOp for async bodies (servers, databases). Samples are ns/op. */
export async function measureNsPerOpAsync(
  body: () => Promise<number>,
  options: RepeatOptions = {},
): Promise<Measurement> {
  const warmup = options.warmup ?? 1;
  const repetitions = options.repetitions ?? 5;
  if (!Number.isInteger(repetitions) || repetitions < 1) {
    throw new Error(`repetitions must be a positive integer, got ${repetitions}`);
  }
  for (let i = 0; i < warmup; i++) await body();
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    const start = process.hrtime.bigint();
    const ops = await body();
    const elapsed = Number(process.hrtime.bigint() - start);
    if (!(ops > 0)) throw new Error(`benchmark body must return a positive operation count, got ${ops}`);
    samples.push(elapsed / ops);
  }
  return { samples, summary: summarize(samples) };
}

/** Repeat an arbitrary measurement (e.g. throughput from a load generator) and summarise it. */
export async function repeat(
  body: () => number | Promise<number>,
  options: RepeatOptions = {},
): Promise<Measurement> {
  const warmup = options.warmup ?? 1;
  const repetitions = options.repetitions ?? 5;
  for (let i = 0; i < warmup; i++) await body();
  const samples: number[] = [];
  for (let i = 0; i < repetitions; i++) samples.push(await body());
  return { samples, summary: summarize(samples) };
}
