/**
 * The scheduled ledger jobs (pure): CronJobs that run the active colour's image with the operator
 * CLI, each as its own least-privileged database role (NOLOGIN group roles of migration 0007)
 * whose dynamic credential Vault Agent renders once, in an init container, before the job starts.
 *
 *   knhk-archive             knhk archive run --record-run [--delete-archived-observations]   knhk_archiver
 *   knhk-verify-chain        knhk receipts verify-chain --incremental --record-run            knhk_verifier
 *   knhk-verify-chain-full   knhk receipts verify-chain --record-run (from genesis)           knhk_verifier
 *
 * Every run records its outcome in ledger_job_runs; the service exports the verification outcome
 * (the P0 chain-integrity alert) and kube-state-metrics the CronJobs' last success (staleness).
 */
import { dirname } from "node:path";
import { ARCHIVE_ENV } from "../../app/src/archive/config";
import type { StackConfig } from "../config";
import type { ContainerResources } from "../config/common";
import type { LedgerJobsConfig } from "../config/ledger-jobs";
import { emptyDirVolume, labels, restrictedContainerSecurityContext, restrictedPodSecurityContext } from "./k8s";
import { postgresCaVolume } from "./schema-migration";
import { APP, APP_FILES, PORTS, POSTGRES } from "./topology";
import { databaseUrlTemplate, transitKeysTemplate, vaultAgentAnnotations, type DatabaseTarget } from "./vault-agent";

/** A transit key: its engine's mount path and its name. */
export interface TransitKey {
  readonly mount: string;
  readonly key: string;
}
import { dynamicUserCreationStatements, dynamicUserRevocationStatements } from "./vault-database";
import type { PolicyRule } from "./vault-policies";

export type LedgerJobKind = "archive" | "verifyChain" | "fullVerification";
export const LEDGER_JOB_KINDS: readonly LedgerJobKind[] = ["archive", "verifyChain", "fullVerification"];

export interface LedgerJobIdentity {
  /** Name of the CronJob (and the `cronjob` label of its kube-state-metrics series). */
  readonly cronJob: string;
  readonly container: string;
  /** Pod labels (NetworkPolicy allows select on them). */
  readonly selector: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** Vault Kubernetes auth role bound to `serviceAccount`; its policy reads `vaultDatabaseRole`'s credentials only. */
  readonly vaultAuthRole: string;
  /** Vault database secrets engine role: creates users IN ROLE `dbRole`. */
  readonly vaultDatabaseRole: string;
  /** NOLOGIN PostgreSQL role with the job's grants (app/migrations/0007_ledger_jobs.sql). */
  readonly dbRole: string;
}

const ARCHIVER = { serviceAccount: "knhk-archive", vaultAuthRole: "knhk-archive", vaultDatabaseRole: "knhk-archiver", dbRole: "knhk_archiver" } as const;
const VERIFIER = { serviceAccount: "knhk-verify-chain", vaultAuthRole: "knhk-verify-chain", vaultDatabaseRole: "knhk-verifier", dbRole: "knhk_verifier" } as const;

/** The fixed names of the jobs and their identities (VaultAccess creates the Vault roles under these names). */
export const LEDGER_JOBS: Readonly<Record<LedgerJobKind, LedgerJobIdentity>> = {
  archive: { cronJob: "knhk-archive", container: "archive", selector: APP.archiveSelector, ...ARCHIVER },
  verifyChain: { cronJob: "knhk-verify-chain", container: "verify-chain", selector: APP.verifyChainSelector, ...VERIFIER },
  fullVerification: { cronJob: "knhk-verify-chain-full", container: "verify-chain", selector: APP.verifyChainSelector, ...VERIFIER },
};

/** Connections one job run opens at most (the archive's lock session and its run record; verification reads one page at a time). */
export const LEDGER_JOB_POOL_MAX = 2;

const UID = 1000;

/**
 * The jobs this stack deploys: only with a database identity to give them (Vault), and the
 * archive only with the buckets it writes to (AWS). Without Vault the service runs on its embedded
 * database, which no job could reach: a job there would verify an empty chain and always pass.
 */
export function deployedLedgerJobs(config: Pick<StackConfig, "vault" | "aws" | "ledgerJobs">): LedgerJobKind[] {
  if (!config.vault.enabled) return [];
  return LEDGER_JOB_KINDS.filter((kind) => config.ledgerJobs[kind].enabled && (kind !== "archive" || config.aws.enabled));
}

