/**
 * The pre-deploy migration Job of one image (pure): it applies the image's migrations as the
 * schema owner, with the owner's rotated credential that Vault Agent renders before the container
 * starts, and exits. The colour running that image starts only after the Job succeeded.
 */
import { dirname } from "node:path";
import type { ContainerResources } from "../config/common";
import { emptyDirVolume, labels, restrictedContainerSecurityContext, restrictedPodSecurityContext } from "./k8s";
import { APP, APP_FILES } from "./topology";
import { databaseUrlTemplate, transitKeysTemplate, vaultAgentAnnotations, type DatabaseTarget } from "./vault-agent";

export interface MigrationJobInput {
  readonly namespace: string;
  /** The colour whose image this Job migrates for. */
  readonly color: "blue" | "green";
  /** Pinned image reference (tag or digest) whose migrations run. */
  readonly image: string;
  /** Kubernetes auth role of the Job's service account (Vault's migration policy). */
  readonly vaultRole: string;
  /** Vault path of the owner's static credential, e.g. `database/static-creds/knhk-owner`. */
  readonly ownerCredsPath: string;
  /** Transit mount and key whose public versions the owner registers as receipt signing keys. */
  readonly transit: { readonly mount: string; readonly key: string };
  /** The primary as the Job reaches it; `caFile` is where the CA is mounted. */
  readonly database: Omit<DatabaseTarget, "caFile">;
  /** Secret holding `ca.crt`, the CA the PostgreSQL server certificate chains to. */
  readonly caSecretName: string;
  readonly resources: ContainerResources;
}

const UID = 1000;
/** Enough for every migration so far by orders of magnitude; a hung migration fails the deploy instead of blocking it. */
export const MIGRATION_DEADLINE_SECONDS = 900;

/**
 * `knhk-migrate-<colour>`: one Job per colour, replaced whenever that colour's image changes (a
 * Job's pod template is immutable), so a release shows up as exactly that colour's Job. Two colours
 * on one image both run; the second finds nothing to apply (migrations serialise on a lock).
 */
export function migrationJobName(color: "blue" | "green"): string {
  return `knhk-migrate-${color}`;
}

/**
 * What the Job runs, in order (each an argv of the image's CLI): apply the migrations, then register
 * the transit key's public versions (only the owner may), so the service can sign with them.
 */
export function migrationSteps(): string[][] {
  return [
    [...APP.cliCommand, "schema", "migrate"],
    [...APP.cliCommand, "receipts", "register-transit-keys", "--keys-file", APP_FILES.transitKeys],
  ];
}

/** The container's command: the steps in one shell, stopping at the first that fails. */
export function migrationCommand(): string[] {
  const quote = (arg: string) => (/^[A-Za-z0-9_./:=-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);
  return ["/bin/sh", "-c", migrationSteps().map((step) => step.map(quote).join(" ")).join(" && ")];
}

export function migrationJob(input: MigrationJobInput) {
  const caFile = APP_FILES.postgresCa;
  const podLabels = { ...labels(APP.migrateSelector["app.kubernetes.io/name"], APP.migrateSelector["app.kubernetes.io/component"]) };
  const annotations = vaultAgentAnnotations({
    role: input.vaultRole,
    files: {
      [APP_FILES.ownerDatabaseUrl]: databaseUrlTemplate(input.ownerCredsPath, { ...input.database, caFile }),
      [APP_FILES.transitKeys]: transitKeysTemplate(input.transit),
    },
    initOnly: true,
  });
  return {
    metadata: { name: migrationJobName(input.color), namespace: input.namespace, labels: podLabels },
    spec: {
      backoffLimit: 2,
      activeDeadlineSeconds: MIGRATION_DEADLINE_SECONDS,
      template: {
        metadata: { labels: podLabels, annotations },
        spec: {
          serviceAccountName: APP.migrationServiceAccount,
          // Vault's Kubernetes auth reads this token; the Job never calls the API itself.
          automountServiceAccountToken: true,
          restartPolicy: "Never",
          securityContext: restrictedPodSecurityContext(UID),
          containers: [
            {
              name: "migrate",
              image: input.image,
              imagePullPolicy: "IfNotPresent",
              command: migrationCommand(),
              env: [
                { name: "DATABASE_URL_FILE", value: APP_FILES.ownerDatabaseUrl },
                { name: "DB_POOL_MAX_CONNECTIONS", value: "1" },
                { name: "DB_POOL_MIN_CONNECTIONS", value: "0" },
              ],
              resources: input.resources,
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
  };
}

/** Only `ca.crt` of the TLS Secret, never its private key. */
export function postgresCaVolume(secretName: string) {
  return { name: "postgres-ca", secret: { secretName, items: [{ key: "ca.crt", path: "ca.crt" }], defaultMode: 0o444 } };
}
