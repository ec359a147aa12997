/**
 * Database users the way Vault's database secrets engine makes them: the rendered creation and
 * revocation statements (infra/render/vault-database.ts) for the service role, a Vault-style name
 * and a random password checked by scram-sha-256 (startPasswordPostgres), and the URL file Vault
 * Agent renders, rewritten by rename as the agent does.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { POSTGRES } from "../../../infra/render/topology";
import { dynamicUserCreationStatements, dynamicUserRevocationStatements, fillVaultTemplate } from "../../../infra/render/vault-database";
import { startPostgres, type PostgresOptions, type TestPostgres } from "../../support/postgres";

export interface DynamicUser {
  readonly name: string;
  readonly password: string;
  /** postgres:// URL of this user on `database` (what Vault Agent renders). */
  url(database: string, query?: string): string;
}

/**
 * PostgreSQL where every user but the superuser `postgres` authenticates with its password
 * (scram-sha-256), so a URL's credentials are really checked.
 */
export async function startPasswordPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), "knhk-hba-"));
  chmodSync(dir, 0o755);
  const hba = join(dir, "pg_hba.conf");
  writeFileSync(
    hba,
    ["local all postgres trust", "host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256", ""].join("\n"),
    { mode: 0o644 },
  );
  return startPostgres({ ...options, settings: { hba_file: hba, ...options.settings } });
}

let issued = 0;

/** Creates a login as Vault does: its creation statements, member of POSTGRES.serviceDbRole only. */
export async function issueDynamicUser(pg: TestPostgres, database: string, label = "user"): Promise<DynamicUser> {
  const name = `v-knhk-${label}-${process.pid}-${++issued}-${randomBytes(3).toString("hex")}`;
  const password = randomBytes(18).toString("base64url");
  const statements = dynamicUserCreationStatements(POSTGRES.serviceDbRole).map((s) => fillVaultTemplate(s, { name, password }));
  await pg.psql(statements.join("\n"), database);
  return {
    name,
    password,
    url: (db, query) => `postgres://${encodeURIComponent(name)}:${encodeURIComponent(password)}@${pg.host}:${pg.port}/${db}${query ? `?${query}` : ""}`,
  };
}

/** Revokes a login as Vault does on lease expiry: its sessions end at once, then the role goes. */
export async function revokeDynamicUser(pg: TestPostgres, database: string, user: DynamicUser): Promise<void> {
  const statements = dynamicUserRevocationStatements(POSTGRES.serviceDbRole).map((s) => fillVaultTemplate(s, { name: user.name, password: user.password }));
  await pg.psql(statements.join("\n"), database);
}

/** Replaces `path` atomically (temporary file, then rename), as Vault Agent renders a template. */
export function renderFile(path: string, content: string): void {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600 });
  renameSync(temporary, path);
}

/** Backends of `database` by user name (the superuser's own psql excluded). */
export async function backendsByUser(pg: TestPostgres, database: string): Promise<Map<string, number>> {
  const out = await pg.psql(
    `SELECT usename || '|' || count(*) FROM pg_stat_activity WHERE datname = '${database}' AND usename <> 'postgres' AND backend_type = 'client backend' GROUP BY usename`,
    database,
  );
  const users = new Map<string, number>();
  for (const line of out.split("\n").filter(Boolean)) {
    const [user, n] = line.split("|");
    users.set(user, Number(n));
  }
  return users;
}