/** The CLI argv of a job. */
export function ledgerJobCommand(kind: LedgerJobKind, cfg: LedgerJobsConfig): string[] {
  switch (kind) {
    case "archive":
      return [
        ...APP.cliCommand,
        "archive",
        "run",
        "--batch",
        String(cfg.archive.batchSize),
        ...(cfg.archive.deleteArchivedObservations ? ["--delete-archived-observations"] : []),
        "--record-run",
      ];
    // The signing keys come from Vault (a keys file its agent renders), not from the database verified.
    case "verifyChain":
      return [...APP.cliCommand, "receipts", "verify-chain", "--incremental", "--format", "json", "--workers", String(cfg.verifyChain.workers), "--trusted-keys", APP_FILES.transitKeys, "--record-run"];
    case "fullVerification":
      return [...APP.cliCommand, "receipts", "verify-chain", "--format", "json", "--workers", String(cfg.fullVerification.workers), "--trusted-keys", APP_FILES.transitKeys, "--record-run"];
  }
}

/** Where the archive writes; `S` is a plain string here and a Pulumi output in the component. */
export interface ArchiveTarget<S> {
  readonly ledgerBucket: S;
  readonly dataBucket: S;
  readonly kmsKeyArn: S;
  readonly region: S;
  readonly retentionMode: "COMPLIANCE" | "GOVERNANCE";
  readonly retentionDays: number;
}

export interface EnvVar<S> {
  readonly name: string;
  readonly value: S | string;
}

/** The archive's settings (app/src/archive/config.ts reads them by these names). */
export function archiveEnv<S>(target: ArchiveTarget<S>, cfg: LedgerJobsConfig): EnvVar<S>[] {
  return [
    { name: ARCHIVE_ENV.ledgerBucket, value: target.ledgerBucket },
    { name: ARCHIVE_ENV.dataBucket, value: target.dataBucket },
    { name: ARCHIVE_ENV.retentionMode, value: target.retentionMode },
    { name: ARCHIVE_ENV.retentionDays, value: String(target.retentionDays) },
    { name: ARCHIVE_ENV.observationArchiveAfterDays, value: String(cfg.archive.observationArchiveAfterDays) },
    { name: ARCHIVE_ENV.kmsKeyId, value: target.kmsKeyArn },
    { name: ARCHIVE_ENV.region, value: target.region },
  ];
}

export interface LedgerCronJobInput<S> {
  readonly kind: LedgerJobKind;
  readonly namespace: string;
  readonly config: LedgerJobsConfig;
  /** The active colour's pinned image and its version (pod label). */
  readonly image: string;
  readonly version: string;
  /** Mount path of Vault's database secrets engine (`knhk:vault.mounts.database`). */
  readonly databaseMount: string;
  /** The primary as the job reaches it (the name on its certificate). */
  readonly database: Omit<DatabaseTarget, "caFile">;
  /** Secret with `ca.crt` (the Patroni TLS Secret). */
  readonly caSecretName: string;
  /** Transit mount and key of receipt signing: the verification jobs trust only the public keys Vault holds. */
  readonly transit: TransitKey;
  /** Required for the archive job. */
  readonly archive?: ArchiveTarget<S>;
}

/** Vault path of a job's dynamic credentials. */
export function ledgerJobCredsPath(kind: LedgerJobKind, databaseMount: string): string {
  return `${databaseMount}/creds/${LEDGER_JOBS[kind].vaultDatabaseRole}`;
}

function jobSettings(kind: LedgerJobKind, cfg: LedgerJobsConfig): { schedule: string; activeDeadlineSeconds: number; resources: ContainerResources } {
  return cfg[kind];
}

