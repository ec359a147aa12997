/**
 * KNHK hot path: a tick-bounded, allocation-free structure-of-arrays triple store.
 *
 * Public API (what the service uses):
 *
 *   const kernel = await createKernel({ capacity: 8192, maxBatch: 1024, observer });
 *     One run of at most 8 rows per predicate id: capacity / 8 predicate ids. The first call in a
 *     process assembles the WebAssembly module (~50 ms); later calls reuse it.
 *
 *   Ids: kernel.predicates.intern(name) -> run id 0..runs-1 (NO_ID = -1 when every run is taken);
 *        kernel.terms.intern(name) -> id >= 1 for subjects, objects and datatypes. Objects may also
 *        be literal int32 values (COMPARE_O_* order them as signed int32).
 *
 *   kernel.append(s, p, o, datatype = 0) -> row >= 0, or -ParkReason.run_full / -ParkReason.capacity
 *     when the observation is parked to the warm path. A run that received a 9th row is "too long":
 *     operations on it park with run_too_long until kernel.clearRun(p) / kernel.reset().
 *
 *   kernel.evaluate(Op.ASK_SP, s, p, o, k) -> result code (int32), one guarded operation.
 *     resultOf(code), ticksOf(code) (0..8 = rows stepped), isParked(code), parkReasonOf(code).
 *
 *   Batch: kernel.setBatchOp(i, op, s, p, o, k) (or write kernel.batchOps directly, 4 int32 per
 *     record: [op | k << 8, s, p, o]); kernel.evaluateBatch(n) -> number parked; codes in
 *     kernel.batchResults[0..n).
 *
 *   Admission: an operation is parked (never executed) for unsupported_op, capacity (p has no run)
 *     or run_too_long (run holds > 8 rows); kernel.parkCount(reason) / kernel.parkCounts() are
 *     monotonic counters. No executed operation takes more than 8 ticks.
 *
 *   Observer: createKernel({ observer }) or kernel.setObserver(fn): fn(op, code) after every
 *     evaluation, e.g. `(op, code) => isParked(code) || ticksHistogram.observe(ticksOf(code))`.
 *
 * Operation semantics are documented in ops.ts.
 */
export { createKernel, Kernel } from "./kernel";
export type { HotPathObserver, KernelOptions } from "./kernel";
export { Interner, NO_ID } from "./interner";
export {
  decodeResult,
  isParked,
  MAX_RUN_LENGTH,
  Op,
  OP_NAMES,
  opName,
  PARK_REASON_NAMES,
  ParkReason,
  parkReasonOf,
  resultOf,
  ticksOf,
} from "./ops";
export type { DecodedResult, OpCode, OpName, ParkReasonName } from "./ops";
