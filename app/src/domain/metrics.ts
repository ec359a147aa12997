/**
 * The metrics the domain reports, by their registry/metrics.yaml names. The domain never imports
 * prom-client: the API process implements this interface over its registry.
 */
export type DomainCounterName =
  | "knhk_pattern_detection_attempts_total"
  | "knhk_pattern_detection_successes_total"
  | "knhk_patterns_detected_total"
  | "knhk_proposals_generated_total"
  | "knhk_proposal_validations_total"
  | "knhk_snapshot_promotions_total"
  | "knhk_snapshot_rollbacks_total"
  | "knhk_mape_k_cycles_total"
  | "knhk_hot_path_parked_total"
  | "knhk_observations_ingested_total";

export type DomainHistogramName =
  | "knhk_warm_path_duration_seconds"
  | "knhk_mape_k_phase_duration_seconds"
  | "knhk_hot_path_ticks"
  | "knhk_observation_batch_size"
  | "knhk_observation_commit_size";

export type DomainGaugeName = "knhk_mape_k_leader";

export type DomainMetricName = DomainCounterName | DomainHistogramName | DomainGaugeName;

export type MetricLabels = Readonly<Record<string, string>>;

export interface DomainMetrics {
  inc(name: DomainCounterName, labels?: MetricLabels, value?: number): void;
  observe(name: DomainHistogramName, labels: MetricLabels, value: number): void;
  set(name: DomainGaugeName, labels: MetricLabels, value: number): void;
}

/** Label values the domain emits (all inside the registry's closed sets). */
export type WarmPathStage =
  | "persistence"
  | "pattern_detection"
  | "proposal_generation"
  | "proposal_validation"
  | "promotion"
  | "rollback";

/** Discards everything: for tools that run domain code without a metrics endpoint. */
export const noMetrics: DomainMetrics = { inc() {}, observe() {}, set() {} };

/** Records every call, for tests and diagnostics. */
export interface RecordedMetric {
  readonly kind: "inc" | "observe" | "set";
  readonly name: DomainMetricName;
  readonly labels: MetricLabels;
  readonly value: number;
}

export function recordingMetrics(): DomainMetrics & { readonly records: RecordedMetric[]; total(name: DomainMetricName, labels?: MetricLabels): number } {
  const records: RecordedMetric[] = [];
  const matches = (r: RecordedMetric, labels?: MetricLabels) =>
    !labels || Object.entries(labels).every(([k, v]) => r.labels[k] === v);
  return {
    records,
    inc: (name, labels = {}, value = 1) => void records.push({ kind: "inc", name, labels, value }),
    observe: (name, labels, value) => void records.push({ kind: "observe", name, labels, value }),
    set: (name, labels, value) => void records.push({ kind: "set", name, labels, value }),
    total: (name, labels) =>
      records.filter((r) => r.name === name && r.kind === "inc" && matches(r, labels)).reduce((s, r) => s + r.value, 0),
  };
}
