/**
 * Guard evaluation on the hot path kernel (app/src/hotpath). For each guard the field it names is
 * loaded into its own predicate run (one row per array element, else one row; subject = the
 * observation being admitted, datatype column = jsonb type id), then one kernel operation decides
 * it. A run that would exceed 8 rows, or a predicate the kernel has no run for, is parked by the
 * kernel's admission; the warm path then decides the guard in TypeScript and keeps the reason.
 */
import type { Kernel } from "../hotpath";
import { isParked, Op, parkReasonOf, resultOf, ticksOf, type OpName } from "../hotpath";
import { datatypeOf, fieldAt } from "./knowledge";
import type { DomainMetrics } from "./metrics";
import { DATATYPES, type Datatype, type Guard, type GuardCheck, type GuardOutcome, type JsonObject, type JsonValue } from "./types";

/** The part of H-hotpath's Kernel the domain uses. */
export type HotPathKernel = Pick<Kernel, "predicates" | "terms" | "append" | "evaluate" | "clearRun">;

const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const VALUE_RUN = "knhk.observation:value";

/** Datatype ids in the kernel's D column (0 = unknown). */
export function datatypeId(type: Datatype | undefined): number {
  return type === undefined ? 0 : DATATYPES.indexOf(type) + 1;
}

/** The kernel operation deciding a check, and how its boolean maps to "passed". */
export function operationOf(check: GuardCheck): { readonly op: OpName; readonly negate: boolean } {
  switch (check.op) {
    case "required":
      return { op: "ASK_SP", negate: false };
    case "datatype":
      return { op: "VALIDATE_DATATYPE_SP", negate: false };
    case "max":
      return { op: "COMPARE_O_GT", negate: true };
    case "min":
      return { op: "COMPARE_O_LT", negate: true };
  }
}

/**
 * The O column value of one element for a max/min check. Bounds are integers strictly inside
 * int32, so ceil (max) / floor (min) and clamping keep "element > max" / "element < min" exact;
 * non-numbers get the value that always violates the bound.
 */
function encodeElement(check: GuardCheck, element: JsonValue): number {
  if (check.op === "max") {
    return typeof element === "number" ? Math.min(INT32_MAX, Math.max(INT32_MIN, Math.ceil(element))) : INT32_MAX;
  }
  return typeof element === "number" ? Math.min(INT32_MAX, Math.max(INT32_MIN, Math.floor(element))) : INT32_MIN;
}

/** Reference semantics of a check, used when admission parks it (and by tests). */
export function evaluateCheckWarm(check: GuardCheck, field: JsonValue | undefined): boolean {
  switch (check.op) {
    case "required":
      return field !== undefined;
    case "datatype":
      return datatypeOf(field) === check.datatype;
    case "max":
    case "min": {
      if (field === undefined) return true;
      const elements = Array.isArray(field) ? field : [field];
      return elements.every((e) => typeof e === "number" && (check.op === "max" ? e <= check.max : e >= check.min));
    }
  }
}

export interface GuardRun {
  readonly outcomes: GuardOutcome[];
  /** Rows written into the kernel (the observation's own value row plus each guard's field rows). */
  readonly appendTicks: number;
  /** Ticks of the executed operations. */
  readonly evaluationTicks: number;
}

export interface RunOptions {
  /** Record knhk_hot_path_ticks / knhk_hot_path_parked_total (ingest does; validation's replays do not). */
  readonly metrics?: DomainMetrics;
}

/**
 * Admits one observation: appends its value row, then evaluates every guard. Synchronous from
 * the first append to the last evaluation, so runs are never shared between two observations.
 */
export function runGuards(
  kernel: HotPathKernel,
  guards: readonly Guard[],
  value: JsonValue,
  metadata: JsonObject,
  options: RunOptions = {},
): GuardRun {
  const subject = kernel.terms.intern("knhk.observation");
  let appendTicks = 0;
  let evaluationTicks = 0;

  const valueRun = kernel.predicates.intern(VALUE_RUN);
  if (valueRun >= 0) {
    kernel.clearRun(valueRun);
    if (kernel.append(subject, valueRun, 0, datatypeId(datatypeOf(value))) >= 0) appendTicks++;
  }

  const outcomes = guards.map((guard): GuardOutcome => {
    const check = guard.check;
    const field = fieldAt(check.path, value, metadata);
    const p = kernel.predicates.intern(`knhk.guard:${check.path}`);
    if (p >= 0) kernel.clearRun(p);
    const elements: readonly JsonValue[] =
      field === undefined ? [] : (check.op === "max" || check.op === "min") && Array.isArray(field) ? field : [field];
    for (const element of elements) {
      const o = check.op === "max" || check.op === "min" ? encodeElement(check, element) : 0;
      if (kernel.append(subject, p, o, datatypeId(datatypeOf(element))) < 0) break; // the run is parked
      appendTicks++;
    }
    const { op, negate } = operationOf(check);
    const argument = check.op === "datatype" ? datatypeId(check.datatype) : check.op === "max" ? check.max : check.op === "min" ? check.min : 0;
    const code = kernel.evaluate(Op[op], subject, p, argument, 0);
    if (p >= 0) kernel.clearRun(p);
    if (isParked(code)) {
      const reason = parkReasonOf(code) ?? "unsupported_op";
      options.metrics?.inc("knhk_hot_path_parked_total", { reason });
      return { guard_id: guard.id, passed: evaluateCheckWarm(check, field), action: guard.action, path: "warm", ticks: 0, parked_reason: reason };
    }
    const ticks = ticksOf(code);
    evaluationTicks += ticks;
    options.metrics?.observe("knhk_hot_path_ticks", { operation: op }, ticks);
    return { guard_id: guard.id, passed: resultOf(code) !== negate, action: guard.action, path: "hot", ticks };
  });
  options.metrics?.observe("knhk_hot_path_ticks", { operation: "OBSERVATION_APPEND" }, appendTicks);
  return { outcomes, appendTicks, evaluationTicks };
}
