import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TransitKey } from "../render/ledger-jobs";
import { ledgerJobsSection, type LedgerJobsConfig } from "../config/ledger-jobs";
import { labels } from "../render/k8s";
import { LEDGER_JOB_KINDS, LEDGER_JOBS, ledgerCronJob, type ArchiveTarget, type LedgerJobKind } from "../render/ledger-jobs";
import { PORTS, POSTGRES } from "../render/topology";

export interface LedgerJobsArgs {
  readonly namespace: string;
  /** The active colour's pinned image (KnhkService.images[activeColor]) and its version. */
  readonly image: string;
  readonly version: string;
  /** The validated `knhk:ledgerJobs` section. Default: the schema's defaults. */
  readonly config?: LedgerJobsConfig;
  /**
   * Which CronJobs to create (deployedLedgerJobs(config)). Default: the verifications, plus the
   * archive when `archive` is given.
   */
  readonly jobs?: readonly LedgerJobKind[];
  /** Mount path of Vault's database secrets engine (`knhk:vault.mounts.database`). Default `database`. */
  readonly databaseMount?: string;
  /** The PostgreSQL primary (the name on its certificate). Default: Service `postgres-primary` in the namespace, 5432, `knhk`. */
  readonly database?: { readonly host: string; readonly port: number; readonly name: string };
  /** Secret holding `ca.crt` (the Patroni TLS Secret). Default `postgres-tls`. */
  readonly caSecretName?: string;
  /** Transit mount and key whose public versions the verification jobs trust (rendered by their Vault Agent). */
  readonly transit: TransitKey;
  /** The compliance archive the archive job writes to, and the IAM role (IRSA) of its ServiceAccount `knhk-archive`. */
  readonly archive?: ArchiveTarget<pulumi.Input<string>> & { readonly roleArn: pulumi.Input<string> };
}

/**
 * The scheduled ledger jobs in the stack's namespace: CronJobs `knhk-archive` (archive run),
 * `knhk-verify-chain` (incremental verification) and `knhk-verify-chain-full` (from genesis), and
 * their ServiceAccounts `knhk-archive` (IRSA: the archive role) and `knhk-verify-chain`, each bound
 * to its own Vault Kubernetes auth role. The pod specs come from infra/render/ledger-jobs.ts.
 */
export class LedgerJobs extends pulumi.ComponentResource {
  public readonly cronJobNames: pulumi.Output<string[]>;

  constructor(name: string, args: LedgerJobsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:app:LedgerJobs", name, args, opts);
    const child = { parent: this };
    const cfg = args.config ?? ledgerJobsSection.parse({});
    const jobs = args.jobs ?? LEDGER_JOB_KINDS.filter((k) => k !== "archive" || args.archive !== undefined);
    if (jobs.includes("archive") && !args.archive) throw new Error(`${name}: the archive job needs args.archive (buckets, KMS key, region, IAM role)`);
    const database = args.database ?? { host: `${POSTGRES.primaryService}.${args.namespace}.svc.cluster.local`, port: PORTS.postgres, name: POSTGRES.database };

    const serviceAccounts = new Map<string, k8s.core.v1.ServiceAccount>();
    const serviceAccountOf = (kind: LedgerJobKind) => {
      const id = LEDGER_JOBS[kind];
      const existing = serviceAccounts.get(id.serviceAccount);
      if (existing) return existing;
      const irsa = kind === "archive" && args.archive ? { "eks.amazonaws.com/role-arn": args.archive.roleArn } : undefined;
      const created = new k8s.core.v1.ServiceAccount(
        `${name}-${id.serviceAccount.replace(/^knhk-/, "")}-service-account`,
        {
          metadata: {
            name: id.serviceAccount,
            namespace: args.namespace,
            labels: labels(id.selector["app.kubernetes.io/name"], id.selector["app.kubernetes.io/component"]),
            annotations: irsa,
          },
          // Mounted per pod (the job templates ask for it), not for every pod of the account.
          automountServiceAccountToken: false,
        },
        child,
      );
      serviceAccounts.set(id.serviceAccount, created);
      return created;
    };

    const cronJobs = jobs.map((kind) => {
      const job = ledgerCronJob({
        kind,
        namespace: args.namespace,
        config: cfg,
        image: args.image,
        version: args.version,
        databaseMount: args.databaseMount ?? "database",
        database,
        caSecretName: args.caSecretName ?? "postgres-tls",
        transit: args.transit,
        archive: kind === "archive" ? args.archive : undefined,
      });
      return new k8s.batch.v1.CronJob(
        `${name}-${LEDGER_JOBS[kind].cronJob.replace(/^knhk-/, "")}`,
        { metadata: job.metadata, spec: job.spec },
        { ...child, dependsOn: [serviceAccountOf(kind)] },
      );
    });

    this.cronJobNames = pulumi.all(cronJobs.map((c) => c.metadata.name));
    this.registerOutputs({ cronJobNames: this.cronJobNames });
  }
}
