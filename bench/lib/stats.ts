/** Order statistics over repeated benchmark samples: median and spread, never a single run. */

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  /** First and third quartiles (linear interpolation) and their difference. */
  readonly q1: number;
  readonly q3: number;
  readonly iqr: number;
}

/** Quantile q in [0, 1] of an ascending-sorted array, linear interpolation between ranks. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error("quantile: samples must not be empty");
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile: q must be in [0, 1], got ${q}`);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("summarize: samples must not be empty");
  for (const s of samples) {
    if (!Number.isFinite(s)) throw new Error(`summarize: sample ${s} is not a finite number`);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    q1,
    q3,
    iqr: q3 - q1,
  };
}

/** Ratio of two medians rounded for printing; Infinity when the reference is zero. */
export function ratio(value: number, reference: number): number {
  return reference === 0 ? Infinity : value / reference;
}
