import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { imageRef } from "../config/common";
import type { AppConfig } from "../config";
import { emptyDirVolume, httpProbe, labels, prometheusAnnotations, restrictedContainerSecurityContext, restrictedPodSecurityContext } from "../render/k8s";
import { APP, PORTS, POSTGRES, REDIS } from "../render/topology";
import { DATABASE_ENV_FILE, VAULT_SECRETS_DIR, vaultAgentAnnotations, VaultAgentInput } from "../render/vault-agent";

export type Color = "blue" | "green";
export const COLORS: readonly Color[] = ["blue", "green"];

export interface KnhkServiceArgs {
  readonly namespace: string;
  /** The validated `knhk:app` section. */
  readonly config: AppConfig;
  /** `host:port` of every Redis Sentinel and the monitored master name. */
  readonly redis: { readonly sentinels: readonly string[]; readonly masterName: string };
  /** Vault Agent injection of DATABASE_URL; absent: no Vault, the service uses its embedded database. */
  readonly vaultAgent?: VaultAgentInput;
  /** IAM role of the service (IRSA): annotates ServiceAccount `knhk-service`; absent: no AWS identity. */
  readonly serviceAccountRoleArn?: pulumi.Input<string>;
  /** Namespace of the ingress controller (reaches port 8080) and of Prometheus (reaches 9090). */
  readonly ingressNamespace: string;
  readonly monitoringNamespace: string;
}

const APP_UID = 1000;
export const COLOR_LABEL = "app.kubernetes.io/color";

