/**
 * The three dashboards: validated against JSON schemas generated from the Grafana Foundation
 * SDK's types (dashboard model, panel options/field config, Prometheus queries), and checked for
 * what the on-call engineer relies on: uids, the datasource variable, $__rate_interval in every
 * rate, and the panels and threshold lines the issue names.
 */
import type { Dashboard, Panel } from "@grafana/grafana-foundation-sdk/dashboard";
import type { dataquery as PrometheusQuery } from "@grafana/grafana-foundation-sdk/prometheus";
import { DASHBOARDS, dashboardFiles, dashboardQueries, DATASOURCE_VARIABLE } from "../../dashboards";
import { schemaErrors, sdkValidators, type SdkType } from "./sdk-schema";
import type { ValidateFunction } from "ajv";

jest.setTimeout(120_000);

const built: Record<string, Dashboard> = Object.fromEntries(DASHBOARDS.map((d) => [d.uid, d.build()]));
const panels = (uid: string) => (built[uid].panels ?? []) as Panel[];
const panel = (uid: string, title: string) => {
  const p = panels(uid).find((x) => x.title === title);
  if (!p) throw new Error(`${uid} has no panel "${title}"`);
  return p;
};
/** Panel targets as the Prometheus queries they are (the SDK types them as its datasource-neutral marker). */
const targets = (p: Panel) => (p.targets ?? []) as unknown as PrometheusQuery[];
const steps = (p: Panel) => (p.fieldConfig?.defaults?.thresholds?.steps ?? []).map((s) => s.value);

describe("schema (types of the installed Grafana Foundation SDK)", () => {
  let v: Record<SdkType, ValidateFunction>;
  beforeAll(() => {
    v = sdkValidators();
  });

  test.each(DASHBOARDS.map((d) => d.uid))("%s validates as a dashboard, its panels and queries", (uid) => {
    const d = JSON.parse(JSON.stringify(built[uid]));
    const errors = [...schemaErrors(v.KnhkDashboard, d).map((e) => `dashboard ${e}`)];
    for (const p of d.panels as Panel[]) {
      if (p.type === "timeseries") {
        errors.push(...schemaErrors(v.TimeseriesOptions, p.options).map((e) => `${p.title} options ${e}`));
        errors.push(...schemaErrors(v.TimeseriesFieldConfig, p.fieldConfig?.defaults?.custom ?? {}).map((e) => `${p.title} custom ${e}`));
      } else if (p.type === "stat") {
        errors.push(...schemaErrors(v.StatOptions, p.options).map((e) => `${p.title} options ${e}`));
      } else {
        errors.push(`${p.title}: unexpected panel type ${p.type}`);
      }
      for (const t of p.targets ?? []) errors.push(...schemaErrors(v.PrometheusQuery, t).map((e) => `${p.title} target ${e}`));
    }
    expect(errors).toEqual([]);
  });

  test("the schemas reject what Grafana would not load (the check is real)", () => {
    const d = JSON.parse(JSON.stringify(built["knhk-overview"]));
    d.refresh = 30;
    d.panels[0].gridPos.h = "tall";
    d.panels[0].targets[0].exp = "typo";
    expect(schemaErrors(v.KnhkDashboard, d).join("\n")).toMatch(/\/refresh[\s\S]*\/panels\/0\/gridPos\/h/);
    expect(schemaErrors(v.PrometheusQuery, d.panels[0].targets[0]).join("\n")).toMatch(/additionalProperty.*exp/);
    expect(schemaErrors(v.TimeseriesOptions, { legend: { displayMode: "huge" } }).length).toBeGreaterThan(0);
  });
});

