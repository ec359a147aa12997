import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labels } from "../render/k8s";
import { monitoringDocuments, type MonitoringInput } from "../render/monitoring-bundle";
import { podMonitorSpec, SCRAPE_JOBS } from "../render/scrape-targets";

export interface MonitoringArgs {
  /** Everything the rules and the routing are built from (see `monitoringInput(config)`). */
  readonly input: MonitoringInput;
  /** Labels the Prometheus/Alertmanager CRs select these objects by (e.g. `release: kube-prometheus-stack`). */
  readonly selectorLabels: Readonly<Record<string, string>>;
  /** Secret with `ca.crt` of Patroni's REST API certificate. */
  readonly patroniTlsSecret: string;
  /** Name Prometheus verifies in that certificate. */
  readonly patroniTlsServerName: string;
}

const MONITORING_API = "monitoring.coreos.com/v1";
const ALERTMANAGER_CONFIG_API = "monitoring.coreos.com/v1alpha1";

/**
 * Prometheus-operator objects for the KNHK namespace: a PodMonitor per scrape job (service
 * metrics port, postgres_exporter, Patroni REST /metrics, redis_exporter, Sentinels through
 * redis_exporter, pgbackrest_exporter), one PrometheusRule per alert area, and an
 * AlertmanagerConfig routing P0-P3 with receivers' credentials referenced from a Secret.
 */
export class Monitoring extends pulumi.ComponentResource {
  public readonly podMonitorNames: string[];
  public readonly prometheusRuleNames: string[];
  public readonly alertmanagerConfigName: string;
  /** Number of alerting rules across all PrometheusRules. */
  public readonly alertCount: number;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:monitoring:Monitoring", name, args, opts);
    const child = { parent: this };
    const ns = args.input.namespace;
    const docs = monitoringDocuments(args.input);
    const meta = (objectName: string) => ({
      name: objectName,
      namespace: ns,
      labels: { ...labels("knhk-monitoring", "monitoring"), ...args.selectorLabels },
    });

    this.podMonitorNames = [];
    for (const job of Object.values(SCRAPE_JOBS)) {
      new k8s.apiextensions.CustomResource(
        `${name}-podmonitor-${job.job}`,
        {
          apiVersion: MONITORING_API,
          kind: "PodMonitor",
          metadata: meta(job.job),
          spec: podMonitorSpec(job, { namespace: ns, patroniTlsSecret: args.patroniTlsSecret, patroniTlsServerName: args.patroniTlsServerName }),
        },
        child,
      );
      this.podMonitorNames.push(job.job);
    }

    this.prometheusRuleNames = [];
    for (const group of docs.ruleGroups) {
      new k8s.apiextensions.CustomResource(
        `${name}-rules-${group.name}`,
        { apiVersion: MONITORING_API, kind: "PrometheusRule", metadata: meta(group.name), spec: { groups: [group] } },
        child,
      );
      this.prometheusRuleNames.push(group.name);
    }
    this.alertCount = docs.ruleGroups.reduce((n, g) => n + g.rules.filter((r) => "alert" in r).length, 0);

    this.alertmanagerConfigName = "knhk-alert-routing";
    new k8s.apiextensions.CustomResource(
      `${name}-alertmanager-config`,
      { apiVersion: ALERTMANAGER_CONFIG_API, kind: "AlertmanagerConfig", metadata: meta(this.alertmanagerConfigName), spec: docs.alertmanagerConfigSpec },
      child,
    );

    this.registerOutputs({
      podMonitorNames: this.podMonitorNames,
      prometheusRuleNames: this.prometheusRuleNames,
      alertmanagerConfigName: this.alertmanagerConfigName,
      alertCount: this.alertCount,
    });
  }
}
