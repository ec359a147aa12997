import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import { ORPHAN_PODS_ON_DELETE, statefulSetOptions } from "./stateful-set-replacement";
import * as pulumi from "@pulumi/pulumi";
import type { PatroniConfig } from "../config";
import {
  antiAffinity,
  emptyDirVolume,
  httpProbe,
  labels,
  prometheusAnnotations,
  restrictedContainerSecurityContext,
  restrictedPodSecurityContext,
  tcpProbe,
} from "../render/k8s";
import { buildPostBootstrapScript, renderPatroniYaml } from "../render/patroni";
import { PATRONI_ROLE_RULES } from "../render/patroni-rbac";
import {
  archiveCommands,
  backupScript,
  CIPHER_PASS_ENV,
  PgbackrestRepo,
  renderPgbackrestConf,
  replicaRestoreCommand,
  restoreTestScript,
} from "../render/pgbackrest";
import { BACKUP, PORTS, POSTGRES, serviceHost } from "../render/topology";

export interface PatroniClusterArgs {
  /** Kubernetes namespace (already created). */
  readonly namespace: string;
  /** The validated `knhk:patroni` section. */
  readonly config: PatroniConfig;
  /** S3 bucket of the backup repository; overrides `config.backup.repo.bucket` (e.g. the archive's bucket). */
  readonly backupBucket?: pulumi.Input<string>;
  /** IAM role for the service accounts that reach S3 (IRSA annotation). */
  readonly backupRoleArn?: pulumi.Input<string>;
}

const POSTGRES_UID = 999;
const EXPORTER_UID = 65534;
const DATA_MOUNT = "/home/postgres/pgdata";
const DATA_DIR = `${DATA_MOUNT}/pgroot/data`;
const BIN_DIR = "/usr/lib/postgresql/15/bin";
const SOCKET_DIR = "/var/run/postgresql";
const PATRONI_DIR = "/etc/patroni";
const TLS_DIR = "/etc/patroni/tls";
const PGBACKREST_DIR = "/etc/pgbackrest";
const PGBACKREST_CONF = `${PGBACKREST_DIR}/pgbackrest.conf`;
const CLIENT_TLS_DIR = "/etc/pgbackrest/client-tls";
// pgbackrest_exporter's image keeps its binary in /etc/pgbackrest: the member's pgbackrest.conf mounts beside it.
const PGBACKREST_EXPORTER_BIN = "/etc/pgbackrest/pgbackrest_exporter";
const PGBACKREST_EXPORTER_CONF_DIR = "/etc/pgbackrest-exporter";
const PGBACKREST_EXPORTER_PORT_NAME = "pgbackrest-exp";
/** Seconds between `pgbackrest info` runs (each one lists the repository). */
const PGBACKREST_EXPORTER_INTERVAL = 300;
const BACKUP_CLIENT_CN = "pgbackrest-repo";
const EXPORTER_USER = "postgres_exporter";
/** Keys of the credentials Secret (`credentialsSecretName`); `vault-admin-password` is Vault's first password, read once by the bootstrap. */
export const CREDENTIAL_KEYS = {
  superuser: "superuser-password",
  replication: "replication-password",
  rewind: "rewind-password",
  exporter: "exporter-password",
  vaultAdmin: "vault-admin-password",
} as const;
const VAULT_ADMIN_PASSWORD_ENV = "VAULT_ADMIN_PASSWORD";

/** Patroni REST path that is 200 only while PostgreSQL answers (verified against Patroni 4.0.7 in test/system/patroni.test.ts). */
const PATRONI_WRITABLE_HEALTH_PATH = "/health";

/** The port name of postgres-primary, matched by the leader Endpoints Patroni writes. */
const PRIMARY_PORT_NAME = "postgresql";

/**
 * postgres-primary. On the Kubernetes DCS it has no selector: its Endpoints are Patroni's leader
 * lock, written by the member that holds it. On etcd it selects the role label (a dead node's pod
 * keeps `primary` there until the node controller marks it not ready).
 */
export function primaryServiceSpec(dcs: PatroniConfig["dcs"]["type"]): k8s.types.input.core.v1.ServiceSpec {
  const port = { name: PRIMARY_PORT_NAME, port: PORTS.postgres, protocol: "TCP" };
  return dcs === "kubernetes"
    ? { type: "ClusterIP", ports: [{ ...port, targetPort: PORTS.postgres }] }
    : { type: "ClusterIP", selector: { ...POSTGRES.selector, [POSTGRES.roleLabel]: POSTGRES.primaryRole }, ports: [{ ...port, targetPort: PRIMARY_PORT_NAME }] };
}

