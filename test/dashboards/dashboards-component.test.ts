/**
 * The Dashboards component in the real program under Pulumi mocks (the Grafana API is mocked;
 * the documents sent to it are asserted): a folder and three dashboards through
 * @pulumiverse/grafana, and/or the same JSON as sidecar ConfigMaps, switched per stack.
 */
import { DASHBOARDS } from "../../dashboards";
import type { RenderResult } from "../../infra/testing/render";
import { renderTestStack, testStackConfigFile } from "../support/stack-identifiers";

jest.setTimeout(120_000);

const FOLDER = "grafana:oss/folder:Folder";
const DASHBOARD = "grafana:oss/dashboard:Dashboard";
const builtJson = Object.fromEntries(DASHBOARDS.map((d) => [d.uid, JSON.parse(JSON.stringify(d.build()))]));

const ofType = (r: RenderResult, type: string) => r.resources.filter((x) => x.type === type);
const sidecarMaps = (r: RenderResult) => r.k8sObjects.filter((o) => o.kind === "ConfigMap" && (o.metadata.labels as Record<string, string> | undefined)?.grafana_dashboard === "1");

async function render(stack: string, grafana?: Record<string, unknown>): Promise<RenderResult> {
  if (!grafana) return renderTestStack(stack);
  return renderTestStack(stack, { config: { ...testStackConfigFile(stack), "knhk:grafana": grafana } });
}

describe("Dashboards", () => {
  test("prod: a Grafana folder, the three dashboards through the API, and the same JSON as sidecar ConfigMaps", async () => {
    const prod = await render("prod");
    const [component] = ofType(prod, "knhk:monitoring:Dashboards");
    expect(component).toBeDefined();

    const folders = ofType(prod, FOLDER);
    expect(folders.map((f) => [f.inputs.title, f.inputs.uid, f.parent])).toEqual([["KNHK", "knhk", component.urn]]);

    const dashboards = ofType(prod, DASHBOARD);
    expect(dashboards).toHaveLength(3);
    for (const d of dashboards) {
      expect(d.parent).toBe(component.urn);
      expect(d.inputs).toMatchObject({ folder: "knhk", overwrite: true });
      const model = JSON.parse(String(d.inputs.configJson));
      expect(model).toEqual(builtJson[model.uid]);
    }
    expect(dashboards.map((d) => JSON.parse(String(d.inputs.configJson)).uid).sort()).toEqual(["knhk-mape-k", "knhk-overview", "knhk-postgres"]);

    const maps = sidecarMaps(prod);
    expect(maps.map((m) => m.metadata.name).sort()).toEqual(["grafana-dashboard-knhk-mape-k", "grafana-dashboard-knhk-overview", "grafana-dashboard-knhk-postgres"]);
    for (const m of maps) {
      const data = m.data as Record<string, string>;
      const [file] = Object.keys(data);
      const model = JSON.parse(data[file]);
      expect(file).toBe(`${model.uid}.json`);
      expect(model).toEqual(builtJson[model.uid]);
      expect(m.metadata.namespace).toBe("knhk");
    }
  });

  test("local: no Grafana API resources (grafana.enabled=false), the sidecar ConfigMaps only", async () => {
    const local = await render("local");
    expect(ofType(local, FOLDER)).toEqual([]);
    expect(ofType(local, DASHBOARD)).toEqual([]);
    expect(sidecarMaps(local)).toHaveLength(3);
  });

  test("each delivery switches off on its own", async () => {
    const apiOnly = await render("prod", { enabled: true, sidecarConfigMaps: false });
    expect(ofType(apiOnly, DASHBOARD)).toHaveLength(3);
    expect(sidecarMaps(apiOnly)).toEqual([]);

    const none = await render("prod", { enabled: false, sidecarConfigMaps: false });
    expect(ofType(none, "knhk:monitoring:Dashboards")).toEqual([]);
    expect(ofType(none, DASHBOARD)).toEqual([]);
    expect(sidecarMaps(none)).toEqual([]);
  });

  test("folder title, uid and sidecar namespace come from the stack config", async () => {
    const custom = await render("prod", { enabled: true, folderTitle: "KNHK Prod", folderUid: "knhk-prod", sidecarNamespace: "monitoring" });
    expect(ofType(custom, FOLDER).map((f) => [f.inputs.title, f.inputs.uid])).toEqual([["KNHK Prod", "knhk-prod"]]);
    expect(sidecarMaps(custom).map((m) => [m.metadata.namespace, (m.metadata.annotations as Record<string, string>).grafana_folder])).toEqual([
      ["monitoring", "KNHK Prod"],
      ["monitoring", "KNHK Prod"],
      ["monitoring", "KNHK Prod"],
    ]);
  });
});
