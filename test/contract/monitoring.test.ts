/**
 * The monitoring side of the telemetry contract: every series a rule or a dashboard panel
 * queries is declared in registry/metrics.yaml (service, default or exporter metric) or recorded
 * by a rule; label matchers on service metrics use declared labels and values; every job exists;
 * every runbook_url resolves to a runbook that documents the alert; the receipt runbook's
 * verify-chain command really prints the fields it reads.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DASHBOARDS, dashboardQueries } from "../../dashboards";
import { isAlertRule, type RenderedRuleGroup } from "../../infra/render/alert-rules";
import { monitoringDocuments, monitoringInput } from "../../infra/render/monitoring-bundle";
import { SCRAPE_JOBS } from "../../infra/render/scrape-targets";
import { listStacks } from "../../infra/testing/render";
import { loadRegistry, queryableMetricNames } from "../../registry";
import { parsePromql, type SelectorUse } from "./promql";
import { renderTestStack, testStackConfig } from "../support/stack-identifiers";

const REPO = join(__dirname, "..", "..");
const registry = loadRegistry();
const declared = queryableMetricNames(registry);
/** Labels Prometheus and the PodMonitors attach to every scraped series. */
const TARGET_LABELS = new Set(["job", "instance", "pod", "namespace", "container"]);
/** Series Prometheus itself writes. */
const PROMETHEUS_SERIES = new Set(["ALERTS"]);

const stacks = listStacks().map((stack) => {
  const config = testStackConfig(stack);
  return { stack, config, groups: monitoringDocuments(monitoringInput(config)).ruleGroups };
});

function serviceMetric(series: string) {
  const base = series.replace(/_(bucket|sum|count)$/, "");
  return registry.service.find((m) => m.name === series || (m.type === "histogram" && m.name === base));
}

/** Every contract problem of one selector, or none. */
function selectorProblems(where: string, s: SelectorUse, recorded: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  if (!declared.has(s.metric) && !recorded.has(s.metric) && !PROMETHEUS_SERIES.has(s.metric)) {
    problems.push(`${where}: ${s.metric || "(selector without a metric name)"} is not in registry/metrics.yaml`);
  }
  for (const m of s.matchers) {
    if (m.label === "job" && m.op === "=" && !(m.value in SCRAPE_JOBS) && m.value !== "kube-state-metrics") {
      problems.push(`${where}: job "${m.value}" is not a scrape job`);
    }
  }
  const metric = serviceMetric(s.metric);
  if (!metric) return problems;
  for (const m of s.matchers) {
    const isBucketLe = m.label === "le" && s.metric.endsWith("_bucket");
    if (TARGET_LABELS.has(m.label) || isBucketLe) continue;
    const label = metric.labels[m.label];
    if (!label) {
      problems.push(`${where}: ${s.metric} has no label ${m.label} (declared: ${Object.keys(metric.labels).join(", ") || "none"})`);
    } else if (m.op === "=" && label.values && !label.values.includes(m.value)) {
      problems.push(`${where}: ${s.metric}{${m.label}="${m.value}"} is outside the declared values ${label.values.join(", ")}`);
    }
  }
  return problems;
}

function ruleProblems(groups: readonly RenderedRuleGroup[]): string[] {
  const recorded = new Set(groups.flatMap((g) => g.rules.flatMap((r) => ("record" in r ? [r.record] : []))));
  return groups.flatMap((g) =>
    g.rules.flatMap((r) => {
      const where = `${g.name}/${"alert" in r ? r.alert : r.record}`;
      const parsed = parsePromql(r.expr);
      return [...parsed.errors.map((e) => `${where}: ${e}`), ...parsed.selectors.flatMap((s) => selectorProblems(where, s, recorded))];
    }),
  );
}

