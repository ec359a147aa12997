/** Byte layout of the kernel's linear memory (shared with the C reference's struct of arrays). */
import { MAX_RUN_LENGTH, PARK_COUNTER_SLOTS } from "./ops";

export interface KernelLayout {
  readonly runs: number;
  readonly maxBatch: number;
  readonly park: number;
  readonly len: number;
  readonly S: number;
  readonly P: number;
  readonly O: number;
  readonly D: number;
  readonly ops: number;
  readonly out: number;
  readonly bytes: number;
  readonly pages: number;
}

const PAGE = 65536;
const align64 = (n: number) => Math.ceil(n / 64) * 64;

export function computeLayout(runs: number, maxBatch: number): KernelLayout {
  const column = runs * MAX_RUN_LENGTH * 4;
  const park = 64;
  const len = align64(park + PARK_COUNTER_SLOTS * 4);
  const S = align64(len + runs * 4);
  const P = align64(S + column);
  const O = align64(P + column);
  const D = align64(O + column);
  const ops = align64(D + column);
  const out = align64(ops + maxBatch * 16);
  const bytes = align64(out + maxBatch * 4);
  return { runs, maxBatch, park, len, S, P, O, D, ops, out, bytes, pages: Math.ceil(bytes / PAGE) };
}
