/**
 * The stack config schema: one zod schema per `knhk:<section>` (in `infra/config/<section>.ts`),
 * composed here. `parseStackConfig` is pure so it is tested without Pulumi; `infra/index.ts`
 * feeds it the raw stack config. Any invalid value, unknown key or unknown `knhk:*` section
 * stops the program before a resource is declared, naming the full key, the value and what is
 * allowed.
 */
import { z } from "zod";
import { appSection } from "./config/app";
import { awsSection } from "./config/aws";
import { grafanaSection } from "./config/grafana";
import { kubernetesSection } from "./config/kubernetes";
import { ledgerJobsSection } from "./config/ledger-jobs";
import { monitoringSection } from "./config/monitoring";
import { namespaceSection } from "./config/namespace";
import { patroniSection } from "./config/patroni";
import { redisSection } from "./config/redis";
import { vaultSection } from "./config/vault";
import type { AppConfig } from "./config/app";
import { apiTlsIssues, monitoringIssues, oidcIssues, resolvePool, volumeIssues, type StackIssue } from "./config/stack-rules";

export const CONFIG_NAMESPACE = "knhk";

/** Every `knhk:<section>` key the program understands, with its schema. */
export const SECTIONS = {
  app: appSection,
  namespace: namespaceSection,
  patroni: patroniSection,
  redis: redisSection,
  kubernetes: kubernetesSection,
  monitoring: monitoringSection,
  grafana: grafanaSection,
  vault: vaultSection,
  aws: awsSection,
  ledgerJobs: ledgerJobsSection,
} as const;
export type SectionName = keyof typeof SECTIONS;

/** Each section as its schema outputs it; `app` with the pool sizes the stack rules resolved. */
export type StackConfig = { readonly stack: string } & {
  readonly [K in SectionName]: K extends "app" ? AppConfig : z.infer<(typeof SECTIONS)[K]>;
};

export type { AppConfig } from "./config/app";
export type { NamespaceConfig } from "./config/namespace";
export type { PatroniConfig } from "./config/patroni";
export type { RedisConfig } from "./config/redis";
export type { KubernetesConfig } from "./config/kubernetes";
export type { MonitoringConfig } from "./config/monitoring";
export type { GrafanaConfig } from "./config/grafana";
export type { VaultConfig } from "./config/vault";
export type { AwsConfig } from "./config/aws";

/** Raised for an invalid stack config; `problems` holds one line per offending key. */
export class StackConfigError extends Error {
  readonly stackName: string;
  readonly problems: readonly string[];
  constructor(stack: string, problems: readonly string[]) {
    super(`invalid config for stack "${stack}":\n  - ${problems.join("\n  - ")}`);
    this.name = "StackConfigError";
    this.stackName = stack;
    this.problems = problems;
  }
}

/**
 * Validates the raw stack config (`{"knhk:app": {...} | "<json>", "aws:region": "...", ...}`;
 * keys outside `knhk:` belong to providers and are ignored) and applies defaults.
 * `secretKeys` lists full keys whose values must never appear in messages.
 */
export function parseStackConfig(stack: string, raw: Record<string, unknown>, secretKeys: readonly string[] = []): StackConfig {
  const problems: string[] = [];
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) problems.push(`stack name "${stack}" may only contain letters, digits, '_', '.', '-'`);

  const values: Partial<Record<SectionName, unknown>> = {};
  for (const [key, value] of Object.entries(raw)) {
    const [ns, ...rest] = key.split(":");
    if (ns !== CONFIG_NAMESPACE) continue;
    const section = rest.join(":");
    if (!(section in SECTIONS)) {
      problems.push(`${key}: unknown config key (allowed: ${Object.keys(SECTIONS).map((s) => `${CONFIG_NAMESPACE}:${s}`).join(", ")})`);
      continue;
    }
    values[section as SectionName] = decode(key, value, problems);
  }

  const parsed: Record<string, unknown> = { stack };
  for (const [section, schema] of Object.entries(SECTIONS) as [SectionName, z.ZodType][]) {
    const fullKey = `${CONFIG_NAMESPACE}:${section}`;
    const result = schema.safeParse(values[section] ?? {}, { reportInput: true });
    if (result.success) {
      parsed[section] = result.data;
    } else {
      const secret = secretKeys.some((k) => k === fullKey || k.startsWith(`${fullKey}.`));
      for (const issue of result.error.issues) problems.push(describeIssue(fullKey, schema, issue, secret));
    }
  }
  problems.push(...applyStackRules(stack, parsed, secretKeys));
  if (problems.length > 0) throw new StackConfigError(stack, problems);
  return parsed as unknown as StackConfig;
}

