/**
 * Knowledge snapshot content: its schema, its hash, and the pure functions that apply a proposed
 * change and measure how far two contents differ.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import { z } from "zod";
import {
  DATATYPES,
  SECTORS,
  type Datatype,
  type EventSchema,
  type Guard,
  type JsonValue,
  type KnowledgeContent,
  type ProposalChange,
} from "./types";

export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const FIELD_PATH_PATTERN = /^(value|metadata\.[A-Za-z0-9_-]{1,64})$/;
/** Guard bounds stay strictly inside int32 so the kernel's clamped encoding compares exactly. */
export const GUARD_BOUND_LIMIT = 0x7fffffff - 1;

const eventType = z.string().regex(EVENT_TYPE_PATTERN, "must be 1-128 characters of A-Z a-z 0-9 _ . : -");
const datatype = z.enum(DATATYPES);
const fieldPath = z.string().regex(FIELD_PATH_PATTERN, 'must be "value" or "metadata.<key>"');
const bound = z.number().int("must be an integer").min(-GUARD_BOUND_LIMIT).max(GUARD_BOUND_LIMIT);
const positiveInt = z.number().int().positive();

export const eventSchemaSchema = z
  .object({ value_type: datatype, metadata: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), datatype) })
  .strict();

export const guardSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_.:-]{0,127}$/),
    sector: z.enum([...SECTORS, "*"]),
    event_type: z.union([z.literal("*"), eventType]),
    check: z.discriminatedUnion("op", [
      z.object({ op: z.literal("required"), path: fieldPath }).strict(),
      z.object({ op: z.literal("datatype"), path: fieldPath, datatype }).strict(),
      z.object({ op: z.literal("max"), path: fieldPath, max: bound }).strict(),
      z.object({ op: z.literal("min"), path: fieldPath, min: bound }).strict(),
    ]),
    action: z.enum(["reject", "flag"]),
  })
  .strict();

export const knowledgeContentSchema = z
  .object({
    thresholds: z
      .object({
        high_frequency: z.object({ default: positiveInt, by_event_type: z.record(eventType, positiveInt) }).strict(),
        error_spike: z
          .object({
            min_errors: positiveInt,
            ratio: z.number().gt(0).max(1),
            factor: z.number().min(1),
            baseline_windows: positiveInt.max(1000),
          })
          .strict(),
        silence: z.object({ lookback_windows: positiveInt.max(1000) }).strict(),
        schema_mismatch: z.object({ min_ratio: z.number().gt(0).max(1) }).strict(),
      })
      .strict(),
    schemas: z.record(eventType, eventSchemaSchema),
    guards: z.array(guardSchema).superRefine((guards, ctx) => {
      const seen = new Set<string>();
      guards.forEach((g, i) => {
        if (seen.has(g.id)) ctx.addIssue({ code: "custom", path: [i, "id"], message: `guard id ${g.id} is used twice` });
        seen.add(g.id);
      });
    }),
    inactive_event_types: z.array(eventType),
  })
  .strict();

export const proposalChangeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("adjust_threshold"), event_type: eventType, from: positiveInt, to: positiveInt }).strict(),
  z.object({ kind: z.literal("add_schema"), event_type: eventType, schema: eventSchemaSchema }).strict(),
  z.object({ kind: z.literal("add_guard"), guard: guardSchema }).strict(),
  z.object({ kind: z.literal("mark_inactive"), event_type: eventType }).strict(),
]);

/** "path.to.field: reason" of the first issue, for check details and error messages. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue.path.join(".") || "(root)"}: ${issue.message}`;
}

export const GENESIS_CONTENT: KnowledgeContent = {
  thresholds: {
    high_frequency: { default: 100, by_event_type: {} },
    error_spike: { min_errors: 5, ratio: 0.2, factor: 2, baseline_windows: 10 },
    silence: { lookback_windows: 10 },
    schema_mismatch: { min_ratio: 0.2 },
  },
  schemas: {},
  guards: [],
  inactive_event_types: [],
};

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("value cannot be canonicalized");
  return text;
}

/** SHA-256 (hex) of the RFC 8785 canonical JSON of the content. */
export function contentHash(content: KnowledgeContent): string {
  return createHash("sha256").update(canonicalJson(content)).digest("hex");
}

