/**
 * patroni.yml builder (pure). The same document runs in the StatefulSet (Kubernetes DCS) and in
 * the system tests (etcd DCS on loopback). Pod-specific values (member name, addresses,
 * passwords) come from PATRONI_* environment variables, which Patroni merges over the file.
 */
import * as YAML from "yaml";
import { ledgerJobBootstrapStatements } from "./ledger-jobs";

/** Patroni >= 4.0 writes these values into the role label; the Services select them. */
export interface RoleLabels {
  readonly roleLabel: string;
  readonly leaderValue: string;
  readonly followerValue: string;
}

export type PatroniDcs =
  | {
      readonly type: "kubernetes";
      readonly namespace: string;
      /** Labels Patroni uses to find its pods and ConfigMaps (scope label added by Patroni). */
      readonly labels: Record<string, string>;
      readonly scopeLabel: string;
      readonly roles: RoleLabels;
      /**
       * The primary Service's port: the leader writes its pod IP (PATRONI_KUBERNETES_POD_IP) and
       * this port into the leader Endpoints, which is the Service's backend.
       */
      readonly primaryPort: { readonly name: string; readonly port: number };
    }
  | { readonly type: "etcd3"; readonly hosts: readonly string[] };

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export interface PatroniTiming {
  readonly ttl: number;
  readonly loopWait: number;
  readonly retryTimeout: number;
  readonly primaryStartTimeout: number;
  readonly maximumLagOnFailover: number;
}

export interface PatroniYamlInput {
  /** Cluster name (DCS scope). */
  readonly scope: string;
  /** Member name; omit when PATRONI_NAME comes from the pod. */
  readonly name?: string;
  readonly dcs: PatroniDcs;
  readonly timing: PatroniTiming;
  readonly restApi: {
    readonly listen: string;
    /** Omit when PATRONI_RESTAPI_CONNECT_ADDRESS comes from the pod. */
    readonly connectAddress?: string;
    readonly tls?: TlsFiles;
  };
  readonly postgresql: {
    readonly listen: string;
    /** Omit when PATRONI_POSTGRESQL_CONNECT_ADDRESS comes from the pod. */
    readonly connectAddress?: string;
    readonly dataDir: string;
    readonly binDir: string;
    readonly socketDir: string;
    readonly pgpassFile: string;
    readonly tls?: TlsFiles;
    readonly superuser: string;
    readonly replicationUser: string;
    /**
     * pg_rewind's own login (password from PATRONI_REWIND_PASSWORD): without it a former leader
     * cannot rewind and never streams again. Patroni creates the role at bootstrap.
     */
    readonly rewindUser: string;
    /** Extra server parameters (max_connections, shared_buffers, ...). */
    readonly parameters: Readonly<Record<string, string | number | boolean>>;
    /** Networks allowed to connect (CIDR). */
    readonly allowedCidrs: readonly string[];
  };
  readonly archive: { readonly command: string; readonly restoreCommand?: string; readonly timeoutSeconds: number };
  /** pgBackRest restore command used to create replicas from the repository (else pg_basebackup only). */
  readonly pgbackrestReplicaCommand?: string;
  /** Script run once after the cluster is initialised (Patroni passes a connection URL as $1). */
  readonly postBootstrapScript?: string;
  /** Kubernetes has no watchdog device for us; the tests neither. */
  readonly watchdog?: "off" | "automatic" | "required";
}

/**
 * Seconds strict synchronous mode holds the first commit after a promotion: the new primary has
 * no synchronous standby until a replica has reconnected to it (~5 s in the fault drill).
 */
export const STRICT_SYNC_STANDBY_WAIT_SECONDS = 5;

/** Worst case from leader death to the first commit: ttl + loop_wait bound the detection, then the strict-sync wait. */
export function writeRecoverySeconds(t: Pick<PatroniTiming, "ttl" | "loopWait">): number {
  return t.ttl + t.loopWait + STRICT_SYNC_STANDBY_WAIT_SECONDS;
}

