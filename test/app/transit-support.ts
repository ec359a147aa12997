/**
 * Shared set-up of the transit signing tests: a real OpenBao with the transit engine, one fresh
 * ed25519 key per test (so one test's rotation is not another's), the service and migration
 * policies exactly as the stack renders them (for that key), tokens with only those policies in
 * token files, and a fresh ledger database whose owner registers transit versions through the CLI.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../app/src/cli/receipts";
import type { CliContext } from "../../app/src/cli/context";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { migrate } from "../../app/src/db/migrate";
import { migrationPolicyRules, renderPolicyHcl, servicePolicyRules, VAULT_OBJECT_NAMES, vaultLayout } from "../../infra/render/vault-policies";
import type { TestOpenBao } from "../support/openbao";
import { capturedStreams } from "../support/streams";
import { ledgerMigrations, type LedgerPostgres } from "./receipts-support";

export const TRANSIT_MOUNT = "transit";
let counter = 0;

export interface TransitKeyFixture {
  readonly name: string;
  /** Token files holding a token with only the rendered service / migration policy for this key. */
  readonly serviceTokenFile: string;
  readonly migrationTokenFile: string;
  readonly serviceToken: string;
  /** The signing variables of a service reaching Vault directly with its token file. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** The same for the owner (migration Job) identity. */
  ownerEnv(extra?: Record<string, string>): Record<string, string>;
  rotate(): Promise<void>;
}

export async function enableTransit(bao: TestOpenBao): Promise<void> {
  await bao.enableMount(TRANSIT_MOUNT, "transit");
}

/** A fresh transit key with the stack's policies rendered for it. */
export async function transitKey(bao: TestOpenBao): Promise<TransitKeyFixture> {
  const name = `${VAULT_OBJECT_NAMES.signingKey}-${process.pid}-${++counter}`;
  await bao.root("POST", `${TRANSIT_MOUNT}/keys/${name}`, { type: "ed25519", exportable: false, allow_plaintext_backup: false });
  const layout = { ...vaultLayout({ kv: "secret", database: "database", transit: TRANSIT_MOUNT }), signingKey: name };
  await bao.writePolicy(`service-${name}`, renderPolicyHcl(servicePolicyRules(layout)));
  await bao.writePolicy(`migration-${name}`, renderPolicyHcl(migrationPolicyRules(layout)));
  const serviceToken = await bao.createToken([`service-${name}`]);
  const migrationToken = await bao.createToken([`migration-${name}`]);
  const dir = mkdtempSync(join(tmpdir(), "knhk-transit-"));
  const serviceTokenFile = join(dir, "service-token");
  const migrationTokenFile = join(dir, "migration-token");
  writeFileSync(serviceTokenFile, `${serviceToken}\n`, { mode: 0o600 });
  writeFileSync(migrationTokenFile, `${migrationToken}\n`, { mode: 0o600 });
  const base = (tokenFile: string, extra: Record<string, string>) => ({
    KNHK_SIGNING_VAULT_ADDR: bao.addr,
    KNHK_SIGNING_TRANSIT_MOUNT: TRANSIT_MOUNT,
    KNHK_SIGNING_TRANSIT_KEY: name,
    KNHK_SIGNING_VAULT_TOKEN_FILE: tokenFile,
    KNHK_SIGNING_VAULT_STARTUP_WAIT_SECONDS: "0",
    ...(bao.caFile ? { KNHK_SIGNING_VAULT_CA_FILE: bao.caFile } : {}),
    ...extra,
  });
  return {
    name,
    serviceTokenFile,
    migrationTokenFile,
    serviceToken,
    env: (extra = {}) => base(serviceTokenFile, extra),
    ownerEnv: (extra = {}) => base(migrationTokenFile, extra),
    async rotate() {
      await bao.root("POST", `${TRANSIT_MOUNT}/keys/${name}/rotate`);
    },
  };
}

export interface LedgerDatabase {
  readonly name: string;
  /** The owner (superuser postgres): migrations, registration, tampering. */
  readonly owner: PostgresDatabase;
  /** knhk_app, member of knhk_service: what the service runs as. */
  readonly service: PostgresDatabase;
  close(): Promise<void>;
}

export async function ledgerDatabase(env: LedgerPostgres): Promise<LedgerDatabase> {
  const name = `transit_${process.pid}_${++counter}`;
  await env.pg.createDatabase(name);
  const owner = createPostgresDatabase({ connectionString: env.pg.url(name), max: 2 });
  await migrate(owner, ledgerMigrations());
  const service = createPostgresDatabase({ connectionString: env.pg.url(name, "knhk_app"), max: 4 });
  return {
    name,
    owner,
    service,
    async close() {
      await service.close();
      await owner.close();
    },
  };
}

/** `knhk receipts <args>` in-process against `db` with `env`. */
export async function receiptsCli(db: PostgresDatabase, env: Record<string, string>, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { stdout, stderr, out, err } = capturedStreams();
  const ctx: CliContext = { db, env, stdout, stderr };
  const code = await run(args, ctx);
  return { code, out: out(), err: err() };
}
