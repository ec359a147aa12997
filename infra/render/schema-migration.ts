/**
 * The pre-deploy migration Job of one image (pure): it applies the image's migrations as the
 * schema owner, with the owner's rotated credential that Vault Agent renders before the container
 * starts, and exits. The colour running that image starts only after the Job succeeded.
 */
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import type { ContainerResources } from "../config/common";
import { emptyDirVolume, labels, restrictedContainerSecurityContext, restrictedPodSecurityContext } from "./k8s";
import { APP, APP_FILES } from "./topology";
import { databaseUrlTemplate, vaultAgentAnnotations, type DatabaseTarget } from "./vault-agent";

export interface MigrationJobInput {
  readonly namespace: string;
  /** Pinned image reference (tag or digest) whose migrations run. */
  readonly image: string;
  /** Kubernetes auth role of the Job's service account (Vault's migration policy). */
  readonly vaultRole: string;
  /** Vault path of the owner's static credential, e.g. `database/static-creds/knhk-owner`. */
  readonly ownerCredsPath: string;
  /** The primary as the Job reaches it; `caFile` is where the CA is mounted. */
  readonly database: Omit<DatabaseTarget, "caFile">;
  /** Secret holding `ca.crt`, the CA the PostgreSQL server certificate chains to. */
  readonly caSecretName: string;
  readonly resources: ContainerResources;
}

const UID = 1000;
/** Enough for every migration so far by orders of magnitude; a hung migration fails the deploy instead of blocking it. */
export const MIGRATION_DEADLINE_SECONDS = 900;

/** `knhk-migrate-<first 10 hex of sha256(image)>`: one Job per image, so a new version gets a new Job. */
export function migrationJobName(image: string): string {
  return `knhk-migrate-${createHash("sha256").update(image).digest("hex").slice(0, 10)}`;
}

/** The container's argv: the CLI's `schema migrate` (applies what is missing, exits 1 if anything is still missing). */
export function migrationCommand(): string[] {
  return [...APP.cliCommand, "schema", "migrate"];
}

export function migrationJob(input: MigrationJobInput) {
  const caFile = APP_FILES.postgresCa;
  const podLabels = { ...labels(APP.migrateSelector["app.kubernetes.io/name"], APP.migrateSelector["app.kubernetes.io/component"]) };
  const annotations = vaultAgentAnnotations({
    role: input.vaultRole,
    files: { [APP_FILES.ownerDatabaseUrl]: databaseUrlTemplate(input.ownerCredsPath, { ...input.database, caFile }) },
    initOnly: true,
  });
  return {
    metadata: { name: migrationJobName(input.image), namespace: input.namespace, labels: podLabels },
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
