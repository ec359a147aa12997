/**
 * Hot path operation codes, park reasons and the result-code encoding shared by the WebAssembly
 * kernel, the TypeScript wrapper and the C reference (bench/reference/hotpath.c).
 *
 * Data model: predicate p owns one run, rows [8p, 8p + len) of the columns S, P, O, D
 * (D = datatype id of the object). len <= 8 (the Chatman constant); a tick is one row step, so
 * an executed operation costs exactly `len` ticks. Values are 32-bit integers (interned ids or
 * literal integers): equality is bitwise, ordering (COMPARE_O_GT/LT/GE/LE) is signed int32.
 *
 * Semantics over the rows of run(p) (the s/o/k arguments an operation does not name are ignored):
 *   ASK_SP(s,p)              some row has S = s
 *   ASK_SPO(s,p,o)           some row has S = s and O = o
 *   ASK_OP(p,o)              some row has O = o
 *   COUNT_SP_GE/LE/EQ(s,p,k) #rows with S = s  >= / <= / = k
 *   COUNT_OP_GE/LE/EQ(p,o,k) #rows with O = o  >= / <= / = k
 *   UNIQUE_SP(s,p)           exactly one row has S = s
 *   COMPARE_O_EQ/GT/LT/GE/LE(p,o)  some row has O = / > / < / >= / <= o (any subject)
 *   VALIDATE_DATATYPE_SP(s,p,o=d)  at least one row has S = s, and every row with S = s has D = d
 */

export const Op = {
  ASK_SP: 1,
  ASK_SPO: 2,
  ASK_OP: 3,
  COUNT_SP_GE: 4,
  COUNT_SP_LE: 5,
  COUNT_SP_EQ: 6,
  COUNT_OP_GE: 7,
  COUNT_OP_LE: 8,
  COUNT_OP_EQ: 9,
  UNIQUE_SP: 10,
  COMPARE_O_EQ: 11,
  COMPARE_O_GT: 12,
  COMPARE_O_LT: 13,
  COMPARE_O_GE: 14,
  COMPARE_O_LE: 15,
  VALIDATE_DATATYPE_SP: 16,
} as const;

export type OpName = keyof typeof Op;
export type OpCode = (typeof Op)[OpName];

export const OP_NAMES: readonly OpName[] = Object.keys(Op) as OpName[];
export const MAX_OP = 16;

const NAME_BY_CODE: readonly (OpName | undefined)[] = (() => {
  const names: (OpName | undefined)[] = new Array(MAX_OP + 1).fill(undefined);
  for (const name of OP_NAMES) names[Op[name]] = name;
  return names;
})();

export function opName(code: number): OpName | undefined {
  return NAME_BY_CODE[code];
}

/** Rows per run and ticks per operation: the Chatman constant. */
export const MAX_RUN_LENGTH = 8;

/** Why work left the hot path. 0 means "executed". */
export const ParkReason = {
  /** The predicate's run holds more than 8 rows: evaluating it would exceed the tick budget. */
  run_too_long: 1,
  /** Append to a run that already holds 8 rows: the row is not stored, the run becomes too long. */
  run_full: 2,
  /** The predicate id has no run in this kernel (id outside the run table, e.g. interner full). */
  capacity: 3,
  /** The operation code is not a hot path operation. */
  unsupported_op: 4,
} as const;

export type ParkReasonName = keyof typeof ParkReason;
export const PARK_REASON_NAMES: readonly ParkReasonName[] = Object.keys(ParkReason) as ParkReasonName[];
/** Park counters are indexed by reason code; slot 0 is unused. */
export const PARK_COUNTER_SLOTS = 8;

const REASON_BY_CODE: readonly (ParkReasonName | undefined)[] = (() => {
  const names: (ParkReasonName | undefined)[] = new Array(PARK_COUNTER_SLOTS).fill(undefined);
  for (const name of PARK_REASON_NAMES) names[ParkReason[name]] = name;
  return names;
})();

/*
 * Result code (one int32, so an evaluation never allocates):
 *   bit 0       boolean result of an executed operation
 *   bits 8-15   ticks spent (rows stepped), 0..8
 *   bits 16-23  park reason code, 0 when executed
 */
export const RESULT_BIT = 1;
export const TICKS_SHIFT = 8;
export const REASON_SHIFT = 16;

export function resultOf(code: number): boolean {
  return (code & RESULT_BIT) !== 0;
}

export function ticksOf(code: number): number {
  return (code >>> TICKS_SHIFT) & 0xff;
}

export function isParked(code: number): boolean {
  return code >>> REASON_SHIFT !== 0;
}

export function parkReasonCodeOf(code: number): number {
  return (code >>> REASON_SHIFT) & 0xff;
}

export function parkReasonOf(code: number): ParkReasonName | undefined {
  return REASON_BY_CODE[parkReasonCodeOf(code)];
}

export function parkedCode(reason: number): number {
  return reason << REASON_SHIFT;
}

export interface DecodedResult {
  readonly parked: boolean;
  readonly reason?: ParkReasonName;
  readonly result: boolean;
  readonly ticks: number;
}

/** Object form of a result code, for logs and tests (allocates: not for the hot loop). */
export function decodeResult(code: number): DecodedResult {
  return isParked(code)
    ? { parked: true, reason: parkReasonOf(code), result: false, ticks: 0 }
    : { parked: false, result: resultOf(code), ticks: ticksOf(code) };
}
