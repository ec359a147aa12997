/**
 * Typed alert and recording rule definitions, and their rendering into Prometheus rule groups
 * (the `groups:` document promtool reads, and the `spec` of a PrometheusRule). Pure: no Pulumi.
 */

export const SEVERITIES = ["P0", "P1", "P2", "P3"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A Prometheus duration such as `30s`, `5m`, `1h`, `3d` (`0s` = fire on the first evaluation). */
export type Duration = `${number}${"s" | "m" | "h" | "d"}`;

export interface AlertDefinition {
  /** UpperCamelCase alert name, unique across all areas. */
  readonly alert: string;
  readonly expr: string;
  readonly for: Duration;
  readonly severity: Severity;
  /** One line; may use `{{ $labels.x }}`. */
  readonly summary: string;
  /** Must show the value: contains `{{ $value` (optionally piped through humanize*). */
  readonly description: string;
  /** File name (without `.md`) of the runbook in `runbooks/`. */
  readonly runbook: string;
  /** Extra static labels (severity, cluster and namespace are added for every alert). */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface RecordingDefinition {
  /** `level:metric:operations` naming. */
  readonly record: string;
  readonly expr: string;
}

/** One rule group: one PrometheusRule object per area. */
export interface RuleArea {
  /** Short kebab-case name; the group is `knhk-<name>`. */
  readonly name: string;
  readonly interval?: Duration;
  readonly recordings?: readonly RecordingDefinition[];
  readonly alerts: readonly AlertDefinition[];
}

/** Where the alerts come from: static labels on every alert and the runbook location. */
export interface AlertContext {
  /** Value of the `cluster` label (inhibition is scoped by it). */
  readonly cluster: string;
  /** Kubernetes namespace of the stack; also a label, since AlertmanagerConfig matches on it. */
  readonly namespace: string;
  /** Base URL runbook paths are appended to, e.g. `https://github.com/knhk/knhk/blob/main`. */
  readonly runbookBaseUrl: string;
}

export interface RenderedAlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: Record<string, string>;
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook_url: string };
}
export interface RenderedRecordingRule {
  readonly record: string;
  readonly expr: string;
}
export type RenderedRule = RenderedAlertRule | RenderedRecordingRule;

export interface RenderedRuleGroup {
  readonly name: string;
  readonly interval?: string;
  readonly rules: RenderedRule[];
}

const ALERT_NAME = /^[A-Z][A-Za-z0-9]+$/;
const RECORD_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*(:[a-zA-Z0-9_]+)+$/;
const AREA_NAME = /^[a-z][a-z0-9-]*$/;
const RUNBOOK_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const DURATION = /^\d+(s|m|h|d)$/;
const VALUE_IN_TEMPLATE = /\{\{\s*\$value\b/;
const RESERVED_LABELS = ["severity", "cluster", "namespace", "alertname"];

/** Every problem of a rule set, each naming the area, the rule and the field; empty when valid. */
export function ruleProblems(areas: readonly RuleArea[]): string[] {
  const problems: string[] = [];
  const alertNames = new Set<string>();
  const areaNames = new Set<string>();
  for (const area of areas) {
    const where = `area ${area.name}`;
    if (!AREA_NAME.test(area.name)) problems.push(`${where}: name must be kebab-case`);
    if (areaNames.has(area.name)) problems.push(`${where}: declared twice`);
    areaNames.add(area.name);
    if (area.interval !== undefined && !DURATION.test(area.interval)) problems.push(`${where}: interval "${area.interval}" is not a duration`);
    if (area.alerts.length === 0 && (area.recordings ?? []).length === 0) problems.push(`${where}: has no rules`);
    for (const r of area.recordings ?? []) {
      if (!RECORD_NAME.test(r.record)) problems.push(`${where}, record ${r.record}: name must be level:metric:operations`);
      if (r.expr.trim() === "") problems.push(`${where}, record ${r.record}: expr is empty`);
    }
    for (const a of area.alerts) {
      const at = `${where}, alert ${a.alert}`;
      if (!ALERT_NAME.test(a.alert)) problems.push(`${at}: name must be UpperCamelCase`);
      if (alertNames.has(a.alert)) problems.push(`${at}: declared twice`);
      alertNames.add(a.alert);
      if (a.expr.trim() === "") problems.push(`${at}: expr is empty`);
      if (!DURATION.test(a.for)) problems.push(`${at}: for "${a.for}" is not a duration`);
      if (!(SEVERITIES as readonly string[]).includes(a.severity)) problems.push(`${at}: severity "${a.severity}" is not one of ${SEVERITIES.join(", ")}`);
      if (a.summary.trim() === "") problems.push(`${at}: summary is empty`);
      if (!VALUE_IN_TEMPLATE.test(a.description)) problems.push(`${at}: description must show the value ({{ $value }})`);
      if (!RUNBOOK_NAME.test(a.runbook)) problems.push(`${at}: runbook "${a.runbook}" must be a kebab-case file name without .md`);
      for (const key of Object.keys(a.labels ?? {})) {
        if (RESERVED_LABELS.includes(key)) problems.push(`${at}: label ${key} is set by the renderer`);
      }
    }
  }
  return problems;
}

export function runbookUrl(baseUrl: string, runbook: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/runbooks/${runbook}.md`;
}

/** Renders the areas into rule groups; throws listing every problem when the set is invalid. */
export function renderRuleGroups(areas: readonly RuleArea[], ctx: AlertContext): RenderedRuleGroup[] {
  const problems = ruleProblems(areas);
  if (!/^https?:\/\/\S+$/.test(ctx.runbookBaseUrl)) problems.push(`runbookBaseUrl "${ctx.runbookBaseUrl}" must be an http(s) URL`);
  if (ctx.cluster.trim() === "") problems.push("cluster must not be empty");
  if (problems.length > 0) throw new Error(`invalid alert rules:\n  - ${problems.join("\n  - ")}`);
  return areas.map((area) => ({
    name: `knhk-${area.name}`,
    ...(area.interval !== undefined ? { interval: area.interval } : {}),
    rules: [
      ...(area.recordings ?? []).map((r) => ({ record: r.record, expr: r.expr })),
      ...area.alerts.map((a) => renderAlert(a, ctx)),
    ],
  }));
}

function renderAlert(a: AlertDefinition, ctx: AlertContext): RenderedAlertRule {
  return {
    alert: a.alert,
    expr: a.expr,
    ...(a.for !== "0s" ? { for: a.for } : {}),
    labels: { ...(a.labels ?? {}), severity: a.severity, cluster: ctx.cluster, namespace: ctx.namespace },
    annotations: { summary: a.summary, description: a.description, runbook_url: runbookUrl(ctx.runbookBaseUrl, a.runbook) },
  };
}

/** The Prometheus rule file (`promtool check rules` input). */
export function ruleFile(groups: readonly RenderedRuleGroup[]): { groups: RenderedRuleGroup[] } {
  return { groups: [...groups] };
}

export function isAlertRule(rule: RenderedRule): rule is RenderedAlertRule {
  return "alert" in rule;
}
