/**
 * Alert routing by severity, built once as a typed model and rendered two ways: the `spec` of a
 * prometheus-operator AlertmanagerConfig (monitoring.coreos.com/v1alpha1, secrets as
 * SecretKeySelectors) and a plain alertmanager.yml (secrets as files under a mount directory),
 * which `amtool check-config` and a real Alertmanager load in the tests. Pure: no Pulumi.
 *
 * P0 pages and re-pages every 30 min, P1 pages hourly, P2 goes to chat (4 h), P3 to tickets (24 h).
 * The escalation rules (alert-catalogue.ts) page the escalation receiver when a P0 is unresolved
 * after 30 min or a P1 after 1 h. A firing P0 inhibits P1-P3 alerts of the same cluster.
 */
import type { Severity } from "./alert-rules";

export interface SecretKeyRef {
  /** Kubernetes Secret in the stack's namespace. */
  readonly name: string;
  readonly key: string;
}

export interface AlertRoutingConfig {
  /** PagerDuty Events v2 routing key of the on-call service (P0, P1). */
  readonly pagerRoutingKey: SecretKeyRef;
  /** PagerDuty routing key of the escalation service (engineering manager). */
  readonly escalationRoutingKey: SecretKeyRef;
  /** PagerDuty Events API endpoint (the default is PagerDuty's). */
  readonly pagerDutyUrl?: string;
  /** Slack incoming-webhook URL (it embeds a token, so it lives in a Secret). */
  readonly chatWebhookUrl: SecretKeyRef;
  readonly chatChannel: string;
  /** Ticket system endpoint receiving Alertmanager webhooks. */
  readonly ticketUrl: string;
  /** Bearer token for the ticket endpoint. */
  readonly ticketToken: SecretKeyRef;
  /** How long the first notification of a group waits for more alerts (default 30s). */
  readonly groupWait?: string;
}

export interface Matcher {
  readonly name: string;
  readonly value: string;
  readonly matchType: "=" | "!=" | "=~" | "!~";
}

export type ReceiverKind = "pager" | "escalation" | "chat" | "ticket";

export interface ReceiverModel {
  readonly name: string;
  readonly kind: ReceiverKind;
  /** PagerDuty event severity for pager receivers. */
  readonly pagerSeverity?: "critical" | "error";
}

export interface RouteModel {
  readonly receiver: string;
  readonly matchers: readonly Matcher[];
  readonly repeatInterval: string;
  readonly groupWait?: string;
}

export interface InhibitRuleModel {
  readonly sourceMatch: readonly Matcher[];
  readonly targetMatch: readonly Matcher[];
  readonly equal: readonly string[];
}

export interface RoutingModel {
  readonly receivers: readonly ReceiverModel[];
  /** Fallback for alerts without a known severity. */
  readonly defaultReceiver: string;
  readonly groupBy: readonly string[];
  readonly groupWait: string;
  readonly groupInterval: string;
  readonly repeatInterval: string;
  /** First match wins (no `continue`). */
  readonly routes: readonly RouteModel[];
  readonly inhibitRules: readonly InhibitRuleModel[];
}

/** The on-call contract (DESIGN.md "Escalation"). */
export const SEVERITY_POLICY: Readonly<Record<Severity, { receiver: string; repeatInterval: string; escalateAfter?: string }>> = {
  P0: { receiver: "knhk-pager-p0", repeatInterval: "30m", escalateAfter: "30m" },
  P1: { receiver: "knhk-pager-p1", repeatInterval: "1h", escalateAfter: "1h" },
  P2: { receiver: "knhk-chat", repeatInterval: "4h" },
  P3: { receiver: "knhk-ticket", repeatInterval: "24h" },
};
export const ESCALATION_RECEIVER = "knhk-escalation";

const eq = (name: string, value: string): Matcher => ({ name, value, matchType: "=" });

