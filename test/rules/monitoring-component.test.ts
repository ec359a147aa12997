/**
 * The Monitoring component in the real program, rendered offline under Pulumi mocks: the
 * prometheus-operator objects it declares validate against the CRD schemas, carry the same rule
 * groups and routing the tool tests check, and reference receiver credentials only from Secrets.
 */
import { AlertmanagerConfig } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1/AlertmanagerConfig";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { parseStackConfig } from "../../infra/config";
import { monitoringDocuments, monitoringInput } from "../../infra/render/monitoring-bundle";
import { SCRAPE_JOBS } from "../../infra/render/scrape-targets";
import type { K8sObject, RenderResult } from "../../infra/testing/render";
import { renderTestStack, testStackConfig, testStackConfigFile } from "../support/stack-identifiers";

jest.setTimeout(120_000);

const ofKind = (r: RenderResult, kind: string) => r.k8sObjects.filter((o) => o.kind === kind);

describe("Monitoring in the prod stack", () => {
  let prod: RenderResult;
  beforeAll(async () => {
    prod = await renderTestStack("prod");
  });

  test("is one knhk:monitoring:Monitoring component owning its objects", () => {
    const components = prod.resources.filter((r) => r.type === "knhk:monitoring:Monitoring");
    expect(components).toHaveLength(1);
    const children = prod.resources.filter((r) => r.parent === components[0].urn).map((r) => r.name);
    // A PodMonitor per scrape job, a PrometheusRule per rule area (the ledger jobs' area included), the AlertmanagerConfig.
    const areas = monitoringDocuments(monitoringInput(testStackConfig("prod"))).ruleGroups.length;
    expect(areas).toBe(11);
    expect(children.length).toBe(Object.keys(SCRAPE_JOBS).length + areas + 1);
    expect(children.every((n) => n.startsWith("knhk-monitoring-"))).toBe(true);
  });

  test("a PodMonitor per scrape job: service metrics port, postgres_exporter, Patroni REST, redis_exporter, Sentinels, pgbackrest_exporter", () => {
    const monitors = ofKind(prod, "PodMonitor");
    const endpoint = (o: K8sObject) => (o.spec as { podMetricsEndpoints: Record<string, unknown>[] }).podMetricsEndpoints[0];
    expect(Object.fromEntries(monitors.map((m) => [m.metadata.name, [endpoint(m).port, endpoint(m).path, endpoint(m).scheme]]))).toEqual({
      "knhk-service": ["metrics", "/metrics", "http"],
      "postgres-exporter": ["metrics", "/metrics", "http"],
      patroni: ["patroni", "/metrics", "https"],
      "redis-exporter": ["metrics", "/metrics", "http"],
      "redis-sentinel": ["sentinel", "/scrape", "http"],
      "pgbackrest-exporter": ["pgbackrest-exp", "/metrics", "http"],
    });
    for (const m of monitors) {
      expect(() => new PodMonitor(m as never).validate()).not.toThrow();
      expect(m.metadata.namespace).toBe("knhk");
      expect(JSON.stringify(endpoint(m).relabelings)).toContain(`"replacement":"${m.metadata.name}"`);
    }
    const patroni = monitors.find((m) => m.metadata.name === "patroni")!;
    expect(endpoint(patroni).tlsConfig).toEqual({ ca: { secret: { name: "postgres-tls", key: "ca.crt" } }, serverName: "postgres.knhk.svc" });
  });

  test.each(Object.values(SCRAPE_JOBS).map((j) => [j.job, j] as const))("%s: the selected pods expose the port the PodMonitor scrapes", (_job, job) => {
    type Workload = { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports?: { name: string; containerPort: number }[] }[] } } };
    const workloads = [...ofKind(prod, "Deployment"), ...ofKind(prod, "StatefulSet")]
      .map((w) => w.spec as Workload)
      .filter((w) => Object.entries(job.selector).every(([k, v]) => w.template.metadata.labels[k] === v));
    expect(workloads.length).toBeGreaterThan(0);
    for (const w of workloads) {
      const ports = w.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => [p.name, p.containerPort]);
      expect(ports).toContainEqual([job.portName, job.port]);
    }
  });

  test("a PrometheusRule per area, with exactly the rule groups promtool checks", () => {
    const rules = ofKind(prod, "PrometheusRule").sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const expected = monitoringDocuments(monitoringInput(testStackConfig("prod"))).ruleGroups.sort((a, b) => a.name.localeCompare(b.name));
    expect(rules.map((r) => r.metadata.name)).toEqual(expected.map((g) => g.name));
    for (const r of rules) expect(() => new PrometheusRule(r as never).validate()).not.toThrow();
    expect(rules.map((r) => (r.spec as { groups: unknown[] }).groups[0])).toEqual(JSON.parse(JSON.stringify(expected)));
    const alerts = rules.flatMap((r) => (r.spec as { groups: { rules: { alert?: string; labels?: Record<string, string> }[] }[] }).groups[0].rules.filter((x) => x.alert));
    expect(alerts.every((a) => a.labels?.cluster === "prod" && a.labels?.namespace === "knhk" && /^P[0-3]$/.test(a.labels?.severity ?? ""))).toBe(true);
  });

  test("the rendered prod rules cover every alert the issue lists", () => {
    const names = ofKind(prod, "PrometheusRule").flatMap((r) => (r.spec as { groups: { rules: { alert?: string }[] }[] }).groups[0].rules.map((x) => x.alert).filter(Boolean));
    expect(names).toEqual(
      expect.arrayContaining([
        "KnhkAvailabilityBudgetBurnFast", "KnhkAvailabilityBudgetBurnSlow", "KnhkAvailabilityBelow99Percent",
        "KnhkErrorRateBudgetBurnFast", "KnhkErrorRateBudgetBurnSlow", "KnhkErrorRateAbove1Percent",
        "KnhkHotPathTicksHigh", "KnhkHotPathTicksCritical", "KnhkWarmPathLatencyHigh", "KnhkWarmPathLatencyCritical",
        "KnhkDbPoolUtilisationHigh", "KnhkDbPoolExhausted", "KnhkReceiptChainBroken", "KnhkTelemetrySchemaViolations",
        "KnhkPatroniNoLeader", "KnhkPatroniNoSyncStandby", "KnhkPatroniReplicationLag", "KnhkPatroniFailover",
        "KnhkBackupFullTooOld", "KnhkWalArchivingFailing", "KnhkWalArchiveStale",
        "KnhkRedisNoPrimary", "KnhkRedisSentinelQuorumLost", "KnhkRedisMemoryNearMax",
        "KnhkServiceDown", "KnhkPodCrashLooping", "KnhkHpaAtMaxReplicas",
      ]),
    );
  });

  test("an AlertmanagerConfig with four severity routes, credentials only as Secret references", () => {
    const [amc] = ofKind(prod, "AlertmanagerConfig");
    expect(() => new AlertmanagerConfig(amc as never).validate()).not.toThrow();
    const spec = amc.spec as { route: { routes: { matchers: { name: string; value: string }[]; receiver: string }[] }; receivers: unknown[] };
    const severityRoutes = spec.route.routes.filter((r) => r.matchers.some((m) => m.name === "severity"));
    expect(severityRoutes.map((r) => [r.matchers[0].value, r.receiver])).toEqual([
      ["P0", "knhk-pager-p0"],
      ["P1", "knhk-pager-p1"],
      ["P2", "knhk-chat"],
      ["P3", "knhk-ticket"],
    ]);
    const receivers = JSON.stringify(spec.receivers);
    const secretRefs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (Object.keys(o).sort().join() === "key,name") secretRefs.push(`${o.name}/${o.key}`);
        else Object.values(o).forEach(walk);
      }
    };
    walk(spec.receivers);
    expect(secretRefs.sort()).toEqual(
      ["pagerduty-escalation-key", "pagerduty-routing-key", "pagerduty-routing-key", "slack-webhook-url", "ticket-token"].map((k) => `alertmanager-receivers/${k}`).sort(),
    );
    expect(receivers).not.toContain("[secret]");
  });
});

describe("Monitoring per stack", () => {
  test("monitoring.enabled=false declares no prometheus-operator object", async () => {
    const config = { ...testStackConfigFile("local"), "knhk:monitoring": { enabled: false } };
    const local = await renderTestStack("local", { config });
    expect(local.resources.filter((r) => r.type === "knhk:monitoring:Monitoring")).toEqual([]);
    expect(local.k8sObjects.filter((o) => o.apiVersion.startsWith("monitoring.coreos.com"))).toEqual([]);
  });

  test("a bad monitoring value stops the program naming the key", () => {
    expect(() => parseStackConfig("prod", { ...testStackConfigFile("prod"), "knhk:monitoring": { enabled: true, runbookBaseUrl: "runbooks" } })).toThrow(
      /knhk:monitoring\.runbookBaseUrl = "runbooks": must be an http\(s\) URL/,
    );
  });
});
