/**
 * Shared building blocks of the KNHK dashboards (Grafana Foundation SDK): the datasource
 * variable every panel uses, Prometheus queries with explicit refIds, and the two panel kinds.
 */
import * as cog from "@grafana/grafana-foundation-sdk/cog";
import * as common from "@grafana/grafana-foundation-sdk/common";
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  type Dashboard,
  type DataSourceRef,
  type Panel,
  type Threshold,
  type ValueMapping,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import { jobMatcher, type ScrapeJobName } from "../infra/render/scrape-targets";

/** Every panel queries the Prometheus chosen in this variable (no datasource uid is baked in). */
export const DATASOURCE_VARIABLE = "datasource";
export const DATASOURCE: DataSourceRef = { type: "prometheus", uid: `\${${DATASOURCE_VARIABLE}}` };

/** A dashboard as shipped: its uid, its title and the JSON model. */
export interface DashboardDefinition {
  readonly uid: string;
  readonly title: string;
  /** File name under `dashboards/` output folders and ConfigMap key. */
  readonly fileName: string;
  build(): Dashboard;
}

export const job = (name: ScrapeJobName): string => jobMatcher(name);

export function newDashboard(uid: string, title: string, description: string): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(["knhk"])
    .refresh("30s")
    .timezone("utc")
    .time({ from: "now-6h", to: "now" })
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .withVariable(new DatasourceVariableBuilder(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus"));
}

export interface QuerySpec {
  readonly expr: string;
  readonly legend?: string;
}

function queries(specs: readonly QuerySpec[]): DataqueryBuilder[] {
  return specs.map((q, i) =>
    new DataqueryBuilder()
      .expr(q.expr)
      .legendFormat(q.legend ?? "__auto")
      .refId(String.fromCharCode(65 + i))
      .datasource(DATASOURCE),
  );
}

export const step = (value: number | null, color: string): Threshold => ({ value, color });

function thresholds(steps: readonly Threshold[]): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([...steps]);
}

export interface TimeseriesSpec {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly queries: readonly QuerySpec[];
  /** Drawn as dashed lines (e.g. the 8-tick budget); the first step's value is null. */
  readonly thresholdLines?: readonly Threshold[];
  readonly min?: number;
  readonly softMax?: number;
  readonly width?: number;
}

export function timeseriesPanel(s: TimeseriesSpec): cog.Builder<Panel> {
  let b = new timeseries.PanelBuilder()
    .title(s.title)
    .description(s.description)
    .datasource(DATASOURCE)
    .unit(s.unit)
    .span(s.width ?? 12)
    .height(8)
    .lineWidth(1)
    .fillOpacity(10)
    .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom))
    .targets(queries(s.queries));
  if (s.min !== undefined) b = b.min(s.min);
  if (s.softMax !== undefined) b = b.axisSoftMax(s.softMax);
  if (s.thresholdLines) {
    b = b
      .thresholds(thresholds(s.thresholdLines))
      .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
  }
  return b;
}

export interface StatSpec {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly queries: readonly QuerySpec[];
  readonly thresholds: readonly Threshold[];
  readonly mappings?: ValueMapping[];
  readonly width?: number;
}

export function statPanel(s: StatSpec): cog.Builder<Panel> {
  let b = new stat.PanelBuilder()
    .title(s.title)
    .description(s.description)
    .datasource(DATASOURCE)
    .unit(s.unit)
    .span(s.width ?? 6)
    .height(6)
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false))
    .thresholds(thresholds(s.thresholds))
    .targets(queries(s.queries));
  if (s.mappings) b = b.mappings(s.mappings);
  return b;
}

/** Prometheus queries of a built dashboard, in panel order (the tests run each of them). */
export function dashboardQueries(d: Dashboard): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  for (const panel of d.panels ?? []) {
    if (!("targets" in panel)) continue;
    for (const t of panel.targets ?? []) {
      const expr = (t as { expr?: unknown }).expr;
      if (typeof expr === "string") out.push({ panel: panel.title ?? "", expr });
    }
  }
  return out;
}
