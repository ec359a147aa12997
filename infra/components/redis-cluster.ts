import * as k8s from "@pulumi/kubernetes";
import { ORPHAN_PODS_ON_DELETE, statefulSetOptions } from "./stateful-set-replacement";
import * as pulumi from "@pulumi/pulumi";
import type { RedisConfig } from "../config";
import {
  antiAffinity,
  emptyDirVolume,
  execProbe,
  httpProbe,
  labels,
  prometheusAnnotations,
  restrictedContainerSecurityContext,
  restrictedPodSecurityContext,
} from "../render/k8s";
import { redisInitScript, RedisTopology, renderRedisConf, renderSentinelConf, sentinelInitScript } from "../render/redis";
import { PORTS, REDIS, serviceHost } from "../render/topology";

export interface RedisClusterArgs {
  readonly namespace: string;
  /** The validated `knhk:redis` section. */
  readonly config: RedisConfig;
}

const REDIS_UID = 999;
const EXPORTER_UID = 59000;
const CONFIG_SOURCE = "/config";
const CONFIG_DIR = "/conf";
const DATA_DIR = "/data";

/**
 * Redis primary + replicas (one StatefulSet; Sentinel decides who is primary), 3 Sentinels,
 * redis_exporter on 9121, AOF `everysec`, `maxmemory` with an eviction policy, PDBs.
 */
export class RedisCluster extends pulumi.ComponentResource {
  /** `host:port` of every Sentinel, for the service's REDIS_SENTINELS. */
  public readonly sentinelAddresses: string[];
  public readonly masterName: string;

  constructor(name: string, args: RedisClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:cache:RedisCluster", name, args, opts);
    const { namespace: ns, config: cfg } = args;
    const child = { parent: this };
    const redisLabels = labels(REDIS.selector["app.kubernetes.io/name"], REDIS.selector["app.kubernetes.io/component"]);
    const sentinelLabels = labels(REDIS.sentinelSelector["app.kubernetes.io/name"], REDIS.sentinelSelector["app.kubernetes.io/component"]);
    const redisDomain = serviceHost(REDIS.headlessService, ns);
    const sentinelDomain = serviceHost(REDIS.sentinelService, ns);
    const topology: RedisTopology = {
      redisDomain,
      sentinelHost: sentinelDomain,
      masterName: REDIS.masterName,
      initialPrimary: `${REDIS.statefulSet}-0`,
      port: PORTS.redis,
      sentinelPort: PORTS.sentinel,
    };
    this.masterName = REDIS.masterName;
    this.sentinelAddresses = Array.from({ length: cfg.sentinels }, (_, i) => `${REDIS.sentinelStatefulSet}-${i}.${sentinelDomain}:${PORTS.sentinel}`);

    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      {
        metadata: { name: "redis", namespace: ns, labels: redisLabels },
        data: {
          "redis.conf": renderRedisConf({
            bind: ["0.0.0.0"],
            port: PORTS.redis,
            dir: DATA_DIR,
            maxmemory: cfg.maxmemory,
            maxmemoryPolicy: cfg.maxmemoryPolicy,
            minReplicasToWrite: cfg.minReplicasToWrite,
            minReplicasMaxLag: cfg.minReplicasMaxLag,
          }),
          "sentinel.conf": renderSentinelConf({
            bind: ["0.0.0.0"],
            port: PORTS.sentinel,
            dir: "/tmp",
            masterName: REDIS.masterName,
            master: { host: `${topology.initialPrimary}.${redisDomain}`, port: PORTS.redis },
            quorum: cfg.quorum,
            downAfterMilliseconds: cfg.downAfterMilliseconds,
            failoverTimeout: cfg.failoverTimeout,
          }),
          "redis-init.sh": redisInitScript(topology, `${CONFIG_SOURCE}/redis.conf`, `${CONFIG_DIR}/redis.conf`),
          "sentinel-init.sh": sentinelInitScript(topology, sentinelDomain, `${CONFIG_SOURCE}/sentinel.conf`, `${CONFIG_DIR}/sentinel.conf`),
        },
      },
      child,
    );

    const headless = (part: string, svcName: string, selector: Record<string, string>, svcLabels: Record<string, string>, ports: k8s.types.input.core.v1.ServicePort[]) =>
      new k8s.core.v1.Service(
        `${name}-${part}`,
        { metadata: { name: svcName, namespace: ns, labels: svcLabels }, spec: { clusterIP: "None", publishNotReadyAddresses: true, selector, ports } },
        child,
      );
    const redisService = headless("service", REDIS.headlessService, REDIS.selector, redisLabels, [
      { name: "redis", port: PORTS.redis, targetPort: "redis", protocol: "TCP" },
      { name: "metrics", port: PORTS.redisExporter, targetPort: "metrics", protocol: "TCP" },
    ]);
    const sentinelService = headless("sentinel-service", REDIS.sentinelService, REDIS.sentinelSelector, sentinelLabels, [
      { name: "sentinel", port: PORTS.sentinel, targetPort: "sentinel", protocol: "TCP" },
    ]);

