/** The pure rule builder: typed definitions in, rule groups out; bad definitions are refused naming the rule and field. */
import { knhkRuleAreas } from "../../infra/render/alert-catalogue";
import { renderRuleGroups, ruleProblems, runbookUrl, type AlertDefinition, type RuleArea } from "../../infra/render/alert-rules";

const ctx = { cluster: "prod", namespace: "knhk", runbookBaseUrl: "https://github.com/knhk/knhk/blob/main/" };
const good: AlertDefinition = {
  alert: "KnhkExample",
  expr: "up == 0",
  for: "5m",
  severity: "P2",
  summary: "s",
  description: "value {{ $value }}",
  runbook: "service-down",
};
const area = (alerts: AlertDefinition[]): RuleArea[] => [{ name: "example", alerts }];

test("renders labels, annotations and the runbook URL of every alert", () => {
  const [group] = renderRuleGroups(area([{ ...good, labels: { team: "sre" } }]), ctx);
  expect(group).toEqual({
    name: "knhk-example",
    rules: [
      {
        alert: "KnhkExample",
        expr: "up == 0",
        for: "5m",
        labels: { team: "sre", severity: "P2", cluster: "prod", namespace: "knhk" },
        annotations: { summary: "s", description: "value {{ $value }}", runbook_url: "https://github.com/knhk/knhk/blob/main/runbooks/service-down.md" },
      },
    ],
  });
  expect(renderRuleGroups(area([{ ...good, for: "0s" }]), ctx)[0].rules[0]).not.toHaveProperty("for");
  expect(runbookUrl("https://x.test/base///", "a-b")).toBe("https://x.test/base/runbooks/a-b.md");
});

test.each([
  [{ severity: "P4" }, 'alert KnhkExample: severity "P4" is not one of P0, P1, P2, P3'],
  [{ description: "no value here" }, "alert KnhkExample: description must show the value ({{ $value }})"],
  [{ for: "5 minutes" }, 'alert KnhkExample: for "5 minutes" is not a duration'],
  [{ runbook: "Service_Down.md" }, 'alert KnhkExample: runbook "Service_Down.md" must be a kebab-case file name without .md'],
  [{ alert: "knhk_example" }, "alert knhk_example: name must be UpperCamelCase"],
  [{ labels: { severity: "P0" } }, "alert KnhkExample: label severity is set by the renderer"],
  [{ expr: " " }, "alert KnhkExample: expr is empty"],
])("refuses %j: %s", (change, message) => {
  const problems = ruleProblems(area([{ ...good, ...(change as Partial<AlertDefinition>) }]));
  expect(problems).toEqual([`area example, ${message}`]);
  expect(() => renderRuleGroups(area([{ ...good, ...(change as Partial<AlertDefinition>) }]), ctx)).toThrow(message);
});

test("refuses duplicate alerts and a bad runbook base URL", () => {
  expect(ruleProblems(area([good, good]))).toEqual(["area example, alert KnhkExample: declared twice"]);
  expect(() => renderRuleGroups(area([good]), { ...ctx, runbookBaseUrl: "file:///tmp" })).toThrow(/runbookBaseUrl "file:\/\/\/tmp" must be an http\(s\) URL/);
});

test("the catalogue is valid and every alert shows its value and links a runbook", () => {
  const areas = knhkRuleAreas({ namespace: "knhk", cluster: "prod", sentinelQuorum: 2, maximumLagOnFailoverBytes: 1048576 });
  expect(ruleProblems(areas)).toEqual([]);
  const alerts = areas.flatMap((a) => a.alerts);
  expect(alerts.length).toBeGreaterThanOrEqual(30);
  expect(new Set(alerts.map((a) => a.severity))).toEqual(new Set(["P0", "P1", "P2", "P3"]));
});

test("the catalogue follows its options (quorum, failover lag, namespace, cluster)", () => {
  const areas = knhkRuleAreas({ namespace: "knhk-staging", cluster: "staging", sentinelQuorum: 3, maximumLagOnFailoverBytes: 4096 });
  const expr = (name: string) => areas.flatMap((a) => a.alerts).find((a) => a.alert === name)!.expr;
  expect(expr("KnhkRedisSentinelQuorumLost")).toMatch(/< 3$/);
  expect(expr("KnhkPatroniReplicationLag")).toMatch(/> 4096$/);
  expect(expr("KnhkHpaAtMaxReplicas")).toContain('namespace="knhk-staging"');
  expect(expr("KnhkP0AlertUnresolved")).toContain('cluster="staging"');
});