export function routingModel(groupWait = "30s"): RoutingModel {
  return {
    receivers: [
      { name: "knhk-pager-p0", kind: "pager", pagerSeverity: "critical" },
      { name: "knhk-pager-p1", kind: "pager", pagerSeverity: "error" },
      { name: ESCALATION_RECEIVER, kind: "escalation", pagerSeverity: "critical" },
      { name: "knhk-chat", kind: "chat" },
      { name: "knhk-ticket", kind: "ticket" },
    ],
    defaultReceiver: "knhk-ticket",
    groupBy: ["alertname", "cluster"],
    groupWait,
    groupInterval: "5m",
    repeatInterval: "24h",
    routes: [
      // Escalations carry severity P0/P1 too: they must match before the severity routes.
      { receiver: ESCALATION_RECEIVER, matchers: [eq("escalation", "manager")], repeatInterval: "30m" },
      ...(Object.entries(SEVERITY_POLICY) as [Severity, (typeof SEVERITY_POLICY)[Severity]][]).map(([severity, p]) => ({
        receiver: p.receiver,
        matchers: [eq("severity", severity)],
        repeatInterval: p.repeatInterval,
        ...(severity === "P0" ? { groupWait: "0s" } : {}),
      })),
    ],
    inhibitRules: [
      {
        sourceMatch: [eq("severity", "P0")],
        targetMatch: [{ name: "severity", value: "P1|P2|P3", matchType: "=~" }],
        equal: ["cluster"],
      },
    ],
  };
}

