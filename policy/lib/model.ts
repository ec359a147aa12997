/**
 * The plain data every policy reads. The engine adapter (`adapter.ts`) and the offline harness
 * (`harness.ts`, fed by `npm run render`'s resources.json) both turn their input into these shapes,
 * so one pure function per policy serves both.
 */

/** One resource as a policy sees it: its inputs, never a live object. */
export interface PolicyInputResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  /** URN of the parent resource (the stack itself, a component, or absent for the root). */
  readonly parent?: string;
  readonly props: Record<string, unknown>;
  /** Property name -> URNs the property's value came from (only known inside the engine). */
  readonly propertyDependencies?: Readonly<Record<string, readonly string[]>>;
}

/** Who is being checked: the stack and how strict its environment is. */
export interface PolicyContext {
  /** Stack name (from the URN), e.g. `prod`. */
  readonly stack: string;
  /** Environment the strict rules key on; the stack tag `knhk:environment` overrides the stack name. */
  readonly environment: string;
  /** Policy configuration (from `--policy-pack-config` or the test helper), defaults applied by the policy. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Stack config values a policy compares against (configured storage classes); undefined if not readable. */
  readonly stackSettings?: StackSettings;
}

/** The few stack config values policies compare rendered resources against. */
export interface StackSettings {
  /** Storage classes configured for StatefulSet volumes (Patroni, Redis). */
  readonly storageClasses: readonly string[];
}

export interface Violation {
  readonly message: string;
  /** For stack policies: the offending resource (absent: the stack as a whole). */
  readonly urn?: string;
}

/** A policy's verdict: violations (possibly none), or "does not apply here" with the reason. */
export type Verdict = readonly Violation[] | NotApplicable;

export interface NotApplicable {
  readonly notApplicable: string;
}

export function notApplicable(reason: string): NotApplicable {
  return { notApplicable: reason };
}

export function isNotApplicable(verdict: Verdict): verdict is NotApplicable {
  return !Array.isArray(verdict);
}

/** `urn:pulumi:<stack>::<project>::<type chain>::<name>` -> its parts. */
export function parseUrn(urn: string): { stack: string; project: string; typeChain: string[]; name: string } {
  const match = /^urn:pulumi:([^:]+)::([^:]+)::(.+?)::(.*)$/.exec(urn);
  if (!match) throw new Error(`not a Pulumi URN: ${JSON.stringify(urn)}`);
  return { stack: match[1], project: match[2], typeChain: match[3].split("$"), name: match[4] };
}

export const STACK_TYPE = "pulumi:pulumi:Stack";

/** Reads a nested property (`a.b[0].c` as ["a","b",0,"c"]) without throwing. */
export function dig(value: unknown, ...path: (string | number)[]): unknown {
  let current: unknown = value;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The value resources.json shows for a secret. */
export const SECRET_PLACEHOLDER = "[secret]";
