/**
 * Alert routing: the rendered alertmanager.yml passes `amtool check-config`, `amtool config
 * routes test` sends each severity to its receiver, the AlertmanagerConfig CR encodes the same
 * tree, and a real Alertmanager (Debian) on loopback delivers to the right receivers and
 * inhibits P1-P3 of a cluster while a P0 of that cluster fires.
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { AlertmanagerConfig } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1/AlertmanagerConfig";
import { alertmanagerConfigSpec, alertmanagerYaml, secretFile, type AlertRoutingConfig } from "../../infra/render/alertmanager";
import { monitoringDocuments, monitoringInput } from "../../infra/render/monitoring-bundle";
import { listStacks } from "../../infra/testing/render";
import { waitFor } from "../support/ports";
import { startAlertmanager, startSink, type RunningServer, type Sink } from "./servers";
import { run, tempDir, TEST_ROUTING, writeYaml, removeTempDirs } from "./tools";
import { testStackConfig } from "../support/stack-identifiers";

afterAll(removeTempDirs);

const dir = tempDir("amtool");
const amFile = writeYaml(join(dir, "alertmanager.yml"), alertmanagerYaml(TEST_ROUTING, "/etc/alertmanager/secrets"));

function routeOf(labels: Record<string, string>): string {
  const args = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  const r = run("amtool", ["config", "routes", "test", `--config.file=${amFile}`, ...args]);
  if (r.status !== 0) throw new Error(r.output);
  return r.output.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("Warning"))[0];
}

describe("amtool", () => {
  test.each(listStacks())("the %s stack's alertmanager.yml passes amtool check-config", (stack) => {
    const docs = monitoringDocuments(monitoringInput(testStackConfig(stack)));
    const file = writeYaml(join(tempDir(`am-${stack}`), "alertmanager.yml"), docs.alertmanagerYaml);
    const r = run("amtool", ["check-config", file]);
    expect(r.output).toMatch(/SUCCESS/);
    expect(r.output).toMatch(/1 inhibit rules/);
    expect(r.output).toMatch(/5 receivers/);
    expect(r.status).toBe(0);
  });

  test("amtool check-config rejects a route to an unknown receiver (the check is real)", () => {
    const doc = alertmanagerYaml(TEST_ROUTING, "/etc/alertmanager/secrets") as { route: { routes: { receiver: string }[] } };
    doc.route.routes[1].receiver = "nobody";
    const r = run("amtool", ["check-config", writeYaml(join(tempDir("am-bad"), "am.yml"), doc)]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/undefined receiver "nobody"/);
  });

  test.each([
    [{ severity: "P0" }, "knhk-pager-p0"],
    [{ severity: "P1" }, "knhk-pager-p1"],
    [{ severity: "P2" }, "knhk-chat"],
    [{ severity: "P3" }, "knhk-ticket"],
    [{ severity: "P0", escalation: "manager" }, "knhk-escalation"],
    [{ severity: "P1", escalation: "manager" }, "knhk-escalation"],
    [{ alertname: "Unlabelled" }, "knhk-ticket"],
  ])("amtool config routes test: %j reaches %s", (labels, receiver) => {
    expect(routeOf({ cluster: "test", namespace: "knhk", ...labels })).toBe(receiver);
  });
});

describe("AlertmanagerConfig (monitoring.coreos.com/v1alpha1)", () => {
  const spec = alertmanagerConfigSpec(TEST_ROUTING) as {
    route: { receiver: string; routes: { receiver: string; matchers: { name: string; value: string; matchType: string }[]; repeatInterval: string }[] };
    inhibitRules: { sourceMatch: unknown[]; targetMatch: unknown[]; equal: string[] }[];
    receivers: Record<string, unknown>[];
  };
  const plain = alertmanagerYaml(TEST_ROUTING, "/s") as {
    route: { receiver: string; routes: { receiver: string; matchers: string[]; repeat_interval: string }[] };
  };

  test("validates against the prometheus-operator CRD schema", () => {
    const cr = new AlertmanagerConfig({ metadata: { name: "knhk-alert-routing", namespace: "knhk" }, spec: spec as never });
    expect(() => cr.validate()).not.toThrow();
  });

  test("encodes the same routing tree as the alertmanager.yml amtool checked", () => {
    expect(spec.route.receiver).toBe(plain.route.receiver);
    expect(spec.route.routes.map((r) => [r.receiver, r.matchers.map((m) => `${m.name}${m.matchType}"${m.value}"`), r.repeatInterval])).toEqual(
      plain.route.routes.map((r) => [r.receiver, r.matchers, r.repeat_interval]),
    );
  });

  test("repeats P0 every 30 min, P1 every hour, P2 every 4 h, P3 every 24 h", () => {
    const repeat = Object.fromEntries(spec.route.routes.map((r) => [r.matchers.map((m) => `${m.name}=${m.value}`).join(","), [r.receiver, r.repeatInterval]]));
    expect(repeat).toEqual({
      "escalation=manager": ["knhk-escalation", "30m"],
      "severity=P0": ["knhk-pager-p0", "30m"],
      "severity=P1": ["knhk-pager-p1", "1h"],
      "severity=P2": ["knhk-chat", "4h"],
      "severity=P3": ["knhk-ticket", "24h"],
    });
  });

  test("inhibits P1-P3 while a P0 of the same cluster fires", () => {
    expect(spec.inhibitRules).toEqual([
      {
        sourceMatch: [{ name: "severity", value: "P0", matchType: "=" }],
        targetMatch: [{ name: "severity", value: "P1|P2|P3", matchType: "=~" }],
        equal: ["cluster"],
      },
    ]);
  });

  test("references every receiver credential from a Secret, never inline", () => {
    const text = JSON.stringify(spec.receivers);
    const refs = [...text.matchAll(/"(routingKey|apiURL|credentials)":(\{[^}]*\}|"[^"]*")/g)].map((m) => [m[1], JSON.parse(m[2])]);
    expect(refs).toHaveLength(5);
    for (const [, ref] of refs) expect(ref).toEqual({ name: "alertmanager-receivers", key: expect.any(String) });
    expect(text).not.toMatch(/serviceKey|"url":"https:\/\/hooks\.slack/);
  });

  test("names the field of a bad routing config", () => {
    expect(() => alertmanagerConfigSpec({ ...TEST_ROUTING, ticketUrl: "ftp://x" })).toThrow(/ticketUrl "ftp:\/\/x" must be an http\(s\) URL/);
    expect(() => alertmanagerConfigSpec({ ...TEST_ROUTING, chatWebhookUrl: { name: "Bad_Name", key: "k" } })).toThrow(/chatWebhookUrl\.name "Bad_Name"/);
  });
});

describe("a real Alertmanager routes and inhibits", () => {
  let sink: Sink;
  let am: RunningServer;

  interface ApiAlert {
    labels: Record<string, string>;
    receivers: { name: string }[];
    status: { state: string; inhibitedBy: string[] };
  }
  const alert = (alertname: string, severity: string, cluster: string, extra: Record<string, string> = {}) => ({
    labels: { alertname, severity, cluster, namespace: "knhk", ...extra },
    annotations: { summary: `${alertname} summary`, description: `${alertname} value 1`, runbook_url: "https://x/runbooks/service-down.md" },
  });
  const post = async (alerts: unknown[]) => {
    const res = await fetch(`${am.url}/api/v2/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(alerts) });
    expect(res.status).toBe(200);
  };
  const current = async (): Promise<Record<string, ApiAlert>> => {
    const list = (await (await fetch(`${am.url}/api/v2/alerts`)).json()) as ApiAlert[];
    return Object.fromEntries(list.map((a) => [a.labels.alertname, a]));
  };
  const delivered = (path: string, alertname: string) =>
    sink.deliveries.filter((d) => d.path === path && JSON.stringify(d.body).includes(alertname));

  beforeAll(async () => {
    sink = await startSink();
    const secretDir = tempDir("am-secrets");
    const routing: AlertRoutingConfig = { ...TEST_ROUTING, pagerDutyUrl: `${sink.url}/pagerduty`, ticketUrl: `${sink.url}/ticket`, groupWait: "1s" };
    const secrets: [keyof AlertRoutingConfig, string][] = [
      ["pagerRoutingKey", "oncall-routing-key"],
      ["escalationRoutingKey", "manager-routing-key"],
      ["chatWebhookUrl", `${sink.url}/slack`],
      ["ticketToken", "ticket-token-value"],
    ];
    for (const [field, value] of secrets) {
      const path = secretFile(secretDir, routing[field] as { name: string; key: string });
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, value);
    }
    const config = writeYaml(join(secretDir, "alertmanager.yml"), alertmanagerYaml(routing, secretDir));
    am = await startAlertmanager(config);
  });

  afterAll(async () => {
    await am?.stop();
    await sink?.close();
  });

  test("each severity reaches its receiver, with the credentials read from the Secret files", async () => {
    await post([
      alert("ScenarioP0", "P0", "east"),
      alert("ScenarioEscalation", "P0", "east", { escalation: "manager", escalated_alert: "ScenarioP0" }),
      alert("ScenarioP1", "P1", "west"),
      alert("ScenarioP2", "P2", "west"),
      alert("ScenarioP3", "P3", "west"),
    ]);
    const state = await current();
    expect(Object.fromEntries(Object.entries(state).map(([n, a]) => [n, a.receivers.map((r) => r.name)]))).toEqual({
      ScenarioP0: ["knhk-pager-p0"],
      ScenarioEscalation: ["knhk-escalation"],
      ScenarioP1: ["knhk-pager-p1"],
      ScenarioP2: ["knhk-chat"],
      ScenarioP3: ["knhk-ticket"],
    });

    await waitFor("five deliveries", async () => sink.deliveries.length >= 5, 20_000);
    const p0 = delivered("/pagerduty", "ScenarioP0").map((d) => d.body as { routing_key: string; payload: { severity: string } });
    expect(p0.some((b) => b.routing_key === "oncall-routing-key" && b.payload.severity === "critical")).toBe(true);
    const esc = delivered("/pagerduty", "ScenarioEscalation").map((d) => d.body as { routing_key: string });
    expect(esc.some((b) => b.routing_key === "manager-routing-key")).toBe(true);
    const p1 = delivered("/pagerduty", "ScenarioP1").map((d) => d.body as { routing_key: string; payload: { severity: string } });
    expect(p1.some((b) => b.routing_key === "oncall-routing-key" && b.payload.severity === "error")).toBe(true);
    const chat = delivered("/slack", "ScenarioP2");
    expect(chat).toHaveLength(1);
    expect(JSON.stringify(chat[0].body)).toContain("#knhk-alerts");
    const ticket = delivered("/ticket", "ScenarioP3");
    expect(ticket).toHaveLength(1);
    expect(ticket[0].headers.authorization).toBe("Bearer ticket-token-value");
    // nothing went anywhere else
    expect(delivered("/slack", "ScenarioP3")).toHaveLength(0);
    expect(delivered("/ticket", "ScenarioP2")).toHaveLength(0);
  });

  test("a P0 of cluster west inhibits P1-P3 of west only (east has its own P0, north none), and inhibited alerts are not delivered", async () => {
    await post([alert("WestDown", "P0", "west"), alert("NorthWarning", "P2", "north")]);
    await waitFor("inhibition of the west alerts", async () => {
      const s = await current();
      return ["ScenarioP1", "ScenarioP2", "ScenarioP3"].every((n) => s[n]?.status.state === "suppressed");
    }, 20_000);
    const state = await current();
    for (const name of ["ScenarioP1", "ScenarioP2", "ScenarioP3"]) {
      expect(state[name].status).toMatchObject({ state: "suppressed", inhibitedBy: [expect.any(String)] });
    }
    // different cluster, or the P0 itself: not inhibited
    for (const name of ["WestDown", "NorthWarning", "ScenarioP0"]) expect(state[name].status).toMatchObject({ state: "active", inhibitedBy: [] });

    // a new P2 in west while the P0 fires never reaches chat; one posted with it in another cluster does
    await post([alert("WestLateWarning", "P2", "west"), alert("NorthLateWarning", "P2", "north")]);
    await waitFor("the north warnings in chat", async () => delivered("/slack", "NorthLateWarning").length > 0 && delivered("/slack", "NorthWarning").length > 0, 20_000);
    await waitFor("the west P0 page", async () => delivered("/pagerduty", "WestDown").length > 0, 20_000);
    expect((await current()).WestLateWarning.status.state).toBe("suppressed");
    expect(delivered("/slack", "WestLateWarning")).toHaveLength(0);
  });
});
