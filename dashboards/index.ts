/** The three KNHK dashboards, in the order they are created. */
import type { DashboardDefinition } from "./common";
import { mapeKDashboard } from "./mape-k";
import { overviewDashboard } from "./overview";
import { postgresDashboard } from "./postgres";

export const DASHBOARDS: readonly DashboardDefinition[] = [overviewDashboard, postgresDashboard, mapeKDashboard];

/** `{ "knhk-overview.json": "<json>", ... }`: the same text for the Grafana API and the sidecar ConfigMap. */
export function dashboardFiles(): Record<string, string> {
  return Object.fromEntries(DASHBOARDS.map((d) => [d.fileName, JSON.stringify(d.build(), null, 2)]));
}

export { dashboardQueries, DATASOURCE_VARIABLE, type DashboardDefinition } from "./common";