export function highFrequencyThreshold(content: KnowledgeContent, type: string): number {
  return content.thresholds.high_frequency.by_event_type[type] ?? content.thresholds.high_frequency.default;
}

/** The base content with the change applied. Every change kind is idempotent. */
export function applyChange(base: KnowledgeContent, change: ProposalChange): KnowledgeContent {
  switch (change.kind) {
    case "adjust_threshold":
      return {
        ...base,
        thresholds: {
          ...base.thresholds,
          high_frequency: {
            ...base.thresholds.high_frequency,
            by_event_type: { ...base.thresholds.high_frequency.by_event_type, [change.event_type]: change.to },
          },
        },
      };
    case "add_schema":
      return { ...base, schemas: { ...base.schemas, [change.event_type]: change.schema } };
    case "add_guard":
      return { ...base, guards: [...base.guards.filter((g) => g.id !== change.guard.id), change.guard] };
    case "mark_inactive":
      return base.inactive_event_types.includes(change.event_type)
        ? base
        : { ...base, inactive_event_types: [...base.inactive_event_types, change.event_type] };
  }
}

/**
 * Entries that differ between two contents, at the granularity a change addresses: each
 * threshold field, each per-event-type threshold, each schema, each guard (by id), each inactive
 * event type.
 */
export function changedEntries(a: KnowledgeContent, b: KnowledgeContent): string[] {
  const changed: string[] = [];
  const same = (x: unknown, y: unknown) => canonicalJson(x ?? null) === canonicalJson(y ?? null);
  const keyed = (prefix: string, x: Readonly<Record<string, unknown>>, y: Readonly<Record<string, unknown>>) => {
    for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (!same(x[key], y[key])) changed.push(`${prefix}.${key}`);
    }
  };
  const ta = a.thresholds;
  const tb = b.thresholds;
  if (ta.high_frequency.default !== tb.high_frequency.default) changed.push("thresholds.high_frequency.default");
  keyed("thresholds.high_frequency.by_event_type", ta.high_frequency.by_event_type, tb.high_frequency.by_event_type);
  keyed("thresholds.error_spike", ta.error_spike, tb.error_spike);
  keyed("thresholds.silence", ta.silence, tb.silence);
  keyed("thresholds.schema_mismatch", ta.schema_mismatch, tb.schema_mismatch);
  keyed("schemas", a.schemas, b.schemas);
  const guards = (c: KnowledgeContent) => Object.fromEntries(c.guards.map((g) => [g.id, g]));
  keyed("guards", guards(a), guards(b));
  const inactive = (c: KnowledgeContent) => Object.fromEntries(c.inactive_event_types.map((t) => [t, true]));
  keyed("inactive_event_types", inactive(a), inactive(b));
  return changed;
}

/** The jsonb_typeof() name of a JSON value. */
export function datatypeOf(value: JsonValue | undefined): Datatype | undefined {
  if (value === undefined) return undefined;
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  switch (typeof value) {
    case "boolean":
      return "boolean";
    case "number":
      return "number";
    case "string":
      return "string";
    default:
      return "object";
  }
}

/** Whether a guard applies to an observation of this sector and event type. */
export function guardApplies(guard: Guard, sector: string, type: string): boolean {
  return (guard.sector === "*" || guard.sector === sector) && (guard.event_type === "*" || guard.event_type === type);
}

/** The field a guard path names: "value" or "metadata.<key>". */
export function fieldAt(path: string, value: JsonValue, metadata: Readonly<Record<string, JsonValue>>): JsonValue | undefined {
  if (path === "value") return value;
  const key = path.slice("metadata.".length);
  return Object.prototype.hasOwnProperty.call(metadata, key) ? metadata[key] : undefined;
}

export function conformsToSchema(schema: EventSchema, value: JsonValue, metadata: Readonly<Record<string, JsonValue>>): boolean {
  if (datatypeOf(value) !== schema.value_type) return false;
  return Object.entries(schema.metadata).every(([key, type]) => datatypeOf(fieldAt(`metadata.${key}`, value, metadata)) === type);
}
