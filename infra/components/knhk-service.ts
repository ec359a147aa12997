import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { imageRef } from "../config/common";
import type { AppConfig } from "../config";
import { emptyDirVolume, httpProbe, labels, prometheusAnnotations, restrictedContainerSecurityContext, restrictedPodSecurityContext } from "../render/k8s";
import { renderAppSettings } from "../render/app-settings";
import { postgresCaVolume } from "../render/schema-migration";
import { APP, APP_FILES, PORTS, POSTGRES, REDIS } from "../render/topology";
import { databaseUrlTemplate, VAULT_AGENT_PROXY_ADDR, vaultAgentAnnotations } from "../render/vault-agent";
import { dirname, basename } from "node:path";

import { COLORS, type Color } from "../../app/src/config/env";

export { COLORS, type Color };

export interface KnhkServiceArgs {
  readonly namespace: string;
  /** The validated `knhk:app` section. */
  readonly config: AppConfig;
  /** `host:port` of every Redis Sentinel and the monitored master name. */
  readonly redis: { readonly sentinels: readonly string[]; readonly masterName: string };
  /** Vault: database credentials and receipt signing; absent: no Vault, the service uses its embedded database and an ephemeral key. */
  readonly vault?: KnhkServiceVault;
  /** The migration Job each colour waits for before its pods start (with Vault); default: none (the service migrates itself). */
  readonly migrationJobs?: Readonly<Record<Color, pulumi.Resource>>;
  /** IAM role of the service (IRSA): annotates ServiceAccount `knhk-service`; absent: no AWS identity. */
  readonly serviceAccountRoleArn?: pulumi.Input<string>;
  /** Namespace of the ingress controller (reaches port 8080) and of Prometheus (reaches 9090). */
  readonly ingressNamespace: string;
  readonly monitoringNamespace: string;
}

/** How the pods get their database connection and sign receipts when Vault is on. */
export interface KnhkServiceVault {
  /** Kubernetes auth role bound to ServiceAccount `knhk-service`. */
  readonly role: string;
  /** Dynamic credentials, e.g. `database/creds/knhk-app`. */
  readonly databaseCredsPath: string;
  /** The database role's max TTL: rendered credentials older than this are stale (/health vault degraded). */
  readonly credentialsMaxAgeSeconds: number;
  /** The PostgreSQL primary (the name on its certificate). */
  readonly database: { readonly host: string; readonly port: number; readonly name: string };
  /** Secret with `ca.crt`, the CA the PostgreSQL server certificate chains to (the Patroni TLS Secret). */
  readonly caSecretName: string;
  /** Transit mount and key that sign receipts (through the agent's API proxy). */
  readonly transit: { readonly mount: string; readonly key: string };
}

const APP_UID = 1000;

