/** "KNHK MAPE-K Loop" (uid knhk-mape-k): the closed loop's cycles, phases, proposals and snapshots. */
import type { Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { type DashboardDefinition, job, newDashboard, statPanel, step, timeseriesPanel } from "./common";

const SVC = job("knhk-service");
const RATE = "$__rate_interval";

function build(): Dashboard {
  return newDashboard("knhk-mape-k", "KNHK MAPE-K Loop", "Monitor-Analyze-Plan-Execute-Knowledge cycles: outcomes, phase durations, proposals, promotions and rollbacks.")
    .withPanel(
      timeseriesPanel({
        title: "Cycles by outcome",
        description: "Completed MAPE-K cycles per second by outcome and trigger.",
        unit: "ops",
        min: 0,
        queries: [{ expr: `sum by (outcome, trigger) (rate(knhk_mape_k_cycles_total{${SVC}}[${RATE}]))`, legend: "{{outcome}} ({{trigger}})" }],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Phase durations p95",
        description: "p95 duration of each MAPE-K phase.",
        unit: "s",
        min: 0,
        queries: [{ expr: `histogram_quantile(0.95, sum by (le, phase) (rate(knhk_mape_k_phase_duration_seconds_bucket{${SVC}}[${RATE}])))`, legend: "{{phase}}" }],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Proposals by outcome",
        description: "Proposals generated, and validations by outcome, per second.",
        unit: "ops",
        min: 0,
        queries: [
          { expr: `sum(rate(knhk_proposals_generated_total{${SVC}}[${RATE}]))`, legend: "generated" },
          { expr: `sum by (outcome) (rate(knhk_proposal_validations_total{${SVC}}[${RATE}]))`, legend: "validation {{outcome}}" },
        ],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Promotions",
        description: "Snapshot promotions per interval.",
        unit: "short",
        min: 0,
        width: 8,
        queries: [{ expr: `sum(increase(knhk_snapshot_promotions_total{${SVC}}[${RATE}]))`, legend: "promotions" }],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Rollbacks",
        description: "Snapshot rollbacks per interval.",
        unit: "short",
        min: 0,
        width: 8,
        queries: [{ expr: `sum(increase(knhk_snapshot_rollbacks_total{${SVC}}[${RATE}]))`, legend: "rollbacks" }],
        thresholdLines: [step(null, "green"), step(1, "orange")],
      }),
    )
    .withPanel(
      statPanel({
        title: "Loop leader",
        description: "Replicas holding the MAPE-K leader lock (exactly one expected).",
        unit: "none",
        width: 8,
        queries: [{ expr: `sum(knhk_mape_k_leader{${SVC}}) or vector(0)`, legend: "leaders" }],
        thresholds: [step(null, "red"), step(1, "green"), step(2, "red")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Patterns detected",
        description: "Patterns detected per second by kind (Analyze phase input to Plan).",
        unit: "ops",
        min: 0,
        queries: [{ expr: `sum by (kind) (rate(knhk_patterns_detected_total{${SVC}}[${RATE}]))`, legend: "{{kind}}" }],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Receipts appended",
        description: "Receipts made durable per second (each phase appends one).",
        unit: "ops",
        min: 0,
        queries: [{ expr: `sum(rate(knhk_receipts_appended_total{${SVC}}[${RATE}]))`, legend: "receipts" }],
      }),
    )
    .build();
}

export const mapeKDashboard: DashboardDefinition = { uid: "knhk-mape-k", title: "KNHK MAPE-K Loop", fileName: "knhk-mape-k.json", build };