/** Cross-section and per-stack rules (config/stack-rules.ts), on the sections that parsed; resolves `app`. */
function applyStackRules(stack: string, parsed: Record<string, unknown>, secretKeys: readonly string[]): string[] {
  const app = parsed.app as z.infer<typeof appSection> | undefined;
  const patroni = parsed.patroni as z.infer<typeof patroniSection> | undefined;
  const monitoring = parsed.monitoring as z.infer<typeof monitoringSection> | undefined;
  const issues: StackIssue[] = monitoring ? monitoringIssues(stack, monitoring) : [];
  if (app) issues.push(...oidcIssues(stack, app), ...apiTlsIssues(stack, app));
  const aws = parsed.aws as z.infer<typeof awsSection> | undefined;
  const redis = parsed.redis as z.infer<typeof redisSection> | undefined;
  if (aws && patroni && redis) issues.push(...volumeIssues(aws, { patroni, redis }));
  if (app && patroni) {
    const pool = resolvePool(app, patroni);
    issues.push(...pool.issues);
    if (pool.app) parsed.app = pool.app;
  }
  return issues.map((issue) => {
    const key = keyOf(`${CONFIG_NAMESPACE}:${issue.section}`, issue.path);
    const secret = secretKeys.some((k) => key === k || key.startsWith(`${k}.`) || key.startsWith(`${k}[`));
    return `${key} = ${showValue(issue.value, secret)}: ${issue.message}`;
  });
}

/** Pulumi hands structured values over as JSON text; stack files in tests may be objects. */
function decode(key: string, value: unknown, problems: string[]): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    problems.push(`${key} = ${JSON.stringify(value)}: must be an object (set nested values with \`pulumi config set --path ${key}.<field> <value>\`)`);
    return undefined;
  }
}

function keyOf(fullKey: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((k, p) => (typeof p === "number" ? `${k}[${p}]` : `${k}.${String(p)}`), fullKey);
}

function showValue(value: unknown, secret: boolean): string {
  if (secret) return "[secret]";
  if (value === undefined) return "(missing)";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describeIssue(fullKey: string, schema: z.ZodType, issue: z.core.$ZodIssue, secret: boolean): string {
  if (issue.code === "unrecognized_keys") {
    const allowed = objectKeysAt(schema, issue.path);
    const allowedText = allowed ? ` (allowed: ${allowed.join(", ")})` : "";
    return issue.keys.map((k) => `${keyOf(fullKey, [...issue.path, k])}: unknown key${allowedText}`).join("; ");
  }
  const key = keyOf(fullKey, issue.path);
  return `${key} = ${showValue(valueAt(issue), secret)}: ${issue.message}`;
}

/** Union issues carry the whole object as input; show the field the path names instead. */
function valueAt(issue: z.core.$ZodIssue): unknown {
  const input = issue.input;
  const last = issue.path[issue.path.length - 1];
  if (input !== null && typeof input === "object" && !Array.isArray(input) && typeof last === "string" && last in input) {
    return (input as Record<string, unknown>)[last];
  }
  return input;
}

/** The keys an object schema accepts at `path` (unwrapping defaults/optionals), for messages. */
function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let current: unknown = schema;
  for (let i = 0; ; i++) {
    current = unwrap(current);
    // A discriminated union (knhk:aws): its options share their keys.
    const options = (current as { def?: { options?: unknown[] } }).def?.options;
    if (options?.length) current = unwrap(options[options.length - 1]);
    const shape = (current as { shape?: Record<string, unknown> }).shape;
    if (!shape) return undefined;
    if (i === path.length) return Object.keys(shape);
    current = shape[String(path[i])];
    if (current === undefined) return undefined;
  }
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { innerType?: unknown; in?: unknown } };
  while (s?.def?.innerType ?? s?.def?.in) s = (s.def.innerType ?? s.def.in) as typeof s;
  return s;
}
