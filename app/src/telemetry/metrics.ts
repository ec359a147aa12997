import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { loadRegistry, type MetricDefinition, type TelemetryRegistry } from "../../../registry";
import type { DomainCounterName, DomainGaugeName, DomainHistogramName, DomainMetrics, MetricLabels } from "../domain/metrics";

type Instrument = Counter<string> | Gauge<string> | Histogram<string>;
type Collector = () => void | Promise<void>;

export const SCHEMA_VIOLATIONS = "knhk_telemetry_schema_violations_total";
export const OTHER = "other";

/** Every metric name the registry declares, as the string union the service code uses. */
export type ServiceMetricName = DomainCounterName | DomainHistogramName | DomainGaugeName | (string & {});

/**
 * The service's Prometheus registry, built from registry/metrics.yaml and nothing else: a metric
 * exists here exactly when the registry declares it. Label values outside a declared closed set
 * are exported as "other" and counted in knhk_telemetry_schema_violations_total{metric}.
 */
export class ServiceMetrics implements DomainMetrics {
  readonly registry = new Registry();
  private readonly instruments = new Map<string, { definition: MetricDefinition; instrument: Instrument }>();
  private readonly collectors = new Map<string, Collector[]>();

  constructor(definitions: TelemetryRegistry = loadRegistry(), options: { readonly defaultMetrics?: boolean } = {}) {
    for (const definition of definitions.service) this.register(definition);
    if (!this.instruments.has(SCHEMA_VIOLATIONS)) {
      throw new Error(`registry/metrics.yaml must declare ${SCHEMA_VIOLATIONS}`);
    }
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    for (const { definition, instrument } of this.instruments.values()) this.zeroClosedSeries(definition, instrument);
  }

  private register(definition: MetricDefinition): void {
    const collectors = this.collectors;
    const base = {
      name: definition.name,
      help: definition.help,
      labelNames: Object.keys(definition.labels),
      registers: [this.registry],
    };
    let instrument: Instrument;
    switch (definition.type) {
      case "counter":
        instrument = new Counter(base);
        break;
      case "histogram":
        instrument = new Histogram({ ...base, buckets: definition.buckets ?? [] });
        break;
      case "gauge":
        instrument = new Gauge({
          ...base,
          async collect() {
            for (const collect of collectors.get(definition.name) ?? []) await collect();
          },
        });
        break;
    }
    this.instruments.set(definition.name, { definition, instrument });
  }

  /** Series whose labels are all closed sets start at zero, so rate() and dashboards see them. */
  private zeroClosedSeries(definition: MetricDefinition, instrument: Instrument): void {
    if (definition.type === "gauge") return;
    const labels = Object.entries(definition.labels);
    if (labels.length === 0) {
      if (instrument instanceof Counter) instrument.inc(0);
      return;
    }
    if (labels.some(([, spec]) => !spec.values)) return;
    let combinations: Record<string, string>[] = [{}];
    for (const [name, spec] of labels) {
      combinations = combinations.flatMap((c) => spec.values!.map((v) => ({ ...c, [name]: v })));
    }
    for (const combination of combinations) {
      if (instrument instanceof Counter) instrument.inc(combination, 0);
      else if (instrument instanceof Histogram) instrument.zero(combination);
    }
  }

  /** Runs `collect` before every scrape of the gauge `name` (pool stats, dependency probes). */
  addCollector(name: string, collect: Collector): void {
    const entry = this.instruments.get(name);
    if (!entry || entry.definition.type !== "gauge") throw new Error(`${name} is not a gauge in the registry`);
    this.collectors.set(name, [...(this.collectors.get(name) ?? []), collect]);
  }

  inc(name: ServiceMetricName, labels: MetricLabels = {}, value = 1): void {
    const entry = this.lookup(name, "counter");
    if (entry) (entry.instrument as Counter<string>).inc(this.labels(entry.definition, labels), value);
  }

  observe(name: ServiceMetricName, labels: MetricLabels, value: number): void {
    const entry = this.lookup(name, "histogram");
    if (entry) (entry.instrument as Histogram<string>).observe(this.labels(entry.definition, labels), value);
  }

  set(name: ServiceMetricName, labels: MetricLabels, value: number): void {
    const entry = this.lookup(name, "gauge");
    if (entry) (entry.instrument as Gauge<string>).set(this.labels(entry.definition, labels), value);
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private lookup(name: string, type: MetricDefinition["type"]) {
    const entry = this.instruments.get(name);
    if (!entry || entry.definition.type !== type) {
      // An undeclared metric is a contract violation: counted, never exported.
      this.violation(name);
      return undefined;
    }
    return entry;
  }

  private violation(metric: string): void {
    const counter = this.instruments.get(SCHEMA_VIOLATIONS)!.instrument as Counter<string>;
    counter.inc({ metric: metric.length <= 100 ? metric : OTHER });
  }

  /** Declared labels only; values outside a closed set become "other" (counted). */
  private labels(definition: MetricDefinition, given: MetricLabels): Record<string, string> {
    const result: Record<string, string> = {};
    let violated = false;
    for (const [name, spec] of Object.entries(definition.labels)) {
      const value = given[name];
      if (value === undefined || (spec.values && !spec.values.includes(value))) {
        result[name] = OTHER;
        violated = true;
      } else {
        result[name] = value;
      }
    }
    if (Object.keys(given).some((name) => !(name in definition.labels))) violated = true;
    if (violated) this.violation(definition.name);
    return result;
  }
}
