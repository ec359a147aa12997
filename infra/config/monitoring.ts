/**
 * `knhk:monitoring`: PodMonitors, PrometheusRules and the AlertmanagerConfig (prometheus-operator
 * CRDs; on in every stack: `local` renders the CRD objects).
 * Receiver credentials are never config values: they are keys of the Secret `receivers.secretName`.
 */
import { z } from "zod";
import { dnsLabel } from "./common";

const httpUrl = z.string().regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, "must be an http(s) URL");
const labelMap = z.record(
  z.string().regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, "must be a Kubernetes label key"),
  z.string().max(63),
);

export const monitoringSection = z
  .object({
    enabled: z.boolean().default(false),
    /** `cluster` label of every alert (inhibition scope); default: the stack name. */
    cluster: z.string().regex(/^[A-Za-z0-9_.-]+$/, "must be letters, digits, '_', '.', '-'").optional(),
    /** runbook_url = <runbookBaseUrl>/runbooks/<file>.md */
    runbookBaseUrl: httpUrl.default("https://github.com/knhk/knhk/blob/main"),
    /** Labels the Prometheus / Alertmanager CRs select PodMonitors, PrometheusRules and AlertmanagerConfigs by. */
    selectorLabels: labelMap.default({}),
    receivers: z
      .object({
        /** Secret with keys pagerduty-routing-key, pagerduty-escalation-key, slack-webhook-url, ticket-token. */
        secretName: dnsLabel.default("alertmanager-receivers"),
        chatChannel: z.string().regex(/^[#@]?[\w.-]+$/, "must be a Slack channel such as #knhk-alerts").default("#knhk-alerts"),
        /** The ticket system's Alertmanager webhook (P3): no default, it is the organisation's own. */
        ticketUrl: httpUrl.optional(),
        pagerDutyUrl: httpUrl.optional(),
      })
      .strict()
      .prefault({}),
    /** Name Prometheus verifies in Patroni's REST certificate; default postgres.<namespace>.svc. */
    patroniTlsServerName: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.enabled && m.receivers.ticketUrl === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["receivers", "ticketUrl"],
        input: undefined,
        message: "required when knhk:monitoring.enabled is true: the ticket system's Alertmanager webhook URL (no default: it is organisation-specific)",
      });
    }
  });
export type MonitoringConfig = z.infer<typeof monitoringSection>;