/** `{ metadata, spec }` of one CronJob (batch/v1). */
export function ledgerCronJob<S>(input: LedgerCronJobInput<S>) {
  const { kind, config: cfg } = input;
  const id = LEDGER_JOBS[kind];
  const settings = jobSettings(kind, cfg);
  if (kind === "archive" && !input.archive) throw new Error("ledgerCronJob: the archive job needs its archive target (buckets, KMS key, region)");
  const caFile = APP_FILES.postgresCa;
  const objectLabels = labels(id.selector["app.kubernetes.io/name"], id.selector["app.kubernetes.io/component"]);
  const podLabels = { ...objectLabels, "app.kubernetes.io/version": input.version };
  const annotations = vaultAgentAnnotations({
    role: id.vaultAuthRole,
    files: {
      [APP_FILES.databaseUrl]: databaseUrlTemplate(ledgerJobCredsPath(kind, input.databaseMount), { ...input.database, caFile }),
      ...(kind === "archive" ? {} : { [APP_FILES.transitKeys]: transitKeysTemplate(input.transit) }),
    },
    // A Job with the agent sidecar never completes; the credential outlives the run (credentialTtlSeconds).
    initOnly: true,
  });
  const env: EnvVar<S>[] = [
    { name: "DATABASE_URL_FILE", value: APP_FILES.databaseUrl },
    { name: "DB_POOL_MAX_CONNECTIONS", value: String(LEDGER_JOB_POOL_MAX) },
    { name: "DB_POOL_MIN_CONNECTIONS", value: "0" },
    // The schema is the migration Job's business: this role has no DDL rights.
    { name: "KNHK_MIGRATE_ON_START", value: "false" },
    ...(kind === "archive" ? archiveEnv(input.archive as ArchiveTarget<S>, cfg) : []),
  ];
  return {
    metadata: { name: id.cronJob, namespace: input.namespace, labels: objectLabels },
    spec: {
      schedule: settings.schedule,
      timeZone: "Etc/UTC",
      concurrencyPolicy: "Forbid",
      startingDeadlineSeconds: cfg.startingDeadlineSeconds,
      successfulJobsHistoryLimit: cfg.successfulJobsHistoryLimit,
      failedJobsHistoryLimit: cfg.failedJobsHistoryLimit,
      suspend: false,
      jobTemplate: {
        metadata: { labels: objectLabels },
        spec: {
          backoffLimit: cfg.backoffLimit,
          activeDeadlineSeconds: settings.activeDeadlineSeconds,
          template: {
            metadata: { labels: podLabels, annotations },
            spec: {
              serviceAccountName: id.serviceAccount,
              // Vault's Kubernetes auth (and IRSA's web identity) read this token; the job never calls the API.
              automountServiceAccountToken: true,
              restartPolicy: "Never",
              securityContext: restrictedPodSecurityContext(UID),
              containers: [
                {
                  name: id.container,
                  image: input.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ledgerJobCommand(kind, cfg),
                  env,
                  resources: settings.resources,
                  securityContext: restrictedContainerSecurityContext(UID),
                  volumeMounts: [
                    { name: "tmp", mountPath: "/tmp" },
                    { name: "postgres-ca", mountPath: dirname(caFile), readOnly: true },
                  ],
                },
              ],
              volumes: [emptyDirVolume("tmp", "64Mi"), postgresCaVolume(input.caSecretName)],
            },
          },
        },
      },
    },
  };
}

/** Pod-to-pod flows of the jobs, in the shape of the Namespace component's `allows`. */
export interface LedgerJobAllow {
  readonly name: string;
  readonly from: Record<string, string>;
  readonly to: Record<string, string>;
  readonly ports: readonly number[];
}

/** Egress outside the cluster, in the shape of the Namespace component's `externalEgress`. */
export interface LedgerJobEgress {
  readonly name: string;
  readonly from: Record<string, string>;
  readonly ports: readonly number[];
}

/** A flow to a peer outside the namespace, in the shape of the Namespace component's `peerAllows`. */
export interface LedgerJobPeerAllow<P> {
  readonly name: string;
  readonly direction: "egress";
  readonly pods: Record<string, string>;
  readonly peer: P;
  readonly ports: readonly number[];
}

/** S3 and STS (IRSA's AssumeRoleWithWebIdentity) over HTTPS. */
export const AWS_API_PORT = 443;

/**
 * What the deployed jobs need under the namespace's default-deny: PostgreSQL on the primary (both
 * halves: egress from the job, ingress at PostgreSQL), the Vault server (`vaultServer`, as
 * `knhk:vault.server` names it: the agent init container logs in and reads the credential), and
 * for the archive S3/STS. Both verification CronJobs share one selector, so they share these.
 */
