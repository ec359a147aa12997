import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ContainerResources } from "../config/common";
import { labels } from "../render/k8s";
import { migrationJob } from "../render/schema-migration";
import { APP } from "../render/topology";

export interface SchemaMigrationArgs {
  readonly namespace: string;
  /** Image reference per colour. */
  readonly images: Readonly<Record<"blue" | "green", string>>;
  /** Vault Kubernetes auth role of ServiceAccount `knhk-migrate` (create the component after it: `dependsOn`). */
  readonly vaultRole: string;
  /** Vault path of the schema owner's static credential. */
  readonly ownerCredsPath: string;
  /** Transit mount and key of receipt signing (their public versions are registered by the Job). */
  readonly transit: { readonly mount: string; readonly key: string };
  /** The PostgreSQL primary (the name on its certificate). */
  readonly database: { readonly host: string; readonly port: number; readonly name: string };
  /** Secret with `ca.crt` (the Patroni TLS Secret). */
  readonly caSecretName: string;
  /** Requests/limits of the migration container. Default: 100m/128Mi, limits 500m/256Mi. */
  readonly resources?: ContainerResources;
}

const DEFAULT_RESOURCES: ContainerResources = { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "500m", memory: "256Mi" } };

/**
 * ServiceAccount `knhk-migrate` and one Job `knhk-migrate-<colour>` per colour, replaced when that
 * colour's image changes: the migrations of an image run, as the schema owner, before the colour
 * that runs it starts (give each colour's Deployment `dependsOn: jobs[colour]`). The service itself
 * has no DDL rights.
 */
export class SchemaMigration extends pulumi.ComponentResource {
  /** The Job each colour's Deployment waits for. */
  public readonly jobs: Readonly<Record<"blue" | "green", k8s.batch.v1.Job>>;
  public readonly jobNames: pulumi.Output<Record<"blue" | "green", string>>;

  constructor(name: string, args: SchemaMigrationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:app:SchemaMigration", name, args, opts);
    const child = { parent: this };
    const common = labels(APP.migrateSelector["app.kubernetes.io/name"], APP.migrateSelector["app.kubernetes.io/component"]);
    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-service-account`,
      { metadata: { name: APP.migrationServiceAccount, namespace: args.namespace, labels: common }, automountServiceAccountToken: false },
      child,
    );

    const jobFor = (color: "blue" | "green") => {
      const job = migrationJob({
        namespace: args.namespace,
        color,
        image: args.images[color],
        vaultRole: args.vaultRole,
        ownerCredsPath: args.ownerCredsPath,
        transit: args.transit,
        database: args.database,
        caSecretName: args.caSecretName,
        resources: args.resources ?? DEFAULT_RESOURCES,
      });
      return new k8s.batch.v1.Job(
        `${name}-${color}`,
        { metadata: job.metadata, spec: job.spec },
        // A new image replaces the Job (its pod template is immutable): the old one goes first, as
        // the name stays. The engine waits for completion: a failed migration stops the deploy
        // before any pod of the new version starts.
        { ...child, dependsOn: [serviceAccount], deleteBeforeReplace: true },
      );
    };
    this.jobs = { blue: jobFor("blue"), green: jobFor("green") };
    this.jobNames = pulumi.all([this.jobs.blue.metadata.name, this.jobs.green.metadata.name]).apply(([blue, green]) => ({ blue, green }));
    this.registerOutputs({ jobNames: this.jobNames });
  }
}