/** Probe timings of the seed deployment (liveness 30/10/5/3, readiness 10/5/3/2, startup 0/5/3/30 = 150 s). */
export const PROBES = {
  liveness: { initialDelaySeconds: 30, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
  readiness: { initialDelaySeconds: 10, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 },
  startup: { initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 30 },
} as const;

/** The seed's HPA behaviour: scale up fast (double or +2 pods), scale down slowly (halve at most per minute after 5 min). */
export const HPA_BEHAVIOR: k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerBehavior = {
  scaleUp: {
    stabilizationWindowSeconds: 0,
    selectPolicy: "Max",
    policies: [
      { type: "Percent", value: 100, periodSeconds: 30 },
      { type: "Pods", value: 2, periodSeconds: 60 },
    ],
  },
  scaleDown: {
    stabilizationWindowSeconds: 300,
    selectPolicy: "Min",
    policies: [{ type: "Percent", value: 50, periodSeconds: 60 }],
  },
};

/**
 * The KNHK service in blue/green: ServiceAccount `knhk-service`, ConfigMap `knhk-config`,
 * Deployments `knhk-blue`/`knhk-green` (each pinned to its own version), Service
 * `knhk-service` selecting the active colour, per-colour Services for smoke tests, an HPA and
 * a PDB per colour, and the NetworkPolicy of the service pods.
 */
export class KnhkService extends pulumi.ComponentResource {
  public readonly serviceName: pulumi.Output<string>;
  public readonly serviceAccountName: pulumi.Output<string>;
  public readonly activeColor: Color;
  /** Image reference per colour. */
  public readonly images: Record<Color, string>;

  constructor(name: string, args: KnhkServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:app:KnhkService", name, args, opts);
    const { namespace: ns, config: cfg } = args;
    const child = { parent: this };
    const common = labels(APP.selector["app.kubernetes.io/name"], APP.selector["app.kubernetes.io/component"]);
    this.activeColor = cfg.activeColor;
    this.images = { blue: imageRef(cfg.image, cfg.versions.blue), green: imageRef(cfg.image, cfg.versions.green) };

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-service-account`,
      // The token is mounted only for Vault's Kubernetes auth; the service never calls the API.
      // IRSA's webhook projects its own web-identity token, independent of this setting.
      {
        metadata: {
          name: APP.serviceAccount,
          namespace: ns,
          labels: common,
          annotations: args.serviceAccountRoleArn ? { "eks.amazonaws.com/role-arn": args.serviceAccountRoleArn } : undefined,
        },
        automountServiceAccountToken: args.vaultAgent !== undefined,
      },
      child,
    );
    this.serviceAccountName = serviceAccount.metadata.name;

    const settings: Record<string, string> = {
      ...Object.fromEntries(Object.entries(cfg.settings).map(([k, v]) => [k, String(v)])),
      KNHK_PORT: String(PORTS.appHttp),
      KNHK_METRICS_PORT: String(PORTS.appMetrics),
      REDIS_SENTINELS: args.redis.sentinels.join(","),
      REDIS_SENTINEL_MASTER: args.redis.masterName,
    };
    if (!args.vaultAgent) settings.KNHK_EMBEDDED_DATA_DIR = "/var/lib/knhk";
    const configMap = new k8s.core.v1.ConfigMap(`${name}-config`, { metadata: { name: APP.configMap, namespace: ns, labels: common }, data: settings }, child);
    const configChecksum = createHash("sha256").update(JSON.stringify(settings)).digest("hex");

    const command = args.vaultAgent
      ? // Source the file Vault Agent renders (DATABASE_URL), then exec the service with its own argv.
        ["/bin/sh", "-c", `set -a && . ${VAULT_SECRETS_DIR}/${DATABASE_ENV_FILE} && set +a && exec "$0" "$@"`, ...cfg.command]
      : [...cfg.command];

    const service = (part: string, svcName: string, selector: Record<string, string>) =>
      new k8s.core.v1.Service(
        `${name}-${part}`,
        {
          metadata: { name: svcName, namespace: ns, labels: common },
          spec: {
            type: "ClusterIP",
            selector,
            ports: [
              { name: "http", port: PORTS.appHttp, targetPort: "http", protocol: "TCP" },
              { name: "metrics", port: PORTS.appMetrics, targetPort: "metrics", protocol: "TCP" },
            ],
          },
        },
        child,
      );

    for (const color of COLORS) {
      const deploymentName = APP.deployment(color);
      const selector = { ...APP.selector, [COLOR_LABEL]: color };
      const colorLabels = { ...common, [COLOR_LABEL]: color };
      // The version label is on the Deployment and its pods only, so a new version changes nothing else.
      const podLabels = { ...colorLabels, "app.kubernetes.io/version": cfg.versions[color] };
      const deployment = new k8s.apps.v1.Deployment(
        `${name}-${color}`,
        {
          metadata: { name: deploymentName, namespace: ns, labels: podLabels },
          spec: {
            replicas: cfg.replicas,
            revisionHistoryLimit: 5,
            selector: { matchLabels: selector },
            strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
            template: {
              metadata: {
                labels: podLabels,
                annotations: {
                  ...prometheusAnnotations(PORTS.appMetrics),
                  ...(args.vaultAgent ? vaultAgentAnnotations(args.vaultAgent) : {}),
                  "checksum/config": configChecksum,
                },
              },
              spec: {
                serviceAccountName: serviceAccount.metadata.name,
                automountServiceAccountToken: args.vaultAgent !== undefined,
                securityContext: restrictedPodSecurityContext(APP_UID),
                terminationGracePeriodSeconds: 30,
                topologySpreadConstraints: [
                  { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
                  { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector } },
                ],
                containers: [
                  {
                    name: "knhk",
                    image: this.images[color],
                    imagePullPolicy: "IfNotPresent",
                    command,
                    ports: [
                      { name: "http", containerPort: PORTS.appHttp, protocol: "TCP" },
                      { name: "metrics", containerPort: PORTS.appMetrics, protocol: "TCP" },
                    ],
                    envFrom: [{ configMapRef: { name: configMap.metadata.name } }],
                    env: [
                      { name: "KNHK_COLOR", value: color },
                      { name: "OTEL_SERVICE_NAME", value: "knhk-closed-loop" },
                    ],
                    resources: cfg.resources,
                    securityContext: restrictedContainerSecurityContext(APP_UID),
                    livenessProbe: httpProbe("/health", "http", PROBES.liveness),
                    readinessProbe: httpProbe("/ready", "http", PROBES.readiness),
                    startupProbe: httpProbe("/health", "http", PROBES.startup),
                    volumeMounts: [
                      { name: "tmp", mountPath: "/tmp" },
                      ...(args.vaultAgent ? [] : [{ name: "embedded-data", mountPath: "/var/lib/knhk" }]),
                    ],
                  },
                ],
                volumes: [emptyDirVolume("tmp", "256Mi"), ...(args.vaultAgent ? [] : [emptyDirVolume("embedded-data", "1Gi")])],
              },
            },
          },
        },
        // The HPA owns the replica count once the Deployment exists.
        { ...child, ignoreChanges: ["spec.replicas"] },
      );

      service(`${color}-service`, deploymentName, selector);

      new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        `${name}-${color}-hpa`,
        {
          metadata: { name: deploymentName, namespace: ns, labels: colorLabels },
          spec: {
            scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name },
            minReplicas: cfg.autoscaling.minReplicas,
            maxReplicas: cfg.autoscaling.maxReplicas,
            metrics: [
              { type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: cfg.autoscaling.cpuUtilization } } },
              { type: "Resource", resource: { name: "memory", target: { type: "Utilization", averageUtilization: cfg.autoscaling.memoryUtilization } } },
            ],
            behavior: HPA_BEHAVIOR,
          },
        },
        child,
      );

      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-${color}-pdb`,
        { metadata: { name: deploymentName, namespace: ns, labels: colorLabels }, spec: { maxUnavailable: 1, selector: { matchLabels: selector } } },
        child,
      );
    }

    const active = service("service", APP.service, { ...APP.selector, [COLOR_LABEL]: cfg.activeColor });
    this.serviceName = active.metadata.name;

    const tcp = (port: number) => ({ protocol: "TCP", port });
    const nsSelector = (namespace: string) => ({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } });
    new k8s.networking.v1.NetworkPolicy(
      `${name}-network-policy`,
      {
        metadata: { name: APP.service, namespace: ns, labels: common },
        spec: {
          podSelector: { matchLabels: APP.selector },
          policyTypes: ["Ingress", "Egress"],
          ingress: [
            { from: [nsSelector(args.ingressNamespace)], ports: [tcp(PORTS.appHttp)] },
            { from: [nsSelector(args.monitoringNamespace)], ports: [tcp(PORTS.appMetrics)] },
          ],
          egress: [
            { to: [{ podSelector: { matchLabels: POSTGRES.selector } }], ports: [tcp(PORTS.postgres)] },
            { to: [{ podSelector: { matchLabels: REDIS.selector } }], ports: [tcp(PORTS.redis)] },
            { to: [{ podSelector: { matchLabels: REDIS.sentinelSelector } }], ports: [tcp(PORTS.sentinel)] },
            {
              to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
              ports: [{ protocol: "UDP", port: 53 }, tcp(53)],
            },
            // Vault (agent sidecar) and the OIDC issuers' JWKS endpoints live outside the cluster.
            { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [tcp(443), tcp(8200)] },
          ],
        },
      },
      child,
    );

    this.registerOutputs({ serviceName: this.serviceName, serviceAccountName: this.serviceAccountName, activeColor: this.activeColor, images: this.images });
  }
}