/** Leader-failure detection, promotion and the first synchronous commit must fit the RTO. */
export function checkTiming(t: PatroniTiming, rtoSeconds: number): string[] {
  const problems: string[] = [];
  if (t.loopWait + 2 * t.retryTimeout > t.ttl) problems.push(`loop_wait + 2*retry_timeout (${t.loopWait + 2 * t.retryTimeout}) exceeds ttl (${t.ttl})`);
  if (writeRecoverySeconds(t) >= rtoSeconds) {
    problems.push(`ttl + loop_wait + ${STRICT_SYNC_STANDBY_WAIT_SECONDS} s strict-sync standby wait (${writeRecoverySeconds(t)}) is not below the RTO of ${rtoSeconds} s`);
  }
  return problems;
}

/** Three distinct plain roles: a rewind user equal to the superuser would need the superuser's password on every member. */
function checkRoles(pg: PatroniYamlInput["postgresql"]): void {
  const roles = { superuser: pg.superuser, replicationUser: pg.replicationUser, rewindUser: pg.rewindUser };
  for (const [field, value] of Object.entries(roles)) {
    if (!/^[a-z_][a-z0-9_]*$/.test(value)) throw new Error(`postgresql.${field} "${value}" must be a plain lower-case SQL identifier`);
  }
  if (new Set(Object.values(roles)).size !== 3) throw new Error(`postgresql.superuser, replicationUser and rewindUser must differ (got ${Object.values(roles).join(", ")})`);
}