export function ledgerJobNetworkAllows<P>(
  jobs: readonly LedgerJobKind[],
  vaultServer: P,
): { allows: LedgerJobAllow[]; externalEgress: LedgerJobEgress[]; peerAllows: LedgerJobPeerAllow<P>[] } {
  const allows: LedgerJobAllow[] = [];
  const externalEgress: LedgerJobEgress[] = [];
  const peerAllows: LedgerJobPeerAllow<P>[] = [];
  const flows = (prefix: string, selector: Record<string, string>) => {
    allows.push({ name: `${prefix}-to-postgres`, from: selector, to: POSTGRES.selector, ports: [PORTS.postgres] });
    peerAllows.push({ name: `${prefix}-to-vault`, direction: "egress", pods: selector, peer: vaultServer, ports: [PORTS.vault] });
  };
  if (jobs.includes("archive")) {
    flows("archive", APP.archiveSelector);
    externalEgress.push({ name: "archive-external", from: APP.archiveSelector, ports: [AWS_API_PORT] });
  }
  if (jobs.includes("verifyChain") || jobs.includes("fullVerification")) flows("verify-chain", APP.verifyChainSelector);
  return { allows, externalEgress, peerAllows };
}

/** What the staleness alerts of the deployed jobs need: the CronJob and how long without a success pages. */
export interface LedgerJobAlerting {
  readonly kind: LedgerJobKind;
  readonly cronJob: string;
  readonly alertAfterSeconds: number;
}

export function ledgerJobAlerting(config: Pick<StackConfig, "vault" | "aws" | "ledgerJobs">): LedgerJobAlerting[] {
  return deployedLedgerJobs(config).map((kind) => ({ kind, cronJob: LEDGER_JOBS[kind].cronJob, alertAfterSeconds: config.ledgerJobs[kind].alertAfterSeconds }));
}

/**
 * SQL the database bootstrap runs (as the superuser, beside creating knhk_service): the jobs'
 * NOLOGIN roles, which the schema owner may not create, administered by Vault's login so it can
 * create the jobs' dynamic users IN ROLE them. Migration 0007 grants them their privileges.
 */
export function ledgerJobBootstrapStatements(vaultAdmin: string): string[] {
  if (!/^[a-z_][a-z0-9_]*$/.test(vaultAdmin)) throw new Error(`vaultAdmin "${vaultAdmin}" must be a plain lower-case SQL identifier`);
  const roles = [...new Set(Object.values(LEDGER_JOBS).map((j) => j.dbRole))];
  return roles.flatMap((role) => [`CREATE ROLE ${role} NOLOGIN;`, `GRANT ${role} TO ${vaultAdmin} WITH ADMIN OPTION;`]);
}

/** One Vault identity of the jobs: Kubernetes auth role, its policy, and the database role it reads. */
export interface LedgerJobVaultRole {
  /** Kubernetes auth role (`vault.hashicorp.com/role` of the pods) and the policy of the same name. */
  readonly authRole: string;
  readonly serviceAccount: string;
  readonly policyRules: readonly PolicyRule[];
  /** Database secrets engine role; its users are created IN ROLE `dbRole`. */
  readonly databaseRole: string;
  readonly dbRole: string;
  readonly creationStatements: string[];
  readonly revocationStatements: string[];
  /** default_ttl = max_ttl: the agent renders once and never renews (knhk:ledgerJobs.credentialTtlSeconds). */
  readonly ttlSeconds: number;
}

/**
 * What VaultAccess creates for the jobs: per identity a policy that reads its own credentials
 * only, a Kubernetes auth role bound to its ServiceAccount, and a database role (added to the
 * connection's allowed roles) whose users are members of its NOLOGIN role only.
 */
export function ledgerJobVaultRoles(databaseMount: string, ttlSeconds: number, transit: TransitKey): LedgerJobVaultRole[] {
  const seen = new Set<string>();
  const out: LedgerJobVaultRole[] = [];
  for (const kind of LEDGER_JOB_KINDS) {
    const id = LEDGER_JOBS[kind];
    if (seen.has(id.vaultAuthRole)) continue;
    seen.add(id.vaultAuthRole);
    out.push({
      authRole: id.vaultAuthRole,
      serviceAccount: id.serviceAccount,
      policyRules: [
        { path: ledgerJobCredsPath(kind, databaseMount), capabilities: ["read"] },
        // Verification reads the signing key's public versions (never sign, rotate or export).
        ...(id.vaultAuthRole === VERIFIER.vaultAuthRole ? [{ path: `${transit.mount}/keys/${transit.key}`, capabilities: ["read" as const] }] : []),
        { path: "auth/token/lookup-self", capabilities: ["read"] },
      ],
      databaseRole: id.vaultDatabaseRole,
      dbRole: id.dbRole,
      creationStatements: dynamicUserCreationStatements(id.dbRole),
      revocationStatements: dynamicUserRevocationStatements(id.dbRole),
      ttlSeconds,
    });
  }
  return out;
}