    const small = { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "250m", memory: "128Mi" } };
    const configVolumes = [
      { name: "config-source", configMap: { name: configMap.metadata.name, defaultMode: 0o555 } },
      emptyDirVolume("conf", "1Mi"),
      emptyDirVolume("tmp", "64Mi"),
    ];
    const configMounts = [
      { name: "config-source", mountPath: CONFIG_SOURCE, readOnly: true },
      { name: "conf", mountPath: CONFIG_DIR },
      { name: "tmp", mountPath: "/tmp" },
    ];
    const ping = (port: number, t: { initialDelaySeconds: number; periodSeconds: number; timeoutSeconds: number; failureThreshold: number }) =>
      execProbe(["redis-cli", "-p", String(port), "ping"], t);

    new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: { name: REDIS.statefulSet, namespace: ns, labels: redisLabels, annotations: ORPHAN_PODS_ON_DELETE },
        spec: {
          serviceName: redisService.metadata.name,
          replicas: 1 + cfg.replicas,
          selector: { matchLabels: REDIS.selector },
          template: {
            metadata: { labels: redisLabels, annotations: prometheusAnnotations(PORTS.redisExporter) },
            spec: {
              securityContext: restrictedPodSecurityContext(REDIS_UID),
              affinity: antiAffinity(REDIS.selector),
              automountServiceAccountToken: false,
              initContainers: [
                {
                  name: "config",
                  image: cfg.image,
                  command: ["/bin/sh", `${CONFIG_SOURCE}/redis-init.sh`],
                  resources: small,
                  securityContext: restrictedContainerSecurityContext(REDIS_UID),
                  volumeMounts: configMounts,
                },
              ],
              containers: [
                {
                  name: "redis",
                  image: cfg.image,
                  command: ["redis-server", `${CONFIG_DIR}/redis.conf`],
                  ports: [{ name: "redis", containerPort: PORTS.redis, protocol: "TCP" }],
                  resources: cfg.resources,
                  securityContext: restrictedContainerSecurityContext(REDIS_UID),
                  startupProbe: ping(PORTS.redis, { initialDelaySeconds: 2, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 60 }),
                  livenessProbe: ping(PORTS.redis, { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 }),
                  readinessProbe: ping(PORTS.redis, { initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 }),
                  volumeMounts: [{ name: "data", mountPath: DATA_DIR }, ...configMounts],
                },
                {
                  name: "redis-exporter",
                  image: cfg.exporterImage,
                  env: [
                    { name: "REDIS_ADDR", value: `redis://localhost:${PORTS.redis}` },
                    { name: "REDIS_EXPORTER_WEB_LISTEN_ADDRESS", value: `:${PORTS.redisExporter}` },
                  ],
                  ports: [{ name: "metrics", containerPort: PORTS.redisExporter, protocol: "TCP" }],
                  resources: small,
                  securityContext: restrictedContainerSecurityContext(EXPORTER_UID),
                  livenessProbe: httpProbe("/health", "metrics", { initialDelaySeconds: 5, periodSeconds: 20, timeoutSeconds: 3, failureThreshold: 3 }),
                  readinessProbe: httpProbe("/health", "metrics", { initialDelaySeconds: 2, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 }),
                },
              ],
              volumes: configVolumes,
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: "data", labels: redisLabels },
              spec: { accessModes: ["ReadWriteOnce"], storageClassName: cfg.storage.className, resources: { requests: { storage: cfg.storage.size } } },
            },
          ],
        },
      },
      statefulSetOptions(child),
    );

    new k8s.apps.v1.StatefulSet(
      `${name}-sentinel-statefulset`,
      {
        metadata: { name: REDIS.sentinelStatefulSet, namespace: ns, labels: sentinelLabels, annotations: ORPHAN_PODS_ON_DELETE },
        spec: {
          serviceName: sentinelService.metadata.name,
          replicas: cfg.sentinels,
          podManagementPolicy: "Parallel",
          selector: { matchLabels: REDIS.sentinelSelector },
          template: {
            metadata: { labels: sentinelLabels },
            spec: {
              securityContext: restrictedPodSecurityContext(REDIS_UID),
              affinity: antiAffinity(REDIS.sentinelSelector),
              automountServiceAccountToken: false,
              initContainers: [
                {
                  name: "config",
                  image: cfg.image,
                  command: ["/bin/sh", `${CONFIG_SOURCE}/sentinel-init.sh`],
                  resources: small,
                  securityContext: restrictedContainerSecurityContext(REDIS_UID),
                  volumeMounts: configMounts,
                },
              ],
              containers: [
                {
                  name: "sentinel",
                  image: cfg.image,
                  command: ["redis-sentinel", `${CONFIG_DIR}/sentinel.conf`],
                  ports: [{ name: "sentinel", containerPort: PORTS.sentinel, protocol: "TCP" }],
                  resources: small,
                  securityContext: restrictedContainerSecurityContext(REDIS_UID),
                  startupProbe: ping(PORTS.sentinel, { initialDelaySeconds: 2, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 30 }),
                  livenessProbe: ping(PORTS.sentinel, { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 }),
                  readinessProbe: ping(PORTS.sentinel, { initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 }),
                  volumeMounts: configMounts,
                },
              ],
              volumes: configVolumes,
            },
          },
        },
      },
      statefulSetOptions(child),
    );

    const pdb = (part: string, pdbName: string, selector: Record<string, string>, pdbLabels: Record<string, string>, spec: { maxUnavailable?: number; minAvailable?: number }) =>
      new k8s.policy.v1.PodDisruptionBudget(`${name}-${part}`, { metadata: { name: pdbName, namespace: ns, labels: pdbLabels }, spec: { ...spec, selector: { matchLabels: selector } } }, child);
    pdb("pdb", REDIS.statefulSet, REDIS.selector, redisLabels, { maxUnavailable: 1 });
    // Keep a Sentinel quorum through voluntary disruptions.
    pdb("sentinel-pdb", REDIS.sentinelStatefulSet, REDIS.sentinelSelector, sentinelLabels, { minAvailable: cfg.quorum });

    this.registerOutputs({ sentinelAddresses: this.sentinelAddresses, masterName: this.masterName });
  }
}