describe("rules use only registry metrics", () => {
  test.each(stacks.map((s) => [s.stack, s.groups] as const))("%s: every selector, label and job in the rules is declared", (_stack, groups) => {
    expect(ruleProblems(groups)).toEqual([]);
  });

  test("the check finds undeclared metrics, labels, values and jobs (it can fail)", () => {
    const bad: RenderedRuleGroup[] = [
      {
        name: "bad",
        rules: [
          { record: "x:y:z", expr: 'rate(knhk_requests_total[5m]) + on() knhk_http_requests_total{status="error"} + knhk_http_requests_total{status_class="6xx"} + up{job="nope"}' },
        ],
      },
    ];
    expect(ruleProblems(bad)).toEqual([
      "bad/x:y:z: knhk_requests_total is not in registry/metrics.yaml",
      "bad/x:y:z: knhk_http_requests_total has no label status (declared: method, route, status_class)",
      'bad/x:y:z: knhk_http_requests_total{status_class="6xx"} is outside the declared values 2xx, 3xx, 4xx, 5xx',
      'bad/x:y:z: job "nope" is not a scrape job',
    ]);
  });

  test("every recording rule an alert reads is defined", () => {
    const groups = stacks[0].groups;
    const recorded = new Set(groups.flatMap((g) => g.rules.flatMap((r) => ("record" in r ? [r.record] : []))));
    const used = groups.flatMap((g) => g.rules.flatMap((r) => parsePromql(r.expr).selectors.map((s) => s.metric))).filter((m) => m.includes(":"));
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((m) => !recorded.has(m))).toEqual([]);
  });
});

describe("dashboards use only registry metrics", () => {
  test.each(DASHBOARDS.map((d) => d.uid))("%s: every panel query parses and selects declared series", (uid) => {
    const d = DASHBOARDS.find((x) => x.uid === uid)!;
    const problems = dashboardQueries(d.build()).flatMap(({ panel, expr }) => {
      const parsed = parsePromql(expr.replace(/\$__rate_interval/g, "1m"));
      return [...parsed.errors.map((e) => `${panel}: ${e}`), ...parsed.selectors.flatMap((s) => selectorProblems(`${uid}/${panel}`, s, new Set()))];
    });
    expect(problems).toEqual([]);
  });
});