/** The API certificate's Secret, its two files only, readable by the pod's group (fsGroup), not by others. */
export function apiTlsVolume(secretName: string) {
  return {
    name: "api-tls",
    secret: { secretName, defaultMode: 0o440, items: [{ key: "tls.crt", path: basename(APP_FILES.tlsCert) }, { key: "tls.key", path: basename(APP_FILES.tlsKey) }] },
  };
}
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
        automountServiceAccountToken: args.vault !== undefined,
      },
      child,
    );
    this.serviceAccountName = serviceAccount.metadata.name;

    const settings = renderAppSettings(cfg, { redis: args.redis, embeddedDataDir: args.vault ? undefined : "/var/lib/knhk" });
    const configMap = new k8s.core.v1.ConfigMap(`${name}-config`, { metadata: { name: APP.configMap, namespace: ns, labels: common }, data: settings }, child);
    const configChecksum = createHash("sha256").update(JSON.stringify(settings)).digest("hex");

    // Only the colour this ConfigMap names leads the MAPE-K loop. Mounted as a file, not an
    // environment variable: switching colours updates it in every pod without restarting one.
    const activeColor = new k8s.core.v1.ConfigMap(
      `${name}-active-color`,
      { metadata: { name: APP.activeColorConfigMap, namespace: ns, labels: common }, data: { [basename(APP_FILES.activeColor)]: cfg.activeColor } },
      child,
    );
    const vault = args.vault;
    const tls = cfg.tls;
    const probeScheme = tls ? "HTTPS" : "HTTP";
    const vaultEnv = vault
      ? [
          // Vault Agent re-renders this file when it renews or re-issues the credential; the pool re-reads it.
          { name: "DATABASE_URL_FILE", value: APP_FILES.databaseUrl },
          { name: "KNHK_VAULT_CREDENTIALS_MAX_AGE_SECONDS", value: String(vault.credentialsMaxAgeSeconds) },
          // The migration Job applied the schema as its owner; the service has no DDL rights.
          { name: "KNHK_MIGRATE_ON_START", value: "false" },
          { name: "KNHK_SIGNING_VAULT_ADDR", value: VAULT_AGENT_PROXY_ADDR },
          { name: "KNHK_SIGNING_TRANSIT_MOUNT", value: vault.transit.mount },
          { name: "KNHK_SIGNING_TRANSIT_KEY", value: vault.transit.key },
        ]
      : [];
    const vaultAnnotations = vault
      ? vaultAgentAnnotations({
          role: vault.role,
          files: { [APP_FILES.databaseUrl]: databaseUrlTemplate(vault.databaseCredsPath, { ...vault.database, caFile: APP_FILES.postgresCa }) },
          apiProxy: true,
        })
      : {};

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
                  ...vaultAnnotations,
                  "checksum/config": configChecksum,
                },
              },
              spec: {
                serviceAccountName: serviceAccount.metadata.name,
                automountServiceAccountToken: vault !== undefined,
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
                    command: [...cfg.command],
                    ports: [
                      { name: "http", containerPort: PORTS.appHttp, protocol: "TCP" },
                      { name: "metrics", containerPort: PORTS.appMetrics, protocol: "TCP" },
                    ],
                    envFrom: [{ configMapRef: { name: configMap.metadata.name } }],
                    env: [
                      { name: "KNHK_COLOR", value: color },
                      { name: "KNHK_ACTIVE_COLOR_FILE", value: APP_FILES.activeColor },
                      { name: "OTEL_SERVICE_NAME", value: "knhk-closed-loop" },
                      ...vaultEnv,
                    ],
                    resources: cfg.resources,
                    securityContext: restrictedContainerSecurityContext(APP_UID),
                    livenessProbe: httpProbe("/health", "http", PROBES.liveness, probeScheme),
                    readinessProbe: httpProbe("/ready", "http", PROBES.readiness, probeScheme),
                    startupProbe: httpProbe("/health", "http", PROBES.startup, probeScheme),
                    volumeMounts: [
                      { name: "tmp", mountPath: "/tmp" },
                      { name: "active-color", mountPath: dirname(APP_FILES.activeColor), readOnly: true },
                      ...(vault ? [{ name: "postgres-ca", mountPath: dirname(APP_FILES.postgresCa), readOnly: true }] : [{ name: "embedded-data", mountPath: "/var/lib/knhk" }]),
                      ...(tls ? [{ name: "api-tls", mountPath: dirname(APP_FILES.tlsCert), readOnly: true }] : []),
                    ],
                  },
                ],
                volumes: [
                  emptyDirVolume("tmp", "256Mi"),
                  // By name, not by the resource's output: the Deployments must not change when the colour does.
                  { name: "active-color", configMap: { name: APP.activeColorConfigMap, defaultMode: 0o444 } },
                  ...(vault ? [postgresCaVolume(vault.caSecretName)] : [emptyDirVolume("embedded-data", "1Gi")]),
                  ...(tls ? [apiTlsVolume(tls.secretName)] : []),
                ],
              },
            },
          },
        },
        // The HPA owns the replica count once the Deployment exists. A colour starts only after the migrations of its image ran.
        { ...child, ignoreChanges: ["spec.replicas"], dependsOn: [activeColor, ...(args.migrationJobs ? [args.migrationJobs[color]] : [])] },
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
            // The OIDC issuers' JWKS endpoints live outside the cluster (Vault: allow-app-to-vault).
            { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [tcp(443)] },
          ],
        },
      },
      child,
    );

    this.registerOutputs({ serviceName: this.serviceName, serviceAccountName: this.serviceAccountName, activeColor: this.activeColor, images: this.images });
  }
}
