/**
 * Vault Agent injector annotations for the KNHK pods (pure). The agent authenticates with the
 * pod's service account (Kubernetes auth role) and renders files under /vault/secrets/; in a
 * long-running pod it keeps them current (a renewed or re-issued credential is re-rendered in
 * place, and the service re-reads the file), in a Job it renders once before the container starts.
 */
import { basename, dirname } from "node:path";
import { TRUSTED_KEYS_FORMAT } from "../../app/src/receipts/trusted-keys";

export const VAULT_SECRETS_DIR = "/vault/secrets";

/** The agent's local API proxy in the pod: requests to it carry the pod's Vault token. */
export const VAULT_AGENT_PROXY = { host: "127.0.0.1", port: 8200 } as const;
export const VAULT_AGENT_PROXY_ADDR = `http://${VAULT_AGENT_PROXY.host}:${VAULT_AGENT_PROXY.port}`;

/** The PostgreSQL server a rendered URL points at, verified with `caFile` (verify-full). */
export interface DatabaseTarget {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  /** Path of the CA certificate inside the pod. */
  readonly caFile: string;
}

export interface VaultAgentInput {
  /** Vault Kubernetes auth role bound to the pod's service account. */
  readonly role: string;
  /** Absolute paths under /vault/secrets/ -> consul-template text rendered there. */
  readonly files: Readonly<Record<string, string>>;
  /** A Job: render once in an init container and run no sidecar (a Job with a sidecar never completes). Default false. */
  readonly initOnly?: boolean;
  /** Run the agent's API proxy on 127.0.0.1:8200 with the pod's token (receipt signing through transit). Default false. */
  readonly apiProxy?: boolean;
}

const VAULT_PATH = /^[a-z0-9][a-z0-9/_-]*$/;
const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/**
 * Consul-template text that renders one postgresql:// URL (and nothing else) from the credential
 * at `credsPath` (dynamic `<mount>/creds/<role>` or static `<mount>/static-creds/<role>`).
 */
export function databaseUrlTemplate(credsPath: string, target: DatabaseTarget): string {
  if (!VAULT_PATH.test(credsPath)) throw new Error(`credsPath "${credsPath}" must be a Vault path`);
  if (!HOST.test(target.host)) throw new Error(`database host "${target.host}" must be a DNS name`);
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw new Error(`database port ${target.port} must be 1-65535`);
  if (!/^[a-z_][a-z0-9_]*$/.test(target.name)) throw new Error(`database name "${target.name}" must be a plain SQL identifier`);
  if (!/^\/[A-Za-z0-9._/-]+$/.test(target.caFile)) throw new Error(`caFile "${target.caFile}" must be an absolute path`);
  const query = `sslmode=verify-full&sslrootcert=${encodeURIComponent(target.caFile)}`;
  return [
    `{{- with secret "${credsPath}" -}}`,
    `postgresql://{{ .Data.username | urlquery }}:{{ .Data.password | urlquery }}@${target.host}:${target.port}/${target.name}?${query}`,
    "{{- end }}",
  ].join("\n");
}

/**
 * Consul-template text rendering the transit key's public versions as a receipt keys file
 * (the format `knhk receipts register-transit-keys --keys-file` and `verify-chain --trusted-keys` read).
 */
export function transitKeysTemplate(transit: { readonly mount: string; readonly key: string }): string {
  for (const [field, value] of Object.entries(transit)) {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(value)) throw new Error(`transit.${field} "${value}" must be a Vault path segment`);
  }
  const source = `vault-transit:${transit.mount}/${transit.key}`;
  return [
    `{{- with secret "${transit.mount}/keys/${transit.key}" -}}`,
    `{"format":"${TRUSTED_KEYS_FORMAT}","source":"${source}","keys":[`,
    `{{- $first := true -}}{{- range $version, $key := .Data.keys -}}{{- if not $first }},{{ end -}}{{- $first = false -}}`,
    `{"key_version":{{ $version }},"public_key":"{{ $key.public_key }}"}`,
    "{{- end -}}]}",
    "{{- end }}",
  ].join("");
}

export function vaultAgentAnnotations(input: VaultAgentInput): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [path, template] of Object.entries(input.files)) {
    const file = basename(path);
    if (dirname(path) !== VAULT_SECRETS_DIR || !/^[a-z0-9][a-z0-9._-]*$/.test(file)) {
      throw new Error(`file "${path}" must be a simple file name directly under ${VAULT_SECRETS_DIR}`);
    }
    // The "secret" annotation names the file; its template decides the content.
    const secretPath = /with secret "([^"]+)"/.exec(template)?.[1];
    if (!secretPath) throw new Error(`template of ${path} reads no secret`);
    files[`vault.hashicorp.com/agent-inject-secret-${file}`] = secretPath;
    files[`vault.hashicorp.com/agent-inject-template-${file}`] = template;
  }
  if (Object.keys(files).length === 0) throw new Error("the Vault Agent renders no file");
  return {
    "vault.hashicorp.com/agent-inject": "true",
    "vault.hashicorp.com/role": input.role,
    "vault.hashicorp.com/agent-pre-populate": "true",
    ...(input.initOnly ? { "vault.hashicorp.com/agent-pre-populate-only": "true" } : {}),
    ...(input.apiProxy
      ? {
          "vault.hashicorp.com/agent-cache-enable": "true",
          "vault.hashicorp.com/agent-cache-listener-port": String(VAULT_AGENT_PROXY.port),
          "vault.hashicorp.com/agent-cache-use-auto-auth-token": "force",
        }
      : {}),
    "vault.hashicorp.com/agent-run-as-user": "1000",
    "vault.hashicorp.com/agent-run-as-group": "1000",
    "vault.hashicorp.com/agent-set-security-context": "true",
    ...files,
    "vault.hashicorp.com/agent-requests-cpu": "50m",
    "vault.hashicorp.com/agent-requests-mem": "64Mi",
    "vault.hashicorp.com/agent-limits-cpu": "250m",
    "vault.hashicorp.com/agent-limits-mem": "128Mi",
  };
}