function checkConfig(c: AlertRoutingConfig): void {
  const problems: string[] = [];
  const refs: [string, SecretKeyRef][] = [
    ["pagerRoutingKey", c.pagerRoutingKey],
    ["escalationRoutingKey", c.escalationRoutingKey],
    ["chatWebhookUrl", c.chatWebhookUrl],
    ["ticketToken", c.ticketToken],
  ];
  for (const [field, ref] of refs) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(ref.name)) problems.push(`${field}.name "${ref.name}" must be a Secret name`);
    if (!/^[-._a-zA-Z0-9]+$/.test(ref.key)) problems.push(`${field}.key "${ref.key}" must be a Secret key`);
  }
  if (!/^https?:\/\/\S+$/.test(c.ticketUrl)) problems.push(`ticketUrl "${c.ticketUrl}" must be an http(s) URL`);
  if (c.pagerDutyUrl !== undefined && !/^https?:\/\/\S+$/.test(c.pagerDutyUrl)) problems.push(`pagerDutyUrl "${c.pagerDutyUrl}" must be an http(s) URL`);
  if (!/^[#@]?[\w.-]+$/.test(c.chatChannel)) problems.push(`chatChannel "${c.chatChannel}" must be a Slack channel such as #knhk-alerts`);
  if (problems.length > 0) throw new Error(`invalid alert routing config:\n  - ${problems.join("\n  - ")}`);
}

// ---- AlertmanagerConfig (monitoring.coreos.com/v1alpha1) ----

export function alertmanagerConfigSpec(c: AlertRoutingConfig, model: RoutingModel = routingModel(c.groupWait)): Record<string, unknown> {
  checkConfig(c);
  return {
    route: {
      receiver: model.defaultReceiver,
      groupBy: [...model.groupBy],
      groupWait: model.groupWait,
      groupInterval: model.groupInterval,
      repeatInterval: model.repeatInterval,
      routes: model.routes.map((r) => ({
        receiver: r.receiver,
        matchers: r.matchers.map((m) => ({ ...m })),
        repeatInterval: r.repeatInterval,
        ...(r.groupWait !== undefined ? { groupWait: r.groupWait } : {}),
        continue: false,
      })),
    },
    inhibitRules: model.inhibitRules.map((i) => ({
      sourceMatch: i.sourceMatch.map((m) => ({ ...m })),
      targetMatch: i.targetMatch.map((m) => ({ ...m })),
      equal: [...i.equal],
    })),
    receivers: model.receivers.map((r) => crdReceiver(r, c)),
  };
}

function crdReceiver(r: ReceiverModel, c: AlertRoutingConfig): Record<string, unknown> {
  switch (r.kind) {
    case "pager":
    case "escalation":
      return {
        name: r.name,
        pagerdutyConfigs: [
          {
            routingKey: { ...(r.kind === "pager" ? c.pagerRoutingKey : c.escalationRoutingKey) },
            severity: r.pagerSeverity,
            sendResolved: true,
            ...(c.pagerDutyUrl !== undefined ? { url: c.pagerDutyUrl } : {}),
          },
        ],
      };
    case "chat":
      return { name: r.name, slackConfigs: [{ apiURL: { ...c.chatWebhookUrl }, channel: c.chatChannel, sendResolved: true, title: SLACK_TITLE, text: SLACK_TEXT }] };
    case "ticket":
      return {
        name: r.name,
        webhookConfigs: [{ url: c.ticketUrl, sendResolved: false, httpConfig: { authorization: { type: "Bearer", credentials: { ...c.ticketToken } } } }],
      };
  }
}

const SLACK_TITLE = '[{{ .Status | toUpper }}] {{ .CommonLabels.severity }} {{ .CommonLabels.alertname }}';
const SLACK_TEXT = '{{ range .Alerts }}{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\n{{ end }}';

// ---- plain alertmanager.yml ----

/** Where a Secret key is mounted in the Alertmanager pod (or written by a test). */
export function secretFile(mountDir: string, ref: SecretKeyRef): string {
  return `${mountDir.replace(/\/+$/, "")}/${ref.name}/${ref.key}`;
}

const matcherText = (m: Matcher) => `${m.name}${m.matchType}${JSON.stringify(m.value)}`;

/** The same routing tree as an alertmanager.yml document; secrets are read from `secretMountDir`. */
export function alertmanagerYaml(c: AlertRoutingConfig, secretMountDir: string, model: RoutingModel = routingModel(c.groupWait)): Record<string, unknown> {
  checkConfig(c);
  return {
    route: {
      receiver: model.defaultReceiver,
      group_by: [...model.groupBy],
      group_wait: model.groupWait,
      group_interval: model.groupInterval,
      repeat_interval: model.repeatInterval,
      routes: model.routes.map((r) => ({
        receiver: r.receiver,
        matchers: r.matchers.map(matcherText),
        repeat_interval: r.repeatInterval,
        ...(r.groupWait !== undefined ? { group_wait: r.groupWait } : {}),
        continue: false,
      })),
    },
    inhibit_rules: model.inhibitRules.map((i) => ({
      source_matchers: i.sourceMatch.map(matcherText),
      target_matchers: i.targetMatch.map(matcherText),
      equal: [...i.equal],
    })),
    receivers: model.receivers.map((r) => plainReceiver(r, c, secretMountDir)),
  };
}

function plainReceiver(r: ReceiverModel, c: AlertRoutingConfig, dir: string): Record<string, unknown> {
  switch (r.kind) {
    case "pager":
    case "escalation":
      return {
        name: r.name,
        pagerduty_configs: [
          {
            routing_key_file: secretFile(dir, r.kind === "pager" ? c.pagerRoutingKey : c.escalationRoutingKey),
            severity: r.pagerSeverity,
            send_resolved: true,
            ...(c.pagerDutyUrl !== undefined ? { url: c.pagerDutyUrl } : {}),
          },
        ],
      };
    case "chat":
      return { name: r.name, slack_configs: [{ api_url_file: secretFile(dir, c.chatWebhookUrl), channel: c.chatChannel, send_resolved: true, title: SLACK_TITLE, text: SLACK_TEXT }] };
    case "ticket":
      return {
        name: r.name,
        webhook_configs: [{ url: c.ticketUrl, send_resolved: false, http_config: { authorization: { type: "Bearer", credentials_file: secretFile(dir, c.ticketToken) } } }],
      };
  }
}
