import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";

const labelSchema = z.object({ values: z.array(z.string()).min(1).optional() }).strict();
const metricSchema = z
  .object({
    name: z.string().regex(/^knhk_[a-z0-9_]+$/, "service metrics are snake_case with the knhk_ prefix"),
    type: z.enum(["counter", "gauge", "histogram"]),
    unit: z.string().min(1),
    help: z.string().min(1),
    buckets: z.array(z.number().positive()).min(1).optional(),
    labels: z.record(z.string().regex(/^[a-z_][a-z0-9_]*$/), labelSchema),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.type === "counter" && !m.name.endsWith("_total")) {
      ctx.addIssue({ code: "custom", message: `counter ${m.name} must end in _total` });
    }
    if (m.type === "histogram" && !m.buckets) {
      ctx.addIssue({ code: "custom", message: `histogram ${m.name} needs buckets` });
    }
    if (m.type !== "histogram" && m.buckets) {
      ctx.addIssue({ code: "custom", message: `${m.type} ${m.name} cannot have buckets` });
    }
  });

const registrySchema = z
  .object({
    service: z.array(metricSchema).min(1),
    defaults: z.array(z.string()).min(1),
    exporters: z.record(z.string(), z.array(z.string()).min(1)),
  })
  .strict();

export type MetricDefinition = z.infer<typeof metricSchema>;
export type TelemetryRegistry = z.infer<typeof registrySchema>;

export const REGISTRY_FILE = join(__dirname, "metrics.yaml");

/** Parses and validates a registry document; throws naming the path of the first bad field. */
export function parseRegistry(text: string): TelemetryRegistry {
  const result = registrySchema.safeParse(parse(text));
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`registry/metrics.yaml: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  const names = result.data.service.map((m) => m.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new Error(`registry/metrics.yaml: metric ${duplicate} is declared twice`);
  return result.data;
}

let cached: TelemetryRegistry | undefined;
export function loadRegistry(): TelemetryRegistry {
  cached ??= parseRegistry(readFileSync(REGISTRY_FILE, "utf8"));
  return cached;
}

/** Every series name a histogram or other metric exposes on /metrics. */
export function exposedSeriesNames(metric: MetricDefinition): string[] {
  return metric.type === "histogram"
    ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`]
    : [metric.name];
}

/** Names (base metric names, not series) that rules and dashboards may query. */
export function queryableMetricNames(registry: TelemetryRegistry = loadRegistry()): Set<string> {
  const names = new Set<string>();
  for (const m of registry.service) for (const s of exposedSeriesNames(m)) names.add(s);
  for (const d of registry.defaults) {
    names.add(d);
    if (d.endsWith("_seconds") && d.startsWith("nodejs_gc_duration")) {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(d + suffix);
    }
  }
  for (const list of Object.values(registry.exporters)) for (const n of list) names.add(n);
  return names;
}
