/**
 * Every monitoring document of a stack from one input: the rule groups (per area), the
 * AlertmanagerConfig spec, the plain alertmanager.yml and the dashboards' JSON. The Monitoring
 * and Dashboards components wrap these in resources; `npm run render` and the tests write the
 * files `monitoringFiles` returns. Pure: no Pulumi.
 */
import { stringify } from "yaml";
import { dashboardFiles } from "../../dashboards";
import type { StackConfig } from "../config";
import { knhkRuleAreas } from "./alert-catalogue";
import { renderRuleGroups, ruleFile, type RenderedRuleGroup } from "./alert-rules";
import { alertmanagerConfigSpec, alertmanagerYaml, type AlertRoutingConfig } from "./alertmanager";
import { ledgerJobAlerting, type LedgerJobAlerting } from "./ledger-jobs";

export interface MonitoringInput {
  readonly namespace: string;
  readonly cluster: string;
  readonly runbookBaseUrl: string;
  readonly sentinelQuorum: number;
  readonly maximumLagOnFailoverBytes: number;
  readonly routing: AlertRoutingConfig;
  /** The scheduled ledger jobs the stack deploys (their staleness alerts). Default: none. */
  readonly ledgerJobs?: readonly LedgerJobAlerting[];
}

/** Where the Alertmanager pod mounts the receiver Secrets in the plain alertmanager.yml. */
export const ALERTMANAGER_SECRET_DIR = "/etc/alertmanager/secrets";

export interface MonitoringDocuments {
  /** One rule group per area, in creation order. */
  readonly ruleGroups: RenderedRuleGroup[];
  readonly alertmanagerConfigSpec: Record<string, unknown>;
  readonly alertmanagerYaml: Record<string, unknown>;
}

/** Fixed key names inside the receivers Secret. */
export const RECEIVER_SECRET_KEYS = {
  pagerRoutingKey: "pagerduty-routing-key",
  escalationRoutingKey: "pagerduty-escalation-key",
  chatWebhookUrl: "slack-webhook-url",
  ticketToken: "ticket-token",
} as const;

/** The monitoring input of a validated stack config. */
export function monitoringInput(config: StackConfig): MonitoringInput {
  const m = config.monitoring;
  const secret = m.receivers.secretName;
  // The schema requires it whenever monitoring is on (the only case that renders these documents).
  const ticketUrl = m.receivers.ticketUrl;
  if (ticketUrl === undefined) throw new Error("knhk:monitoring.receivers.ticketUrl: required to render the monitoring documents");
  return {
    namespace: config.namespace.name,
    cluster: m.cluster ?? config.stack,
    runbookBaseUrl: m.runbookBaseUrl,
    sentinelQuorum: config.redis.quorum,
    maximumLagOnFailoverBytes: config.patroni.maximumLagOnFailover,
    ledgerJobs: ledgerJobAlerting(config),
    routing: {
      pagerRoutingKey: { name: secret, key: RECEIVER_SECRET_KEYS.pagerRoutingKey },
      escalationRoutingKey: { name: secret, key: RECEIVER_SECRET_KEYS.escalationRoutingKey },
      chatWebhookUrl: { name: secret, key: RECEIVER_SECRET_KEYS.chatWebhookUrl },
      ticketToken: { name: secret, key: RECEIVER_SECRET_KEYS.ticketToken },
      chatChannel: m.receivers.chatChannel,
      ticketUrl,
      ...(m.receivers.pagerDutyUrl !== undefined ? { pagerDutyUrl: m.receivers.pagerDutyUrl } : {}),
    },
  };
}

export function monitoringDocuments(input: MonitoringInput, secretDir = ALERTMANAGER_SECRET_DIR): MonitoringDocuments {
  const areas = knhkRuleAreas({
    namespace: input.namespace,
    cluster: input.cluster,
    sentinelQuorum: input.sentinelQuorum,
    maximumLagOnFailoverBytes: input.maximumLagOnFailoverBytes,
    ledgerJobs: input.ledgerJobs,
  });
  return {
    ruleGroups: renderRuleGroups(areas, { cluster: input.cluster, namespace: input.namespace, runbookBaseUrl: input.runbookBaseUrl }),
    alertmanagerConfigSpec: alertmanagerConfigSpec(input.routing),
    alertmanagerYaml: alertmanagerYaml(input.routing, secretDir),
  };
}

/** Output-folder-relative path -> file text: prometheus/rules.yaml, alertmanager/alertmanager.yaml, dashboards/*.json. */
export function monitoringFiles(input: MonitoringInput): Record<string, string> {
  const docs = monitoringDocuments(input);
  const files: Record<string, string> = {
    "prometheus/rules.yaml": stringify(ruleFile(docs.ruleGroups), { lineWidth: 0 }),
    "alertmanager/alertmanager.yaml": stringify(docs.alertmanagerYaml, { lineWidth: 0 }),
  };
  for (const [name, json] of Object.entries(dashboardFiles())) files[`dashboards/${name}`] = json + "\n";
  return files;
}
