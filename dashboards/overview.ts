/** "KNHK Production Overview" (uid knhk-overview): the on-call engineer's first screen. */
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { type DashboardDefinition, job, newDashboard, statPanel, step, timeseriesPanel } from "./common";

const SVC = job("knhk-service");
const RATE = "$__rate_interval";
const hotPathQuantile = (q: number) => `histogram_quantile(${q}, sum by (le) (rate(knhk_hot_path_ticks_bucket{${SVC}}[${RATE}])))`;

function build(): Dashboard {
  return newDashboard("knhk-overview", "KNHK Production Overview", "Traffic, errors, hot/warm path latency, database pool, MAPE-K loop, integrity and resources of the KNHK service.")
    .withPanel(
      timeseriesPanel({
        title: "Request rate",
        description: "API requests per second by method and route.",
        unit: "reqps",
        queries: [{ expr: `sum by (method, route) (rate(knhk_http_requests_total{${SVC}}[${RATE}]))`, legend: "{{method}} {{route}}" }],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Error rate %",
        description: "Share of API requests answered with a 5xx. Critical above 1%.",
        unit: "percent",
        min: 0,
        queries: [
          {
            expr: `100 * (sum(rate(knhk_http_requests_total{${SVC},status_class="5xx"}[${RATE}])) or vector(0)) / sum(rate(knhk_http_requests_total{${SVC}}[${RATE}]))`,
            legend: "5xx %",
          },
        ],
        thresholdLines: [step(null, "green"), step(1, "red")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Hot path latency (ticks)",
        description: "p50/p95/p99 ticks per hot path operation. Budget 8 ticks (dashed), critical above 10.",
        unit: "none",
        min: 0,
        softMax: 12,
        queries: [
          { expr: hotPathQuantile(0.5), legend: "p50" },
          { expr: hotPathQuantile(0.95), legend: "p95" },
          { expr: hotPathQuantile(0.99), legend: "p99" },
        ],
        thresholdLines: [step(null, "green"), step(8, "orange"), step(10, "red")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Warm path latency p95",
        description: "p95 per warm path stage. Target below 100 ms (dashed), critical above 200 ms.",
        unit: "s",
        min: 0,
        queries: [{ expr: `histogram_quantile(0.95, sum by (le, stage) (rate(knhk_warm_path_duration_seconds_bucket{${SVC}}[${RATE}])))`, legend: "{{stage}}" }],
        thresholdLines: [step(null, "green"), step(0.1, "orange"), step(0.2, "red")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Database connection pool",
        description: "Pool size, connections by state and queries waiting for a connection (all replicas).",
        unit: "short",
        min: 0,
        queries: [
          { expr: `sum(knhk_db_pool_max_connections{${SVC}})`, legend: "max" },
          { expr: `sum by (state) (knhk_db_pool_connections{${SVC}})`, legend: "{{state}}" },
          { expr: `sum(knhk_db_pool_waiting_requests{${SVC}})`, legend: "waiting" },
        ],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "MAPE-K loop cycles",
        description: "Completed MAPE-K cycles per second by outcome.",
        unit: "ops",
        min: 0,
        queries: [{ expr: `sum by (outcome) (rate(knhk_mape_k_cycles_total{${SVC}}[${RATE}]))`, legend: "{{outcome}}" }],
      }),
    )
    .withPanel(
      statPanel({
        title: "Pattern detection success rate",
        description: "Pattern detection runs that completed without error. Red below 80%, yellow below 95%.",
        unit: "percent",
        queries: [
          {
            expr: `100 * sum(rate(knhk_pattern_detection_successes_total{${SVC}}[${RATE}])) / sum(rate(knhk_pattern_detection_attempts_total{${SVC}}[${RATE}]))`,
            legend: "success %",
          },
        ],
        thresholds: [step(null, "red"), step(80, "yellow"), step(95, "green")],
      }),
    )
    .withPanel(
      statPanel({
        title: "Receipt chain integrity",
        description: "Integrity failures found by chain verification. Any failure is a P0.",
        unit: "none",
        queries: [{ expr: `sum(knhk_receipt_chain_breaks_total{${SVC}}) or vector(0)`, legend: "breaks" }],
        thresholds: [step(null, "green"), step(1, "red")],
      }),
    )
    .withPanel(
      statPanel({
        title: "Telemetry schema status",
        description: "Label values outside registry/metrics.yaml since the pods started (0 = schema holds).",
        unit: "none",
        queries: [{ expr: `sum(knhk_telemetry_schema_violations_total{${SVC}}) or vector(0)`, legend: "violations" }],
        thresholds: [step(null, "green"), step(1, "red")],
      }),
    )
    .withPanel(
      statPanel({
        title: "Instances up",
        description: "Service instances answering their metrics scrape.",
        unit: "none",
        queries: [{ expr: `sum(up{${SVC}}) or vector(0)`, legend: "up" }],
        thresholds: [step(null, "red"), step(1, "yellow"), step(3, "green")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "CPU",
        description: "CPU used per pod, in percent of one core.",
        unit: "percent",
        min: 0,
        queries: [{ expr: `100 * sum by (pod, instance) (rate(process_cpu_seconds_total{${SVC}}[${RATE}]))`, legend: "{{pod}}" }],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Memory",
        description: "Resident memory per pod.",
        unit: "bytes",
        min: 0,
        queries: [{ expr: `sum by (pod, instance) (process_resident_memory_bytes{${SVC}})`, legend: "{{pod}}" }],
      }),
    )
    .build();
}

export const overviewDashboard: DashboardDefinition = { uid: "knhk-overview", title: "KNHK Production Overview", fileName: "knhk-overview.json", build };