const tlsFiles = (dir: string) => ({ certFile: `${dir}/tls.crt`, keyFile: `${dir}/tls.key`, caFile: `${dir}/ca.crt` });

/**
 * PostgreSQL 15 managed by Patroni: Kubernetes DCS (ServiceAccount + Role) or etcd, a
 * StatefulSet with TLS, anti-affinity and a PDB, Services `postgres` (headless),
 * `postgres-primary` and `postgres-replicas` selecting the role label values Patroni sets,
 * postgres_exporter on 9187, pgbackrest_exporter on 9854 (reads the repository with the
 * member's pgbackrest.conf), and pgBackRest (WAL archive, full/incremental CronJobs, a
 * monthly restore test that checks the receipts table).
 */
export class PatroniCluster extends pulumi.ComponentResource {
  public readonly primaryService: pulumi.Output<string>;
  public readonly replicasService: pulumi.Output<string>;
  public readonly headlessService: pulumi.Output<string>;
  /** Full host name clients connect to for writes. */
  public readonly primaryHost: string;
  public readonly statefulSet: k8s.apps.v1.StatefulSet;
  /** The rendered patroni.yml (also in ConfigMap `postgres-patroni`). */
  public readonly patroniYaml: string;

  constructor(name: string, args: PatroniClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:database:PatroniCluster", name, args, opts);
    const { namespace: ns, config: cfg } = args;
    const common = labels(POSTGRES.selector["app.kubernetes.io/name"], POSTGRES.selector["app.kubernetes.io/component"]);
    const podLabels = { ...common, [POSTGRES.scopeLabel]: POSTGRES.cluster };
    const child = { parent: this };
    const headlessHost = serviceHost(POSTGRES.headlessService, ns);
    const memberHost = (i: number) => `${POSTGRES.statefulSet}-${i}.${headlessHost}`;
    const serviceAccountAnnotations = args.backupRoleArn ? { "eks.amazonaws.com/role-arn": args.backupRoleArn } : undefined;

    // --- DCS access -------------------------------------------------------------------------
    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-service-account`,
      { metadata: { name: POSTGRES.serviceAccount, namespace: ns, labels: common, annotations: serviceAccountAnnotations }, automountServiceAccountToken: cfg.dcs.type === "kubernetes" },
      child,
    );
    if (cfg.dcs.type === "kubernetes") {
      const role = new k8s.rbac.v1.Role(
        `${name}-role`,
        {
          metadata: { name: POSTGRES.serviceAccount, namespace: ns, labels: common },
          rules: PATRONI_ROLE_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })),
        },
        child,
      );
      new k8s.rbac.v1.RoleBinding(
        `${name}-role-binding`,
        {
          metadata: { name: POSTGRES.serviceAccount, namespace: ns, labels: common },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
          subjects: [{ kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace: ns }],
        },
        child,
      );
    }

    // --- Configuration documents ------------------------------------------------------------
    const commands = archiveCommands(POSTGRES.stanza, PGBACKREST_CONF);
    this.patroniYaml = renderPatroniYaml({
      scope: POSTGRES.cluster,
      dcs:
        cfg.dcs.type === "kubernetes"
          ? {
              type: "kubernetes",
              namespace: ns,
              labels: POSTGRES.selector,
              scopeLabel: POSTGRES.scopeLabel,
              roles: { roleLabel: POSTGRES.roleLabel, leaderValue: POSTGRES.primaryRole, followerValue: POSTGRES.replicaRole },
              primaryPort: { name: PRIMARY_PORT_NAME, port: PORTS.postgres },
            }
          : { type: "etcd3", hosts: cfg.dcs.hosts },
      timing: {
        ttl: cfg.ttl,
        loopWait: cfg.loopWait,
        retryTimeout: cfg.retryTimeout,
        primaryStartTimeout: cfg.primaryStartTimeout,
        maximumLagOnFailover: cfg.maximumLagOnFailover,
      },
      restApi: { listen: `0.0.0.0:${PORTS.patroniApi}`, tls: tlsFiles(TLS_DIR) },
      postgresql: {
        listen: `0.0.0.0:${PORTS.postgres}`,
        dataDir: DATA_DIR,
        binDir: BIN_DIR,
        socketDir: SOCKET_DIR,
        pgpassFile: "/tmp/pgpass",
        tls: tlsFiles(TLS_DIR),
        superuser: "postgres",
        replicationUser: "replicator",
        rewindUser: "rewind_user",
        parameters: cfg.postgresParameters,
        // NetworkPolicies decide who reaches the pods; inside, every TCP login is TLS + SCRAM.
        allowedCidrs: ["0.0.0.0/0"],
      },
      archive: { command: commands.archive, restoreCommand: commands.restore, timeoutSeconds: 300 },
      pgbackrestReplicaCommand: replicaRestoreCommand(POSTGRES.stanza, PGBACKREST_CONF),
      postBootstrapScript: `${PATRONI_DIR}/post-bootstrap.sh`,
      watchdog: "off",
    });
    const postBootstrap = buildPostBootstrapScript({
      database: POSTGRES.database,
      exporterUser: EXPORTER_USER,
      exporterPasswordEnv: "EXPORTER_PASSWORD",
      roles: { service: POSTGRES.serviceDbRole, owner: POSTGRES.ownerDbUser, vaultAdmin: POSTGRES.vaultAdminDbUser, vaultAdminPasswordEnv: VAULT_ADMIN_PASSWORD_ENV },
    });

    const repo: pulumi.Output<PgbackrestRepo> = pulumi.output(args.backupBucket).apply((bucketOverride): PgbackrestRepo => {
      const r = cfg.backup.repo;
      return r.type === "s3"
        ? { type: "s3", bucket: bucketOverride ?? r.bucket, region: r.region, endpoint: r.endpoint, path: r.path, keyType: "web-id" }
        : { type: "posix", path: r.path };
    });
    const pgbackrestCommon = { stanza: POSTGRES.stanza, retentionFull: cfg.backup.retentionFull, encrypt: true, logPath: "/tmp/pgbackrest/log", lockPath: "/tmp/pgbackrest/lock" };
    const dbSideConf = repo.apply((r) =>
      renderPgbackrestConf({
        ...pgbackrestCommon,
        repo: r,
        pg: { kind: "local", path: DATA_DIR, port: PORTS.postgres, socketPath: SOCKET_DIR },
        tlsServer: { address: "*", port: PORTS.pgbackrestServer, tls: tlsFiles(TLS_DIR), allowedClientCns: [BACKUP_CLIENT_CN] },
      }),
    );
    const repoSideConf = repo.apply((r) =>
      renderPgbackrestConf({
        ...pgbackrestCommon,
        repo: r,
        pg: {
          kind: "remote",
          hosts: Array.from({ length: cfg.members }, (_, i) => memberHost(i)),
          path: DATA_DIR,
          port: PORTS.postgres,
          socketPath: SOCKET_DIR,
          tlsPort: PORTS.pgbackrestServer,
          tls: tlsFiles(CLIENT_TLS_DIR),
        },
      }),
    );
    // The restore test needs only the repository (it restores locally into scratch space).
    const restoreSideConf = repo.apply((r) =>
      renderPgbackrestConf({ ...pgbackrestCommon, repo: r, pg: { kind: "local", path: "/scratch/data", port: 5433, socketPath: "/tmp" } }),
    );

    const patroniConfigMap = new k8s.core.v1.ConfigMap(
      `${name}-patroni-config`,
      {
        metadata: { name: "postgres-patroni", namespace: ns, labels: common },
        data: { "patroni.yml": this.patroniYaml, "post-bootstrap.sh": postBootstrap, "pgbackrest.conf": dbSideConf },
      },
      child,
    );
    const backupConfigMap = new k8s.core.v1.ConfigMap(
      `${name}-backup-config`,
      {
        metadata: { name: "pgbackrest", namespace: ns, labels: labels("pgbackrest", "backup") },
        data: {
          "pgbackrest.conf": repoSideConf,
          "restore-pgbackrest.conf": restoreSideConf,
          "backup-full.sh": backupScript({ stanza: POSTGRES.stanza, configFile: PGBACKREST_CONF, type: "full" }),
          "backup-incr.sh": backupScript({ stanza: POSTGRES.stanza, configFile: PGBACKREST_CONF, type: "incr" }),
          "restore-test.sh": restoreTestScript({
            stanza: POSTGRES.stanza,
            configFile: `${PGBACKREST_DIR}/restore-pgbackrest.conf`,
            scratchDir: "/scratch",
            binDir: BIN_DIR,
            port: 5433,
            socketDir: "/tmp",
            database: POSTGRES.database,
            table: "receipts",
          }),
        },
      },
      child,
    );

    // --- Services ---------------------------------------------------------------------------
    const service = (part: string, svcName: string, spec: k8s.types.input.core.v1.ServiceSpec, annotations?: Record<string, string>) =>
      new k8s.core.v1.Service(`${name}-${part}`, { metadata: { name: svcName, namespace: ns, labels: common, annotations }, spec }, child);
    // Which pod backs the role Services is decided at run time by Patroni's leader election (it
    // sets the role label), not by the deploy: a one-member cluster never has a replica endpoint,
    // and a deploy during a failover must not wait for it. The StatefulSet's readiness is the
    // deploy's gate; the Services are created without waiting for endpoints.
    const patroniRouted = { "pulumi.com/skipAwait": "true" };
    const pgPort = { name: "postgresql", port: PORTS.postgres, targetPort: "postgresql", protocol: "TCP" };
    const headless = service("headless", POSTGRES.headlessService, {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: POSTGRES.selector,
      ports: [
        pgPort,
        { name: "patroni", port: PORTS.patroniApi, targetPort: "patroni", protocol: "TCP" },
        { name: "metrics", port: PORTS.postgresExporter, targetPort: "metrics", protocol: "TCP" },
        { name: "pgbackrest", port: PORTS.pgbackrestServer, targetPort: "pgbackrest", protocol: "TCP" },
      ],
    });
    const primary = service("primary", POSTGRES.primaryService, primaryServiceSpec(cfg.dcs.type), patroniRouted);
    if (cfg.dcs.type === "kubernetes") {
      // Declared here rather than left to Patroni (which would need `services/create`): it keeps
      // the config Endpoints (the cluster's identity) from being garbage-collected.
      service("config-service", POSTGRES.configService, { clusterIP: "None" }, patroniRouted);
    }
    const replicas = service("replicas", POSTGRES.replicasService, {
      type: "ClusterIP",
      selector: { ...POSTGRES.selector, [POSTGRES.roleLabel]: POSTGRES.replicaRole },
      ports: [pgPort],
    }, patroniRouted);
    this.headlessService = headless.metadata.name;
    this.primaryService = primary.metadata.name;
    this.replicasService = replicas.metadata.name;
    this.primaryHost = serviceHost(POSTGRES.primaryService, ns);

    // --- StatefulSet ------------------------------------------------------------------------
    const secretEnv = (envName: string, secret: string, key: string) => ({ name: envName, valueFrom: { secretKeyRef: { name: secret, key } } });
    const scratch = [
      { name: "run", mountPath: SOCKET_DIR },
      { name: "tmp", mountPath: "/tmp" },
    ];
    const repoVolumeMount = cfg.backup.repo.type === "posix" ? [{ name: "pgbackrest-repo", mountPath: cfg.backup.repo.path }] : [];
    const repoVolume = cfg.backup.repo.type === "posix" ? [{ name: "pgbackrest-repo", persistentVolumeClaim: { claimName: "pgbackrest-repo" } }] : [];
    if (cfg.backup.repo.type === "posix") {
      // Shared by every member (archive-push) and the backup jobs: needs ReadWriteMany.
      new k8s.core.v1.PersistentVolumeClaim(
        `${name}-backup-repo`,
        {
          metadata: { name: "pgbackrest-repo", namespace: ns, labels: labels("pgbackrest", "backup") },
          spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: cfg.backup.repo.size } } },
        },
        child,
      );
    }
    const cipherEnv = secretEnv(CIPHER_PASS_ENV, cfg.backup.cipherSecretName, "cipher-pass");
    const sidecarResources = { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "500m", memory: "256Mi" } };

    this.statefulSet = new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: { name: POSTGRES.statefulSet, namespace: ns, labels: common, annotations: ORPHAN_PODS_ON_DELETE },
        spec: {
          serviceName: headless.metadata.name,
          replicas: cfg.members,
          podManagementPolicy: "Parallel",
          updateStrategy: { type: "RollingUpdate" },
          selector: { matchLabels: POSTGRES.selector },
          template: {
            metadata: {
              labels: podLabels,
              annotations: { ...prometheusAnnotations(PORTS.postgresExporter), "checksum/patroni": checksum(this.patroniYaml) },
            },
            spec: {
              serviceAccountName: serviceAccount.metadata.name,
              automountServiceAccountToken: cfg.dcs.type === "kubernetes",
              securityContext: restrictedPodSecurityContext(POSTGRES_UID),
              affinity: antiAffinity(POSTGRES.selector),
              terminationGracePeriodSeconds: 60,
              containers: [
                {
                  name: "patroni",
                  image: cfg.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["patroni", `${PATRONI_DIR}/patroni.yml`],
                  ports: [
                    { name: "postgresql", containerPort: PORTS.postgres, protocol: "TCP" },
                    { name: "patroni", containerPort: PORTS.patroniApi, protocol: "TCP" },
                  ],
                  env: [
                    { name: "PATRONI_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                    { name: "PATRONI_KUBERNETES_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
                    { name: "PATRONI_POSTGRESQL_CONNECT_ADDRESS", value: `$(PATRONI_NAME).${headlessHost}:${PORTS.postgres}` },
                    { name: "PATRONI_RESTAPI_CONNECT_ADDRESS", value: `$(PATRONI_NAME).${headlessHost}:${PORTS.patroniApi}` },
                    secretEnv("PATRONI_SUPERUSER_PASSWORD", cfg.credentialsSecretName, CREDENTIAL_KEYS.superuser),
                    secretEnv("PATRONI_REPLICATION_PASSWORD", cfg.credentialsSecretName, CREDENTIAL_KEYS.replication),
                    secretEnv("PATRONI_REWIND_PASSWORD", cfg.credentialsSecretName, CREDENTIAL_KEYS.rewind),
                    secretEnv("EXPORTER_PASSWORD", cfg.credentialsSecretName, CREDENTIAL_KEYS.exporter),
                    secretEnv(VAULT_ADMIN_PASSWORD_ENV, cfg.credentialsSecretName, CREDENTIAL_KEYS.vaultAdmin),
                    cipherEnv,
                  ],
                  resources: cfg.resources,
                  securityContext: restrictedContainerSecurityContext(POSTGRES_UID),
                  // Patroni's REST API answers /liveness while its HA loop runs. Readiness (the
                  // endpoints of postgres-primary and postgres-replicas) is /health: 200 only while
                  // PostgreSQL answers queries. /readiness and /primary stay 200 on a leader whose
                  // PostgreSQL has crashed (they look at the leader lock), which routes writes to a dead server.
                  startupProbe: httpProbe("/liveness", "patroni", { initialDelaySeconds: 5, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 90 }, "HTTPS"),
                  livenessProbe: httpProbe("/liveness", "patroni", { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 }, "HTTPS"),
                  readinessProbe: httpProbe(PATRONI_WRITABLE_HEALTH_PATH, "patroni", { initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 }, "HTTPS"),
                  volumeMounts: [
                    { name: "pgdata", mountPath: DATA_MOUNT },
                    { name: "patroni-config", mountPath: PATRONI_DIR, readOnly: true },
                    { name: "tls", mountPath: TLS_DIR, readOnly: true },
                    { name: "pgbackrest-config", mountPath: PGBACKREST_DIR, readOnly: true },
                    ...scratch,
                    ...repoVolumeMount,
                  ],
                },
                {
                  name: "pgbackrest",
                  image: cfg.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["pgbackrest", `--config=${PGBACKREST_CONF}`, "server"],
                  ports: [{ name: "pgbackrest", containerPort: PORTS.pgbackrestServer, protocol: "TCP" }],
                  env: [cipherEnv],
                  resources: sidecarResources,
                  securityContext: restrictedContainerSecurityContext(POSTGRES_UID),
                  livenessProbe: tcpProbe("pgbackrest", { initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 }),
                  readinessProbe: tcpProbe("pgbackrest", { initialDelaySeconds: 5, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 }),
                  volumeMounts: [
                    { name: "pgdata", mountPath: DATA_MOUNT },
                    { name: "tls", mountPath: TLS_DIR, readOnly: true },
                    { name: "pgbackrest-config", mountPath: PGBACKREST_DIR, readOnly: true },
                    ...scratch,
                    ...repoVolumeMount,
                  ],
                },
                {
                  name: "postgres-exporter",
                  image: cfg.exporterImage,
                  imagePullPolicy: "IfNotPresent",
                  // stat_statements: per-statement calls and time (pg_stat_statements, preloaded by patroni.yml).
                  args: [`--web.listen-address=:${PORTS.postgresExporter}`, "--collector.stat_statements"],
                  ports: [{ name: "metrics", containerPort: PORTS.postgresExporter, protocol: "TCP" }],
                  env: [
                    { name: "DATA_SOURCE_URI", value: `127.0.0.1:${PORTS.postgres}/postgres?sslmode=require` },
                    { name: "DATA_SOURCE_USER", value: EXPORTER_USER },
                    secretEnv("DATA_SOURCE_PASS", cfg.credentialsSecretName, CREDENTIAL_KEYS.exporter),
                  ],
                  resources: sidecarResources,
                  securityContext: restrictedContainerSecurityContext(EXPORTER_UID),
                  livenessProbe: httpProbe("/", "metrics", { initialDelaySeconds: 10, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3 }),
                  readinessProbe: httpProbe("/", "metrics", { initialDelaySeconds: 5, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 }),
                },
                {
                  // Exports `pgbackrest info` of the repository (backup age, WAL archive range):
                  // the same config, cipher passphrase, repository volume and IRSA identity as archive-push.
                  name: "pgbackrest-exporter",
                  image: cfg.pgbackrestExporterImage,
                  imagePullPolicy: "IfNotPresent",
                  // Not the image's entrypoint: that one chowns and switches user when started as root.
                  command: [PGBACKREST_EXPORTER_BIN],
                  args: [
                    `--web.listen-address=:${PORTS.pgbackrestExporter}`,
                    `--collect.interval=${PGBACKREST_EXPORTER_INTERVAL}`,
                    `--backrest.config=${PGBACKREST_EXPORTER_CONF_DIR}/pgbackrest.conf`,
                    `--backrest.stanza-include=${POSTGRES.stanza}`,
                  ],
                  ports: [{ name: PGBACKREST_EXPORTER_PORT_NAME, containerPort: PORTS.pgbackrestExporter, protocol: "TCP" }],
                  env: [cipherEnv],
                  resources: sidecarResources,
                  // The repository's files belong to postgres (999); info only reads them.
                  securityContext: restrictedContainerSecurityContext(POSTGRES_UID),
                  livenessProbe: httpProbe("/metrics", PGBACKREST_EXPORTER_PORT_NAME, { initialDelaySeconds: 10, periodSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 }),
                  readinessProbe: httpProbe("/metrics", PGBACKREST_EXPORTER_PORT_NAME, { initialDelaySeconds: 5, periodSeconds: 15, timeoutSeconds: 5, failureThreshold: 3 }),
                  volumeMounts: [
                    { name: "pgbackrest-config", mountPath: PGBACKREST_EXPORTER_CONF_DIR, readOnly: true },
                    // Its own scratch (pgBackRest log and lock paths): not Patroni's /tmp with the pgpass file.
                    { name: "pgbackrest-exporter-tmp", mountPath: "/tmp" },
                    ...repoVolumeMount.map((m) => ({ ...m, readOnly: true })),
                  ],
                },
              ],
              volumes: [
                { name: "patroni-config", configMap: { name: patroniConfigMap.metadata.name, defaultMode: 0o555, items: [{ key: "patroni.yml", path: "patroni.yml" }, { key: "post-bootstrap.sh", path: "post-bootstrap.sh" }] } },
                { name: "pgbackrest-config", configMap: { name: patroniConfigMap.metadata.name, defaultMode: 0o444, items: [{ key: "pgbackrest.conf", path: "pgbackrest.conf" }] } },
                // PostgreSQL accepts a root-owned key readable by its group (fsGroup).
                { name: "tls", secret: { secretName: cfg.tlsSecretName, defaultMode: 0o440 } },
                emptyDirVolume("run", "16Mi"),
                emptyDirVolume("tmp", "1Gi"),
                emptyDirVolume("pgbackrest-exporter-tmp", "64Mi"),
                ...repoVolume,
              ],
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: "pgdata", labels: common },
              spec: {
                accessModes: ["ReadWriteOnce"],
                storageClassName: cfg.storage.className,
                resources: { requests: { storage: cfg.storage.size } },
              },
            },
          ],
        },
      },
      statefulSetOptions(child),
    );

    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata: { name: POSTGRES.statefulSet, namespace: ns, labels: common }, spec: { maxUnavailable: 1, selector: { matchLabels: POSTGRES.selector } } },
      child,
    );

    // --- Backups ----------------------------------------------------------------------------
    const backupLabels = labels("pgbackrest", "backup");
    const backupServiceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-backup-service-account`,
      { metadata: { name: BACKUP.serviceAccount, namespace: ns, labels: backupLabels, annotations: serviceAccountAnnotations }, automountServiceAccountToken: false },
      child,
    );
    const jobPod = (selector: Record<string, string>, script: string, extraVolumes: k8s.types.input.core.v1.Volume[], extraMounts: k8s.types.input.core.v1.VolumeMount[], resources: object, deadlineSeconds: number) => ({
      backoffLimit: 1,
      activeDeadlineSeconds: deadlineSeconds,
      ttlSecondsAfterFinished: 7 * 24 * 3600,
      template: {
        metadata: { labels: { ...labels(selector["app.kubernetes.io/name"], selector["app.kubernetes.io/component"]) } },
        spec: {
          serviceAccountName: backupServiceAccount.metadata.name,
          restartPolicy: "Never",
          securityContext: restrictedPodSecurityContext(POSTGRES_UID),
          containers: [
            {
              name: "pgbackrest",
              image: cfg.image,
              imagePullPolicy: "IfNotPresent",
              command: ["/bin/sh", `${PGBACKREST_DIR}/${script}`],
              env: [cipherEnv],
              resources,
              securityContext: restrictedContainerSecurityContext(POSTGRES_UID),
              volumeMounts: [
                { name: "config", mountPath: PGBACKREST_DIR, readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
                ...extraMounts,
                ...repoVolumeMount,
              ],
            },
          ],
          volumes: [
            { name: "config", configMap: { name: backupConfigMap.metadata.name, defaultMode: 0o555 } },
            emptyDirVolume("tmp", "1Gi"),
            ...extraVolumes,
            ...repoVolume,
          ],
        },
      },
    });
    const cronJob = (part: string, cronName: string, schedule: string, spec: ReturnType<typeof jobPod>) =>
      new k8s.batch.v1.CronJob(
        `${name}-${part}`,
        {
          metadata: { name: cronName, namespace: ns, labels: backupLabels },
          spec: {
            schedule,
            timeZone: "Etc/UTC",
            concurrencyPolicy: "Forbid",
            startingDeadlineSeconds: 3600,
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 3,
            jobTemplate: { metadata: { labels: backupLabels }, spec },
          },
        },
        child,
      );
    const clientTls = { name: "client-tls", secret: { secretName: cfg.backup.clientTlsSecretName, defaultMode: 0o440 } };
    const clientTlsMount = { name: "client-tls", mountPath: CLIENT_TLS_DIR, readOnly: true };
    const backupResources = { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "2", memory: "1Gi" } };
    cronJob("backup-full", "pgbackrest-full", cfg.backup.fullSchedule, jobPod(BACKUP.selector, "backup-full.sh", [clientTls], [clientTlsMount], backupResources, 6 * 3600));
    cronJob("backup-incr", "pgbackrest-incr", cfg.backup.incrementalSchedule, jobPod(BACKUP.selector, "backup-incr.sh", [clientTls], [clientTlsMount], backupResources, 3 * 3600));
    cronJob(
      "restore-test",
      "pgbackrest-restore-test",
      cfg.backup.restoreTestSchedule,
      jobPod(
        BACKUP.restoreTestSelector,
        "restore-test.sh",
        [
          {
            // Scratch space as large as a member's data volume, gone with the pod.
            name: "scratch",
            ephemeral: {
              volumeClaimTemplate: {
                metadata: { labels: backupLabels },
                spec: { accessModes: ["ReadWriteOnce"], storageClassName: cfg.storage.className, resources: { requests: { storage: cfg.storage.size } } },
              },
            },
          },
        ],
        [{ name: "scratch", mountPath: "/scratch" }],
        cfg.resources,
        12 * 3600,
      ),
    );

    this.registerOutputs({
      primaryService: this.primaryService,
      replicasService: this.replicasService,
      headlessService: this.headlessService,
    });
  }
}

/** Rolls the pods when patroni.yml changes (the ConfigMap mount alone would not). */
function checksum(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
