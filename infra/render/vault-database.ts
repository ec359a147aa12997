/**
 * The SQL Vault's database secrets engine runs against PostgreSQL (pure). Vault substitutes
 * `{{name}}`, `{{password}}` and `{{expiration}}`; tests run the very same statements to create the
 * service's least-privileged user the way Vault does.
 */

const ROLE_NAME = /^[a-z_][a-z0-9_]*$/;

function checkRole(field: string, value: string): string {
  if (!ROLE_NAME.test(value)) throw new Error(`${field} "${value}" must be a plain lower-case SQL identifier`);
  return value;
}

/** Creates a dynamic login that holds nothing but membership in the service role. */
export function dynamicUserCreationStatements(serviceRole: string): string[] {
  return [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE ${checkRole("serviceRole", serviceRole)};`];
}

/**
 * Revokes a dynamic login: its sessions end at once (as on lease expiry), then the role goes.
 * A service user owns no objects (it has no DDL rights), so nothing needs reassigning.
 */
export function dynamicUserRevocationStatements(serviceRole: string): string[] {
  return [
    `REVOKE ${checkRole("serviceRole", serviceRole)} FROM "{{name}}";`,
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';`,
    `DROP ROLE IF EXISTS "{{name}}";`,
  ];
}

/** Connections Vault's database secrets engine keeps open to PostgreSQL (part of the connection budget). */
export const VAULT_MAX_OPEN_CONNECTIONS = 4;

/** Vault's own credential on the connection, rotated on the configured schedule. */
export const ROOT_ROTATION_STATEMENTS = [`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}';`];

/** Substitutes Vault's template variables (tests; Vault does this itself in production). */
export function fillVaultTemplate(statement: string, values: { name: string; password: string; expiration?: string }): string {
  if (!/^[A-Za-z0-9._-]+$/.test(values.name)) throw new Error(`name "${values.name}" is not a role name Vault would generate`);
  if (values.password.includes("'")) throw new Error("password must not contain a quote");
  // split/join, not replaceAll: the Pulumi program compiles against ES2020.
  return statement
    .split("{{name}}")
    .join(values.name)
    .split("{{password}}")
    .join(values.password)
    .split("{{expiration}}")
    .join(values.expiration ?? new Date(Date.now() + 3600_000).toISOString());
}

/** How Vault's connection reaches PostgreSQL: TLS verified against the cluster CA (sent as `tls_ca`), SCRAM. */
export function vaultConnectionUrl(database: { readonly host: string; readonly port: number; readonly name: string }): string {
  return `postgresql://{{username}}:{{password}}@${database.host}:${database.port}/${database.name}?sslmode=verify-full`;
}

export const VAULT_PASSWORD_AUTHENTICATION = "scram-sha-256";