describe("runbooks", () => {
  const runbookDir = join(REPO, "runbooks");
  const alerts = stacks.flatMap(({ stack, config, groups }) =>
    groups.flatMap((g) => g.rules.filter(isAlertRule).map((a) => ({ stack, base: config.monitoring.runbookBaseUrl, alert: a }))),
  );

  test.each(alerts.map((a) => [a.stack, a.alert.alert, a] as const))("%s %s: runbook_url resolves to a runbook that documents the alert", (_stack, name, a) => {
    const url = a.alert.annotations.runbook_url;
    expect(url.startsWith(`${a.base.replace(/\/+$/, "")}/`)).toBe(true);
    const relative = url.slice(a.base.replace(/\/+$/, "").length + 1);
    expect(relative).toMatch(/^runbooks\/[a-z0-9-]+\.md$/);
    const file = join(REPO, relative);
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, "utf8")).toContain(name.replace(/BudgetBurn(Fast|Sustained|Slow|Chronic)$/, "BudgetBurn"));
  });

  test("every runbook is linked by an alert and listed in the index", () => {
    const linked = new Set(alerts.map((a) => a.alert.annotations.runbook_url.replace(/^.*\/runbooks\//, "")));
    const files = readdirSync(runbookDir).filter((f) => f.endsWith(".md") && f !== "README.md");
    expect(files.sort()).toEqual([...linked].sort());
    const index = readFileSync(join(runbookDir, "README.md"), "utf8");
    for (const f of files) expect(index).toContain(`(${f})`);
  });

  test("every `npm run <script>` a runbook tells the on-call engineer to run exists", () => {
    const scripts = Object.keys((JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts);
    const used = readdirSync(runbookDir).flatMap((f) => [...readFileSync(join(runbookDir, f), "utf8").matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]));
    expect(used.length).toBeGreaterThan(0);
    expect([...new Set(used)].filter((s) => !scripts.includes(s))).toEqual([]);
  });

  test("the Kubernetes objects and containers the runbooks name exist in the rendered prod stack", async () => {
    const prod = await renderTestStack("prod");
    const names = (kind: string) => new Set(prod.k8sObjects.filter((o) => o.kind === kind).map((o) => o.metadata.name));
    const text = readdirSync(runbookDir).map((f) => readFileSync(join(runbookDir, f), "utf8")).join("\n");
    const missing: string[] = [];
    const checked = new Set<string>();
    const expectIn = (kind: string, name: string) => {
      checked.add(`${kind} ${name}`);
      if (!names(kind).has(name)) missing.push(`${kind} ${name}`);
    };
    for (const m of text.matchAll(/\b(?:deploy\/|deployment )((?:knhk-[a-z]+)(?: knhk-[a-z]+)*)\b/g)) for (const n of m[1].split(" ")) expectIn("Deployment", n);
    for (const m of text.matchAll(/\b(?:svc\/|get svc )([a-z0-9-]+)/g)) expectIn("Service", m[1]);
    for (const m of text.matchAll(/\bcronjob\/([a-z0-9-]+)/g)) expectIn("CronJob", m[1]);
    for (const m of text.matchAll(/\bhpa (knhk-[a-z0-9-]+)/g)) expectIn("HorizontalPodAutoscaler", m[1]);
    for (const m of text.matchAll(/exec ([a-z-]+)-\d+ -c ([a-z-]+)/g)) {
      const sts = prod.k8sObjects.find((o) => o.kind === "StatefulSet" && o.metadata.name === m[1]);
      const containers = ((sts?.spec as { template?: { spec?: { containers?: { name: string }[] } } })?.template?.spec?.containers ?? []).map((c) => c.name);
      checked.add(`StatefulSet ${m[1]} container ${m[2]}`);
      if (!containers.includes(m[2])) missing.push(`StatefulSet ${m[1]} container ${m[2]}`);
    }
    expect(missing).toEqual([]);
    expect([...checked].sort()).toEqual(
      expect.arrayContaining(["CronJob pgbackrest-full", "Deployment knhk-blue", "Deployment knhk-green", "Service knhk-service", "Service postgres-primary", "StatefulSet postgres container patroni", "StatefulSet redis container redis", "StatefulSet redis-sentinel container sentinel"]),
    );
  });

  test("the guide's two runbooks exist with their key steps", () => {
    const pool = readFileSync(join(runbookDir, "database-connection-pool-exhausted.md"), "utf8");
    expect(pool).toMatch(/pg_stat_activity/);
    expect(pool).toMatch(/idle in transaction/);
    // The guide scales the Deployment by hand, which the HPA undoes: the runbook raises the HPA floor.
    expect(pool).toMatch(/kubectl -n "\$NS" patch hpa knhk-<active colour> --type merge -p '\{"spec":\{"minReplicas":6\}\}'/);
    expect(pool).not.toMatch(/kubectl -n "\$NS" scale deployment/);
    const chain = readFileSync(join(runbookDir, "receipt-chain-integrity-failure.md"), "utf8");
    for (const step of [/--replicas=0/, /kubectl -n "\$NS" create job --from=cronjob\/pgbackrest-full/, /pg_dump/, /security lead/i, /npm run knhk -- receipts verify-chain --format json/, /pg_stat_user_tables/, /key_version/]) {
      expect(chain).toMatch(step);
    }
  });

  test("the receipt runbook's verify-chain command runs and prints every field the runbook reads", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "knhk-verify-"));
    try {
      const r = spawnSync("npm", ["run", "-s", "knhk", "--", "receipts", "verify-chain", "--format", "json"], {
        cwd: REPO,
        encoding: "utf8",
        env: { PATH: process.env.PATH, HOME: process.env.HOME, KNHK_EMBEDDED_DATA_DIR: dataDir },
        timeout: 170_000,
      });
      expect(r.status).toBe(0);
      const report = JSON.parse(r.stdout) as Record<string, unknown>;
      const chain = readFileSync(join(runbookDir, "receipt-chain-integrity-failure.md"), "utf8");
      // identifiers inside the runbook's jq programs, without jq builtins such as sort_by(...)
      const programs = [...chain.matchAll(/jq '([^']*)'/g)].map((m) => m[1]);
      const fields = programs.flatMap((p) => [...p.matchAll(/\b([a-z]+(?:_[a-z]+)+)\b(?!\()/g)].map((m) => m[1]));
      expect(fields).toEqual(expect.arrayContaining(["total_count", "verified_count", "signature_failures", "chain_breaks", "retrocausation_violations", "last_verified_timestamp"]));
      for (const f of new Set(fields)) expect({ field: f, present: f in report }).toEqual({ field: f, present: true });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
