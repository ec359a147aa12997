/**
 * The rendered alert rules against Debian's promtool: `check rules` on the rules of every stack,
 * and `test rules` for every alert: it is quiet one minute before its `for` elapses, fires exactly
 * when it does with the expected labels and annotations, and stays quiet just below its threshold.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isAlertRule, type RenderedAlertRule, type RenderedRuleGroup } from "../../infra/render/alert-rules";
import { monitoringFiles, monitoringInput } from "../../infra/render/monitoring-bundle";
import { listStacks } from "../../infra/testing/render";
import { ALERT_SCENARIOS, type AlertScenario } from "./scenarios";
import { gauge } from "./series";
import { expandTemplate, minutes, run, tempDir, testRuleGroups, writeRuleFile, writeYaml, removeTempDirs } from "./tools";
import { testStackConfig } from "../support/stack-identifiers";

afterAll(removeTempDirs);

const dir = tempDir("promtool");
const groups = testRuleGroups();
const alerts = groups.flatMap((g) => g.rules.filter(isAlertRule));
const rulesPath = writeRuleFile(dir);

function expectedAlert(rule: RenderedAlertRule, s: AlertScenario) {
  const labels = { severity: s.severity, cluster: "test", namespace: "knhk", ...s.labels };
  return {
    exp_labels: labels,
    exp_annotations: {
      summary: expandTemplate(rule.annotations.summary, s.value, labels),
      description: expandTemplate(rule.annotations.description, s.value, labels),
      runbook_url: rule.annotations.runbook_url,
    },
  };
}

/** promtool unit-test document for one alert. */
function unitTests(rule: RenderedAlertRule, s: AlertScenario, ruleFilePath: string) {
  const firesAt = s.start + minutes(rule.for ?? "0s");
  const horizon = firesAt + (s.stillFiringAfter ?? 10);
  const length = horizon + 5;
  const series = (list: AlertScenario["fire"]) => list.map((x) => ({ series: x.series, values: x.values(length) }));
  const expected = expectedAlert(rule, s);
  const check = (at: number, exp: unknown[]) => ({ eval_time: `${at}m`, alertname: rule.alert, exp_alerts: exp });
  return {
    rule_files: [ruleFilePath],
    evaluation_interval: "1m",
    tests: [
      {
        interval: "1m",
        input_series: series(s.fire),
        alert_rule_test: [
          ...(firesAt >= 1 ? [check(firesAt - 1, [])] : []),
          check(firesAt, [expected]),
          ...(s.stillFiringAfter !== undefined ? [check(horizon, [expected])] : []),
        ],
      },
      { interval: "1m", input_series: series(s.calm), alert_rule_test: [check(firesAt, []), check(horizon, [])] },
    ],
  };
}

function promtoolTest(rule: RenderedAlertRule, ruleFilePath = rulesPath) {
  const scenario = ALERT_SCENARIOS[rule.alert];
  const testPath = writeYaml(join(dir, `${rule.alert}.test.yaml`), unitTests(rule, scenario, ruleFilePath));
  return run("promtool", ["test", "rules", testPath]);
}

describe("promtool check rules", () => {
  test.each(listStacks())("the %s stack's rendered rules pass promtool check rules", (stack) => {
    const config = testStackConfig(stack);
    const stackDir = tempDir(`rules-${stack}`);
    const path = join(stackDir, "rules.yaml");
    writeFileSync(path, monitoringFiles(monitoringInput(config))["prometheus/rules.yaml"]);
    const result = run("promtool", ["check", "rules", path]);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.status).toBe(0);
  });

  test("promtool check rules rejects a broken expression (the check is real)", () => {
    const broken: RenderedRuleGroup[] = [{ name: "broken", rules: [{ ...alerts[0], expr: "sum(rate(knhk_http_requests_total[5m]" }] }];
    const result = run("promtool", ["check", "rules", writeRuleFile(tempDir("broken"), broken)]);
    expect(result.status).not.toBe(0);
    expect(result.output).toMatch(/parse error|unclosed/i);
  });
});

describe("promtool test rules: every alert", () => {
  test("every alert has a scenario and every scenario an alert", () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual(Object.keys(ALERT_SCENARIOS).sort());
  });

  test.each(alerts.map((a) => [a.alert, a] as const))("%s fires at its threshold after its for, not just below", (_name, rule) => {
    const result = promtoolTest(rule);
    if (result.status !== 0) throw new Error(result.output);
    expect(result.output).toMatch(/SUCCESS/);
  });

  test("KnhkReceiptChainBroken fires from a scheduled verification's recorded failures alone (no in-process verification)", () => {
    const rule = alerts.find((a) => a.alert === "KnhkReceiptChainBroken");
    if (!rule) throw new Error("KnhkReceiptChainBroken missing");
    const svc = { job: "knhk-service", instance: "a" };
    const scheduled = (mode: string, kind: string, n: number) => gauge("knhk_receipt_chain_verification_failures", { ...svc, kind, mode }, n);
    const noCounter = gauge("knhk_receipt_chain_breaks_total", { ...svc, kind: "parent_mismatch" }, 0);
    const scenario: AlertScenario = {
      severity: "P0",
      start: 0,
      // The weekly full run found 2 parent mismatches; the later incremental runs are clean.
      fire: [noCounter, scheduled("full", "parent_mismatch", 2), scheduled("incremental", "parent_mismatch", 0)],
      calm: [noCounter, scheduled("full", "parent_mismatch", 0), scheduled("incremental", "parent_mismatch", 0)],
      labels: { kind: "parent_mismatch" },
      value: "2",
    };
    const testPath = writeYaml(join(dir, "KnhkReceiptChainBroken-scheduled.test.yaml"), unitTests(rule, scenario, rulesPath));
    const result = run("promtool", ["test", "rules", testPath]);
    if (result.status !== 0) throw new Error(result.output);
    expect(result.output).toMatch(/SUCCESS/);
  });

  test("a threshold moved by the catalogue breaks its test (the unit tests can fail)", () => {
    const rule = alerts.find((a) => a.alert === "KnhkDbPoolExhausted");
    if (!rule) throw new Error("KnhkDbPoolExhausted missing");
    const moved: RenderedRuleGroup[] = [{ name: "moved", rules: [{ ...rule, expr: rule.expr.replace(/> 0\.95$/, "> 0.9") }] }];
    expect(moved[0].rules[0].expr).toMatch(/> 0\.9$/);
    const result = promtoolTest(rule, writeRuleFile(tempDir("moved"), moved));
    expect(result.status).not.toBe(0);
    expect(result.output).toMatch(/FAILED/);
  });

});