describe("dashboards", () => {
  test("uids, titles, refresh and timezone", () => {
    expect(DASHBOARDS.map((d) => [d.uid, built[d.uid].uid, built[d.uid].title])).toEqual([
      ["knhk-overview", "knhk-overview", "KNHK Production Overview"],
      ["knhk-postgres", "knhk-postgres", "KNHK Database Performance"],
      ["knhk-mape-k", "knhk-mape-k", "KNHK MAPE-K Loop"],
    ]);
    for (const d of Object.values(built)) expect([d.refresh, d.timezone]).toEqual(["30s", "utc"]);
  });

  test.each(DASHBOARDS.map((d) => d.uid))("%s takes its datasource from the variable, in every panel and query", (uid) => {
    const variable = built[uid].templating?.list?.find((x) => x.name === DATASOURCE_VARIABLE);
    expect(variable).toMatchObject({ type: "datasource", query: "prometheus" });
    for (const p of panels(uid)) {
      expect(p.datasource).toEqual({ type: "prometheus", uid: "${datasource}" });
      for (const t of targets(p)) expect(t.datasource).toEqual({ type: "prometheus", uid: "${datasource}" });
    }
    expect(JSON.stringify(built[uid])).not.toMatch(/"uid":"(?!\$\{datasource\}|knhk-)[^"]*"/);
  });

  test.each(DASHBOARDS.map((d) => d.uid))("%s: every rate()/increase() window is $__rate_interval; refIds are unique per panel", (uid) => {
    const queries = dashboardQueries(built[uid]);
    expect(queries.length).toBeGreaterThan(0);
    for (const { expr } of queries) {
      for (const m of expr.matchAll(/\b(rate|increase|irate)\([^[]*\[([^\]]+)\]/g)) expect(m[2]).toBe("$__rate_interval");
    }
    for (const p of panels(uid)) {
      const ids = targets(p).map((t) => t.refId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.every((id) => /^[A-Z]$/.test(id ?? ""))).toBe(true);
    }
  });

  test("the overview has the guide's panels, the 8-tick line and the 100 ms line", () => {
    expect(panels("knhk-overview").map((p) => p.title)).toEqual(
      expect.arrayContaining([
        "Request rate",
        "Error rate %",
        "Hot path latency (ticks)",
        "Warm path latency p95",
        "Database connection pool",
        "MAPE-K loop cycles",
        "Pattern detection success rate",
        "Receipt chain integrity",
        "Telemetry schema status",
        "CPU",
        "Memory",
      ]),
    );
    const hot = panel("knhk-overview", "Hot path latency (ticks)");
    expect(dashboardQueries({ ...built["knhk-overview"], panels: [hot] }).map((q) => q.expr.match(/histogram_quantile\(([\d.]+)/)?.[1])).toEqual(["0.5", "0.95", "0.99"]);
    expect(steps(hot)).toEqual([null, 8, 10]);
    expect(hot.fieldConfig?.defaults?.custom).toMatchObject({ thresholdsStyle: { mode: "dashed" } });
    expect(steps(panel("knhk-overview", "Warm path latency p95"))).toEqual([null, 0.1, 0.2]);
    expect(steps(panel("knhk-overview", "Error rate %"))).toEqual([null, 1]);
    expect(steps(panel("knhk-overview", "Pattern detection success rate"))).toEqual([null, 80, 95]);
    expect(panel("knhk-overview", "Receipt chain integrity").fieldConfig?.defaults?.thresholds?.steps).toEqual([
      { value: null, color: "green" },
      { value: 1, color: "red" },
    ]);
  });

  test("the database and MAPE-K dashboards have the issue's panels", () => {
    expect(panels("knhk-postgres").map((p) => p.title)).toEqual(
      expect.arrayContaining(["Patroni roles", "Synchronous standbys", "Replication lag (bytes)", "Connections", "Transactions", "Slowest statements", "WAL archive", "Backup age", "Redis cache hit rate"]),
    );
    expect(panels("knhk-mape-k").map((p) => p.title)).toEqual(expect.arrayContaining(["Cycles by outcome", "Phase durations p95", "Proposals by outcome", "Promotions", "Rollbacks"]));
  });

  test("panels do not overlap on the grid", () => {
    for (const uid of Object.keys(built)) {
      const boxes = panels(uid).map((p) => p.gridPos!);
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++) {
          const [a, b] = [boxes[i], boxes[j]];
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          expect({ uid, i, j, overlap }).toEqual({ uid, i, j, overlap: false });
        }
    }
  });

  test("dashboardFiles is the same JSON the builders produce", () => {
    const files = dashboardFiles();
    expect(Object.keys(files)).toEqual(["knhk-overview.json", "knhk-postgres.json", "knhk-mape-k.json"]);
    for (const d of DASHBOARDS) expect(JSON.parse(files[d.fileName])).toEqual(JSON.parse(JSON.stringify(built[d.uid])));
  });
});
