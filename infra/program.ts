/**
 * The KNHK program: validate the stack config, then compose the components. Shared by
 * `infra/index.ts` (the Pulumi engine) and `infra/testing/render.ts` (offline, under mocks).
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { StackConfig } from "./config";
import { ComplianceArchive } from "./components/compliance-archive";
import { Dashboards } from "./components/dashboards";
import { EncryptedStorage } from "./components/encrypted-storage";
import { KnhkService } from "./components/knhk-service";
import { LedgerJobs } from "./components/ledger-jobs";
import { Monitoring } from "./components/monitoring";
import { Namespace } from "./components/namespace";
import { PatroniCluster } from "./components/patroni-cluster";
import { RedisCluster } from "./components/redis-cluster";
import { SchemaMigration } from "./components/schema-migration";
import { CREDENTIAL_KEYS } from "./components/patroni-cluster";
import { VAULT_NAMES, VaultAccess } from "./components/vault-access";
import { retentionDays } from "./render/archive";
import { deployedLedgerJobs, LEDGER_JOBS, ledgerJobNetworkAllows, ledgerJobVaultRoles } from "./render/ledger-jobs";
import { monitoringInput } from "./render/monitoring-bundle";
import { APP, BACKUP, PORTS, POSTGRES, REDIS } from "./render/topology";
import { loadStackConfig } from "./stack-config";
import { imageRef } from "./config/common";

export async function knhkProgram(config: StackConfig = loadStackConfig()): Promise<Record<string, unknown>> {
  const provider = kubernetesProvider(config);
  const k8sOpts = { provider };
  // The scheduled ledger jobs this stack runs, and the flows they need.
  const ledgerJobKinds = deployedLedgerJobs(config);
  const ledgerFlows = ledgerJobNetworkAllows(ledgerJobKinds, config.vault.server);

  const namespace = new Namespace(
    "knhk",
    {
      ...config.namespace,
      metricsPorts: [PORTS.appMetrics, PORTS.postgresExporter, PORTS.patroniApi, PORTS.redisExporter, PORTS.pgbackrestExporter],
      ingressTo: APP.selector,
      ingressPorts: [PORTS.appHttp],
      allows: [
        { name: "app-to-postgres", from: APP.selector, to: POSTGRES.selector, ports: [PORTS.postgres] },
        { name: "migrate-to-postgres", from: APP.migrateSelector, to: POSTGRES.selector, ports: [PORTS.postgres] },
        { name: "app-to-redis", from: APP.selector, to: REDIS.selector, ports: [PORTS.redis] },
        { name: "app-to-sentinel", from: APP.selector, to: REDIS.sentinelSelector, ports: [PORTS.sentinel] },
        { name: "postgres-replication", from: POSTGRES.selector, to: POSTGRES.selector, ports: [PORTS.postgres, PORTS.patroniApi] },
        { name: "backup-to-postgres", from: BACKUP.selector, to: POSTGRES.selector, ports: [PORTS.pgbackrestServer] },
        { name: "redis-replication", from: REDIS.selector, to: REDIS.selector, ports: [PORTS.redis] },
        { name: "sentinel-to-redis", from: REDIS.sentinelSelector, to: REDIS.selector, ports: [PORTS.redis] },
        { name: "sentinel-to-sentinel", from: REDIS.sentinelSelector, to: REDIS.sentinelSelector, ports: [PORTS.sentinel] },
        { name: "redis-to-sentinel", from: REDIS.selector, to: REDIS.sentinelSelector, ports: [PORTS.sentinel] },
        // The ledger CronJobs to PostgreSQL (archive, chain verification).
        ...ledgerFlows.allows,
      ],
      externalEgress: [
        // Patroni keeps its DCS in the Kubernetes API; pgBackRest pushes WAL/backups to S3.
        { name: "postgres-external", from: POSTGRES.selector, ports: [443, 6443] },
        { name: "backup-external", from: BACKUP.selector, ports: [443] },
        { name: "restore-test-external", from: BACKUP.restoreTestSelector, ports: [443] },
        // The archive CronJob to S3 and STS (IRSA).
        ...ledgerFlows.externalEgress,
      ],
      peerAllows: [...(config.vault.enabled ? vaultFlows(config) : []), ...ledgerFlows.peerAllows],
    },
    k8sOpts,
  );

  // Everything below lives in the namespace: create it first.
  const inNamespace = { provider, dependsOn: [namespace] };
  const ns = config.namespace.name;

  const archive = config.aws.enabled
    ? new ComplianceArchive("knhk-archive", {
        config: config.aws,
        namespace: ns,
        serviceServiceAccount: APP.serviceAccount,
        archiveServiceAccounts: ledgerJobKinds.includes("archive") ? [LEDGER_JOBS.archive.serviceAccount] : [],
        backupServiceAccounts: [POSTGRES.serviceAccount, BACKUP.serviceAccount],
        tags: { "knhk/stack": config.stack },
      })
    : undefined;

  // With an AWS account: the encrypted StorageClass every volume uses (the stack rules require it).
  const volumes = config.aws.enabled
    ? new EncryptedStorage(
        "knhk-volumes",
        {
          storageClassName: config.aws.volumes.storageClassName,
          volumeType: config.aws.volumes.volumeType,
          region: new pulumi.Config("aws").require("region"),
          aliasPrefix: config.aws.bucketPrefix,
          kmsDeletionWindowDays: config.aws.kmsDeletionWindowDays,
          tags: { "knhk/stack": config.stack },
        },
        { providers: [provider] },
      )
    : undefined;
  const withVolumes = { provider, dependsOn: [namespace, ...(volumes ? [volumes] : [])] };

  const postgres = new PatroniCluster(
    "postgres",
    { namespace: ns, config: config.patroni, backupBucket: archive?.backupBucket, backupRoleArn: archive?.backupRoleArn },
    withVolumes,
  );
  const redis = new RedisCluster("redis", { namespace: ns, config: config.redis }, withVolumes);
  // With Vault: the service's identities come from Vault, which needs the roles the database
  // bootstrap created (Patroni post-bootstrap) and verifies PostgreSQL with the cluster's CA. The
  // migration Job then applies the schema as its owner, before either colour starts.
  const vaultAccess = config.vault.enabled
    ? new VaultAccess(
        "knhk-vault",
        {
          config: config.vault,
          namespace: ns,
          serviceAccount: APP.serviceAccount,
          migrationServiceAccount: APP.migrationServiceAccount,
          database: { host: postgres.primaryHost, port: PORTS.postgres, name: POSTGRES.database },
          databaseCa: secretValue(config, config.patroni.tlsSecretName, "ca.crt", inNamespace),
          adminPassword: secretValue(config, config.patroni.credentialsSecretName, CREDENTIAL_KEYS.vaultAdmin, inNamespace),
          serviceDbRole: POSTGRES.serviceDbRole,
          ownerDbUser: POSTGRES.ownerDbUser,
          adminDbUser: POSTGRES.vaultAdminDbUser,
          jobIdentities: ledgerJobKinds.length > 0 ? ledgerJobVaultRoles(config.vault.mounts.database, config.ledgerJobs.credentialTtlSeconds, signingTransitKey(config)) : [],
        },
        { dependsOn: [postgres] },
      )
    : undefined;
  const images = { blue: imageRef(config.app.image, config.app.versions.blue), green: imageRef(config.app.image, config.app.versions.green) };
  const migration = vaultAccess
    ? new SchemaMigration(
        "knhk-migrate",
        {
          namespace: ns,
          images,
          vaultRole: VAULT_NAMES.migrationAuthRole,
          ownerCredsPath: vaultAccess.ownerCredsPath,
          transit: signingTransitKey(config),
          database: { host: postgres.primaryHost, port: PORTS.postgres, name: POSTGRES.database },
          caSecretName: config.patroni.tlsSecretName,
        },
        { provider, dependsOn: [namespace, postgres, vaultAccess] },
      )
    : undefined;
  const app = new KnhkService(
    "knhk",
    {
      namespace: ns,
      config: config.app,
      redis: { sentinels: redis.sentinelAddresses, masterName: redis.masterName },
      serviceAccountRoleArn: archive?.serviceRoleArn,
      vault: config.vault.enabled
        ? {
            role: VAULT_NAMES.authRole,
            databaseCredsPath: `${config.vault.mounts.database}/creds/${VAULT_NAMES.databaseRole}`,
            credentialsMaxAgeSeconds: config.vault.database.maxTtlSeconds,
            database: { host: postgres.primaryHost, port: PORTS.postgres, name: POSTGRES.database },
            caSecretName: config.patroni.tlsSecretName,
            transit: signingTransitKey(config),
          }
        : undefined,
      migrationJobs: migration?.jobs,
      ingressNamespace: config.namespace.ingressNamespace,
      monitoringNamespace: config.namespace.monitoringNamespace,
    },
    { ...inNamespace, dependsOn: [namespace, postgres, redis] },
  );

  // Scheduled archive run and chain verification: CronJobs on the active colour's image, each as its
  // own least-privileged database role (Vault), after the schema they read is migrated.
  const ledgerJobs =
    ledgerJobKinds.length > 0
      ? new LedgerJobs(
          "knhk-ledger-jobs",
          {
            namespace: ns,
            config: config.ledgerJobs,
            jobs: ledgerJobKinds,
            image: app.images[app.activeColor],
            version: config.app.versions[app.activeColor],
            databaseMount: config.vault.mounts.database,
            database: { host: postgres.primaryHost, port: PORTS.postgres, name: POSTGRES.database },
            caSecretName: config.patroni.tlsSecretName,
            transit: signingTransitKey(config),
            archive:
              archive && config.aws.enabled
                ? {
                    ledgerBucket: archive.ledgerBucket,
                    dataBucket: archive.dataBucket,
                    kmsKeyArn: archive.kmsKeyArn,
                    region: new pulumi.Config("aws").require("region"),
                    retentionMode: config.aws.ledgerRetention.mode,
                    retentionDays: retentionDays(config.aws.ledgerRetention),
                    roleArn: archive.serviceRoleArn,
                  }
                : undefined,
          },
          { ...inNamespace, dependsOn: [namespace, postgres, ...(vaultAccess ? [vaultAccess] : []), ...(migration ? [migration] : [])] },
        )
      : undefined;

  const monitoring = config.monitoring.enabled
    ? new Monitoring(
        "knhk-monitoring",
        {
          input: monitoringInput(config),
          selectorLabels: config.monitoring.selectorLabels,
          patroniTlsSecret: config.patroni.tlsSecretName,
          patroniTlsServerName: config.monitoring.patroniTlsServerName ?? `${POSTGRES.headlessService}.${ns}.svc`,
        },
        inNamespace,
      )
    : undefined;
  const dashboards =
    config.grafana.enabled || config.grafana.sidecarConfigMaps
      ? new Dashboards(
          "knhk-dashboards",
          {
            grafanaApi: config.grafana.enabled,
            folderTitle: config.grafana.folderTitle,
            folderUid: config.grafana.folderUid,
            sidecarConfigMaps: config.grafana.sidecarConfigMaps,
            sidecarNamespace: config.grafana.sidecarNamespace ?? ns,
          },
          inNamespace,
        )
      : undefined;

  return {
    stack: config.stack,
    namespace: namespace.name,
    postgresPrimaryService: postgres.primaryService,
    postgresReplicasService: postgres.replicasService,
    appService: app.serviceName,
    activeColor: app.activeColor,
    images: app.images,
    prometheusRules: monitoring?.prometheusRuleNames ?? [],
    alertRules: monitoring?.alertCount ?? 0,
    dashboards: dashboards?.uids ?? [],
    ledgerCronJobs: ledgerJobs?.cronJobNames ?? [],
    // Only the components this stack has: an undefined output is dropped with a warning.
    ...(vaultAccess ? { vaultAuthRole: vaultAccess.authRoleName } : {}),
    ...(archive
      ? { archiveLedgerBucket: archive.ledgerBucket, archiveServiceRoleArn: archive.serviceRoleArn, backupRoleArn: archive.backupRoleArn }
      : {}),
    ...(volumes ? { volumeStorageClass: volumes.storageClassName, volumeKeyArn: volumes.volumeKeyArn } : {}),
  };
}

/** The transit key that signs receipts. */
function signingTransitKey(config: StackConfig) {
  return { mount: config.vault.mounts.transit, key: VAULT_NAMES.signingKey };
}

