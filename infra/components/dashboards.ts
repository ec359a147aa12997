import * as k8s from "@pulumi/kubernetes";
import * as grafana from "@pulumiverse/grafana";
import * as pulumi from "@pulumi/pulumi";
import { DASHBOARDS } from "../../dashboards";
import { labels } from "../render/k8s";

export interface DashboardsArgs {
  /** Create the folder and dashboards through the Grafana API (needs the `grafana:*` provider config). */
  readonly grafanaApi: boolean;
  readonly folderTitle: string;
  readonly folderUid: string;
  /** Ship the same JSON as ConfigMaps for the Grafana dashboard sidecar. */
  readonly sidecarConfigMaps: boolean;
  /** Namespace of the ConfigMaps (the one the sidecar watches). */
  readonly sidecarNamespace: string;
  /** Grafana provider; the default provider is used when absent. */
  readonly grafanaProvider?: grafana.Provider;
}

/** Label the Grafana sidecar (kube-prometheus-stack, grafana chart) picks dashboards up by. */
export const SIDECAR_LABEL = { grafana_dashboard: "1" } as const;

/**
 * The three KNHK dashboards (overview, database, MAPE-K loop), built by `dashboards/` with the
 * Grafana Foundation SDK: a Grafana folder and the dashboards via the Grafana API, and/or the
 * same JSON as sidecar ConfigMaps. Each delivery is switched per stack.
 */
export class Dashboards extends pulumi.ComponentResource {
  /** Dashboard uids in creation order. */
  public readonly uids: string[];
  public readonly folderUid?: pulumi.Output<string>;
  /** Grafana URLs of the dashboards (Grafana API delivery only). */
  public readonly urls: pulumi.Output<string>[];
  public readonly configMapNames: string[];

  constructor(name: string, args: DashboardsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:monitoring:Dashboards", name, args, opts);
    const child = { parent: this };
    const built = DASHBOARDS.map((d) => ({ definition: d, json: JSON.stringify(d.build()) }));
    this.uids = built.map((b) => b.definition.uid);
    this.urls = [];
    this.configMapNames = [];

    if (args.grafanaApi) {
      const grafanaOpts = { parent: this, ...(args.grafanaProvider ? { provider: args.grafanaProvider } : {}) };
      const folder = new grafana.oss.Folder(`${name}-folder`, { title: args.folderTitle, uid: args.folderUid }, grafanaOpts);
      this.folderUid = folder.uid;
      for (const b of built) {
        const dashboard = new grafana.oss.Dashboard(
          `${name}-${b.definition.uid}`,
          { folder: folder.uid, configJson: b.json, overwrite: true, message: "managed by pulumi (knhk)" },
          grafanaOpts,
        );
        this.urls.push(dashboard.url);
      }
    }

    if (args.sidecarConfigMaps) {
      for (const b of built) {
        const cmName = `grafana-dashboard-${b.definition.uid}`;
        new k8s.core.v1.ConfigMap(
          `${name}-configmap-${b.definition.uid}`,
          {
            metadata: {
              name: cmName,
              namespace: args.sidecarNamespace,
              labels: { ...labels("knhk-dashboards", "monitoring"), ...SIDECAR_LABEL },
              annotations: { grafana_folder: args.folderTitle },
            },
            data: { [b.definition.fileName]: b.json },
          },
          child,
        );
        this.configMapNames.push(cmName);
      }
    }

    this.registerOutputs({ uids: this.uids, folderUid: this.folderUid, urls: this.urls, configMapNames: this.configMapNames });
  }
}