export function buildPatroniConfig(input: PatroniYamlInput): Record<string, unknown> {
  const { postgresql: pg, timing } = input;
  const problems = checkTiming(timing, Number.POSITIVE_INFINITY);
  if (problems.length > 0) throw new Error(`invalid Patroni timing: ${problems.join("; ")}`);

  checkRoles(pg);

  const hostType = pg.tls ? "hostssl" : "host";
  const pgHba = [
    // Local socket: the postgres OS user only (Patroni itself, the post-bootstrap script).
    `local all ${pg.superuser} peer`,
    ...pg.allowedCidrs.flatMap((cidr) => [
      `${hostType} replication ${pg.replicationUser} ${cidr} scram-sha-256`,
      // pg_rewind on a former leader reads the new leader's files through database postgres.
      `${hostType} postgres ${pg.rewindUser} ${cidr} scram-sha-256`,
      `${hostType} all all ${cidr} scram-sha-256`,
    ]),
  ];

  const serverParameters: Record<string, string | number | boolean> = {
    unix_socket_directories: pg.socketDir,
    password_encryption: "scram-sha-256",
    ...(pg.tls
      ? { ssl: "on", ssl_cert_file: pg.tls.certFile, ssl_key_file: pg.tls.keyFile, ssl_ca_file: pg.tls.caFile, ssl_min_protocol_version: "TLSv1.3" }
      : {}),
  };

  const dcsSection =
    input.dcs.type === "kubernetes"
      ? {
          kubernetes: {
            namespace: input.dcs.namespace,
            labels: input.dcs.labels,
            scope_label: input.dcs.scopeLabel,
            role_label: input.dcs.roles.roleLabel,
            leader_label_value: input.dcs.roles.leaderValue,
            follower_label_value: input.dcs.roles.followerValue,
            standby_leader_label_value: input.dcs.roles.leaderValue,
            // Endpoints mode: the leader lock is the primary Service's Endpoints, so the endpoint
            // moves in the same write that moves the lock. With ConfigMaps the Service would select
            // the role label, which only each member writes on its own pod: a dead node's pod keeps
            // `primary` (and stays Ready) until the node controller gives up on the node.
            use_endpoints: true,
            ports: [{ name: input.dcs.primaryPort.name, port: input.dcs.primaryPort.port }],
          },
        }
      : { etcd3: { hosts: [...input.dcs.hosts] } };

  const createReplicaMethods = input.pgbackrestReplicaCommand ? ["pgbackrest", "basebackup"] : ["basebackup"];

  return {
    scope: input.scope,
    ...(input.name !== undefined ? { name: input.name } : {}),
    restapi: {
      listen: input.restApi.listen,
      ...(input.restApi.connectAddress !== undefined ? { connect_address: input.restApi.connectAddress } : {}),
      ...(input.restApi.tls
        ? { certfile: input.restApi.tls.certFile, keyfile: input.restApi.tls.keyFile, cafile: input.restApi.tls.caFile }
        : {}),
    },
    ...dcsSection,
    bootstrap: {
      dcs: {
        ttl: timing.ttl,
        loop_wait: timing.loopWait,
        retry_timeout: timing.retryTimeout,
        primary_start_timeout: timing.primaryStartTimeout,
        maximum_lag_on_failover: timing.maximumLagOnFailover,
        // RPO 0: a commit returns only once a synchronous standby has it; never fall back to async.
        synchronous_mode: true,
        synchronous_mode_strict: true,
        synchronous_node_count: 1,
        // A primary that loses the DCS keeps running while all members still see it.
        failsafe_mode: true,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: {
            wal_level: "replica",
            hot_standby: "on",
            wal_log_hints: "on",
            // Per-statement timing for the exporter's stat_statements collector and the runbooks'
            // slow-query checks (the extension is created by the post-bootstrap script).
            shared_preload_libraries: "pg_stat_statements",
            synchronous_commit: "on",
            // A standby retries its primary every 1 s instead of 5 s: after a crash restart or a
            // promotion the first commit waits for a synchronous standby to be connected again.
            wal_retrieve_retry_interval: "1s",
            max_wal_senders: 10,
            max_replication_slots: 10,
            wal_keep_size: "1GB",
            archive_mode: "on",
            archive_timeout: input.archive.timeoutSeconds,
            archive_command: input.archive.command,
            ...pg.parameters,
          },
        },
      },
      initdb: [{ encoding: "UTF8" }, { locale: "C.UTF-8" }, "data-checksums"],
      // Patroni < 3.1 (Debian's validator) requires it here; newer versions take postgresql.pg_hba.
      pg_hba: pgHba,
      ...(input.postBootstrapScript ? { post_bootstrap: input.postBootstrapScript } : {}),
    },
    postgresql: {
      listen: pg.listen,
      ...(pg.connectAddress !== undefined ? { connect_address: pg.connectAddress } : {}),
      data_dir: pg.dataDir,
      bin_dir: pg.binDir,
      pgpass: pg.pgpassFile,
      use_unix_socket: true,
      authentication: {
        superuser: { username: pg.superuser },
        replication: { username: pg.replicationUser },
        rewind: { username: pg.rewindUser },
      },
      parameters: serverParameters,
      pg_hba: pgHba,
      create_replica_methods: createReplicaMethods,
      ...(input.pgbackrestReplicaCommand
        ? { pgbackrest: { command: input.pgbackrestReplicaCommand, keep_data: true, no_params: true } }
        : {}),
      basebackup: [{ checkpoint: "fast" }],
      ...(input.archive.restoreCommand ? { recovery_conf: { restore_command: input.archive.restoreCommand } } : {}),
    },
    watchdog: { mode: input.watchdog ?? "off" },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

/** YAML 1.1 output: Patroni reads with PyYAML, where a bare `on` would become a boolean. */
export function renderPatroniYaml(input: PatroniYamlInput): string {
  return YAML.stringify(buildPatroniConfig(input), { lineWidth: 0, version: "1.1" });
}

/** The database's roles: who owns the schema, who the service's users are members of, whom Vault logs in as. */
export interface DatabaseRoles {
  /** NOLOGIN role holding the service's grants (SELECT/INSERT; the migrations grant them). */
  readonly service: string;
  /** Owner of the database and its schema; no password until Vault's static role sets one. */
  readonly owner: string;
  /** Vault's login: CREATEROLE, admin of `service` only, may end sessions of the users it revokes. */
  readonly vaultAdmin: string;
  /** Environment variable with the vault admin's first password (Vault rotates it afterwards). */
  readonly vaultAdminPasswordEnv: string;
}

export interface PostBootstrapInput {
  readonly database: string;
  readonly exporterUser: string;
  readonly exporterPasswordEnv: string;
  readonly roles: DatabaseRoles;
}

/**
 * Runs once on the new primary, as the superuser: the service database, the monitoring role, and
 * the three identities the stack needs before Vault's database connection can exist (see
 * DatabaseRoles). $1 is the superuser connection URL Patroni passes; passwords come from the
 * environment so they never land in a file.
 */
export function buildPostBootstrapScript(args: PostBootstrapInput): string {
  const ident = /^[a-z_][a-z0-9_]*$/;
  const identifiers = { database: args.database, exporterUser: args.exporterUser, "roles.service": args.roles.service, "roles.owner": args.roles.owner, "roles.vaultAdmin": args.roles.vaultAdmin };
  for (const [field, value] of Object.entries(identifiers)) {
    if (!ident.test(value)) throw new Error(`${field} "${value}" must be a plain lower-case SQL identifier`);
  }
  if (new Set([args.exporterUser, args.roles.service, args.roles.owner, args.roles.vaultAdmin]).size !== 4) {
    throw new Error("exporterUser, roles.service, roles.owner and roles.vaultAdmin must be four different roles");
  }
  for (const [field, value] of Object.entries({ exporterPasswordEnv: args.exporterPasswordEnv, "roles.vaultAdminPasswordEnv": args.roles.vaultAdminPasswordEnv })) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(value)) throw new Error(`${field} "${value}" must be an environment variable name`);
  }
  const { service, owner, vaultAdmin, vaultAdminPasswordEnv } = args.roles;
  return [
    "#!/bin/sh",
    "set -eu",
    `: "\${${args.exporterPasswordEnv}:?${args.exporterPasswordEnv} must be set}"`,
    `: "\${${vaultAdminPasswordEnv}:?${vaultAdminPasswordEnv} must be set}"`,
    `psql -v ON_ERROR_STOP=1 -v exporter_password="$${args.exporterPasswordEnv}" -v vault_admin_password="$${vaultAdminPasswordEnv}" "$1" <<'SQL'`,
    `CREATE ROLE ${owner} LOGIN;`,
    `CREATE DATABASE ${args.database} OWNER ${owner};`,
    `CREATE ROLE ${args.exporterUser} LOGIN PASSWORD :'exporter_password' IN ROLE pg_monitor;`,
    // In the database the exporter connects to, and below in the service's (for operators' queries).
    `CREATE EXTENSION pg_stat_statements;`,
    `CREATE ROLE ${service} NOLOGIN;`,
    // CREATEROLE lets Vault create and drop its dynamic users and rotate the owner's password;
    // pg_signal_backend lets it end a revoked user's sessions. It is no member of the owner.
    `CREATE ROLE ${vaultAdmin} LOGIN CREATEROLE PASSWORD :'vault_admin_password';`,
    `GRANT ${service} TO ${vaultAdmin} WITH ADMIN OPTION;`,
    `GRANT pg_signal_backend TO ${vaultAdmin};`,
    // The scheduled ledger jobs' NOLOGIN roles (knhk_archiver, knhk_verifier), administered by Vault's login.
    ...ledgerJobBootstrapStatements(vaultAdmin),
    // From PostgreSQL 16 CREATEROLE covers only roles one administers: the owner's password too.
    `SELECT current_setting('server_version_num')::int >= 160000 AS pg16 \\gset`,
    `\\if :pg16`,
    `GRANT ${owner} TO ${vaultAdmin} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;`,
    `\\endif`,
    `\\connect ${args.database}`,
    `ALTER SCHEMA public OWNER TO ${owner};`,
    `REVOKE ALL ON SCHEMA public FROM PUBLIC;`,
    `GRANT USAGE ON SCHEMA public TO ${service};`,
    `CREATE EXTENSION pg_stat_statements;`,
    "SQL",
    "",
  ].join("\n");
}