/** One key of a Secret that exists before the deploy (a prerequisite), as a secret output. */
function secretValue(config: StackConfig, secretName: string, key: string, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
  const secret = k8s.core.v1.Secret.get(`${secretName}-read`, `${config.namespace.name}/${secretName}`, opts);
  return pulumi.secret(secret.data.apply((data) => {
    const encoded = data?.[key];
    return encoded === undefined ? "" : Buffer.from(encoded, "base64").toString("utf8");
  }));
}

/** Vault's database engine reaches PostgreSQL; the migration Job reaches Vault (its agent's login and static credential). */
function vaultFlows(config: StackConfig) {
  return [
    { name: "vault-to-postgres", direction: "ingress" as const, pods: POSTGRES.selector, peer: config.vault.server, ports: [PORTS.postgres] },
    { name: "migrate-to-vault", direction: "egress" as const, pods: APP.migrateSelector, peer: config.vault.server, ports: [PORTS.vault] },
    { name: "app-to-vault", direction: "egress" as const, pods: APP.selector, peer: config.vault.server, ports: [PORTS.vault] },
  ];
}

/** Renders to a folder, or targets the configured cluster (kubeconfig file and/or context). */
function kubernetesProvider(config: StackConfig): k8s.Provider {
  const { renderDir, context, kubeconfig } = config.kubernetes;
  return new k8s.Provider(
    "knhk-k8s",
    renderDir !== undefined
      ? { renderYamlToDirectory: fromProjectRoot(renderDir) }
      : {
          context,
          kubeconfig: kubeconfig === undefined ? undefined : fromProjectRoot(kubeconfig),
          enableServerSideApply: true,
          // ConfigMaps change in place: a colour switch rewrites `knhk-active-color`, which running
          // pods read as a mounted file; replacing it would replace every Deployment that mounts it.
          enableConfigMapMutable: true,
        },
  );
}

/**
 * `renderDir` and `kubeconfig` are relative to the project root (Pulumi.yaml), but the engine runs
 * the program and its providers in the program's folder (infra/): pass the path relative to that
 * folder, so the state holds no machine-specific absolute path. An absolute path, and any path
 * under mocks, stays as configured.
 */
function fromProjectRoot(file: string): string {
  const root = pulumi.runtime.getRootDirectory();
  // The mock runtime reports a placeholder root ("rootDirectory"), never an absolute path.
  if (!root || !path.isAbsolute(root) || path.isAbsolute(file)) return file;
  return path.relative(process.cwd(), path.resolve(root, file)) || ".";
}
