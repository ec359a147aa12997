/**
 * Vault Agent injector annotations for the KNHK pods (pure). The agent authenticates with the
 * pod's service account (Kubernetes auth role) and renders DATABASE_URL from the database
 * secrets engine into /vault/secrets/database.env, which the container sources at start.
 */

export interface VaultAgentInput {
  /** Vault Kubernetes auth role bound to the `knhk-service` service account. */
  readonly role: string;
  /** Path of dynamic PostgreSQL credentials, e.g. `database/creds/knhk-app`. */
  readonly databaseCredsPath: string;
  readonly database: { readonly host: string; readonly port: number; readonly name: string; readonly sslmode: "verify-full" | "require" };
  /** File name under /vault/secrets/. */
  readonly fileName?: string;
}

export const VAULT_SECRETS_DIR = "/vault/secrets";
export const DATABASE_ENV_FILE = "database.env";

/** Consul-template text that writes `export DATABASE_URL=...` from fresh credentials. */
export function databaseUrlTemplate(input: VaultAgentInput): string {
  const { host, port, name, sslmode } = input.database;
  if (!/^[a-z0-9/_-]+$/.test(input.databaseCredsPath)) throw new Error(`databaseCredsPath "${input.databaseCredsPath}" must be a Vault path`);
  return [
    `{{- with secret "${input.databaseCredsPath}" -}}`,
    `export DATABASE_URL="postgresql://{{ .Data.username | urlquery }}:{{ .Data.password | urlquery }}@${host}:${port}/${name}?sslmode=${sslmode}"`,
    "{{- end }}",
  ].join("\n");
}

export function vaultAgentAnnotations(input: VaultAgentInput): Record<string, string> {
  const file = input.fileName ?? DATABASE_ENV_FILE;
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(file)) throw new Error(`fileName "${file}" must be a simple file name`);
  return {
    "vault.hashicorp.com/agent-inject": "true",
    "vault.hashicorp.com/role": input.role,
    "vault.hashicorp.com/agent-pre-populate": "true",
    "vault.hashicorp.com/agent-run-as-user": "1000",
    "vault.hashicorp.com/agent-run-as-group": "1000",
    "vault.hashicorp.com/agent-set-security-context": "true",
    [`vault.hashicorp.com/agent-inject-secret-${file}`]: input.databaseCredsPath,
    [`vault.hashicorp.com/agent-inject-template-${file}`]: databaseUrlTemplate(input),
    "vault.hashicorp.com/agent-requests-cpu": "50m",
    "vault.hashicorp.com/agent-requests-mem": "64Mi",
    "vault.hashicorp.com/agent-limits-cpu": "250m",
    "vault.hashicorp.com/agent-limits-mem": "128Mi",
  };
}
