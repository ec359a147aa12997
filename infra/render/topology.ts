/**
 * The fixed names, ports and selector labels of the data plane. Components create objects with
 * these names; other parts (network allows, monitoring, Vault templates, policies) refer to them.
 */
import { selectorLabels } from "./k8s";

export const PORTS = {
  appHttp: 8080,
  appMetrics: 9090,
  postgres: 5432,
  patroniApi: 8008,
  postgresExporter: 9187,
  pgbackrestServer: 8432,
  pgbackrestExporter: 9854,
  redis: 6379,
  sentinel: 26379,
  redisExporter: 9121,
  /** The Vault server's API. */
  vault: 8200,
} as const;

export const APP = {
  name: "knhk",
  serviceAccount: "knhk-service",
  configMap: "knhk-config",
  service: "knhk-service",
  deployment: (color: "blue" | "green") => `knhk-${color}`,
  /** Selects the pods of both colours. */
  selector: selectorLabels("knhk", "api"),
  /** ConfigMap holding only the active colour, mounted as a file so a switch restarts no pod. */
  activeColorConfigMap: "knhk-active-color",
  /** The pre-deploy Job that runs the migrations as the schema owner. */
  migrateSelector: selectorLabels("knhk", "migrate"),
  migrationServiceAccount: "knhk-migrate",
  /** The operator CLI inside the image (the service's own command is `knhk:app` config). */
  cliCommand: ["node", "dist/app/src/cli/index.js"],
  /** The scheduled archive run and chain verification (CronJobs). */
  archiveSelector: selectorLabels("knhk", "archive"),
  verifyChainSelector: selectorLabels("knhk", "verify-chain"),
} as const;

/** Files the stack mounts or renders into the KNHK pods; the service reads each through an environment variable. */
export const APP_FILES = {
  /** The API port's certificate chain and key (the Secret of knhk:app.tls, e.g. a cert-manager Certificate's). */
  tlsCert: "/etc/knhk/tls/tls.crt",
  tlsKey: "/etc/knhk/tls/tls.key",
  /** CA certificate the PostgreSQL server certificate chains to (from the Patroni TLS Secret's `ca.crt`). */
  postgresCa: "/etc/knhk/postgres-ca/ca.crt",
  /** This pod's colour is active when this file holds it (ConfigMap `knhk-active-color`, key `color`). */
  activeColor: "/etc/knhk/active-color/color",
  /** Connection URL Vault Agent renders from the current dynamic credentials and re-renders on renewal. */
  databaseUrl: "/vault/secrets/database-url",
  /** Schema owner's connection URL (Vault static role), rendered in the migration Job only. */
  ownerDatabaseUrl: "/vault/secrets/owner-database-url",
  /** The transit key's public versions as a keys file, rendered in the migration Job for the owner to register. */
  transitKeys: "/vault/secrets/transit-keys.json",
} as const;

/**
 * The Service writes go to. Patroni's leader lock is this Service's Endpoints object (Kubernetes
 * DCS in endpoints mode), so the Service has no selector: the member that takes the lock writes
 * its own pod IP into it in the same update, and the endpoint moves with the lock.
 */
const PRIMARY_SERVICE = "postgres-primary";

export const POSTGRES = {
  /**
   * Patroni scope, equal to the primary Service's name: the leader lock is the Endpoints
   * `postgres-primary`; `postgres-primary-config`, `-sync`, `-failover` and `-failsafe` hold the rest.
   */
  cluster: PRIMARY_SERVICE,
  statefulSet: "postgres",
  headlessService: "postgres",
  primaryService: PRIMARY_SERVICE,
  /** Selectorless Service Patroni needs next to its config Endpoints (else Kubernetes may garbage-collect them). */
  configService: `${PRIMARY_SERVICE}-config`,
  replicasService: "postgres-replicas",
  serviceAccount: "postgres",
  database: "knhk",
  /** NOLOGIN role with the service's grants (app/migrations); Vault's dynamic users are members. */
  serviceDbRole: "knhk_service",
  /** Owner of the schema; its password is rotated by Vault's static role. */
  ownerDbUser: "knhk_owner",
  /** The login Vault's database secrets engine connects as (CREATEROLE, admin of serviceDbRole only); Vault rotates its password. */
  vaultAdminDbUser: "vault_admin",
  stanza: "knhk",
  selector: selectorLabels("postgres", "database"),
  /** Patroni finds its pods by `selector` plus this label set to the scope. */
  scopeLabel: "cluster-name",
  /** Role label Patroni sets on its pods, with the values configured in patroni.yml. */
  roleLabel: "role",
  primaryRole: "primary",
  replicaRole: "replica",
} as const;

export const REDIS = {
  statefulSet: "redis",
  headlessService: "redis",
  sentinelStatefulSet: "redis-sentinel",
  sentinelService: "redis-sentinel",
  masterName: "knhk",
  selector: selectorLabels("redis", "cache"),
  sentinelSelector: selectorLabels("redis-sentinel", "sentinel"),
} as const;

export const BACKUP = {
  /** ServiceAccount of the backup and restore-test Jobs. */
  serviceAccount: "pgbackrest",
  selector: selectorLabels("pgbackrest", "backup"),
  restoreTestSelector: selectorLabels("pgbackrest", "restore-test"),
} as const;

/** In-cluster DNS name of a Service. */
export function serviceHost(service: string, namespace: string): string {
  return `${service}.${namespace}.svc.cluster.local`;
}
