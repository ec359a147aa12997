/**
 * The real service signing receipts the way the prod pod does (issue 17, defect 6): through a
 * `bao agent` API proxy on loopback (auto-auth with a token that has only the rendered service
 * policy, use_auto_auth_token = "force"), so the service holds no Vault token; until the owner
 * registers a transit version (the migration Job's `register-transit-keys`) it waits, alive and
 * unready, saying so. A receipted request's receipt verifies with the keys published by Vault. With Vault sealed or the
 * agent gone, a request is a 503 naming receipt signing: an ingest stores nothing (its rows commit
 * in the receipt's own transaction, so an observation is never durable without its receipt); a
 * step that stages its receipt (detection) keeps it in the outbox, and it reaches the chain once
 * Vault is back, without a restart; a service
 * started before its agent waits for it; a rotated version shows on /metrics as unregistered
 * and signs once the owner registers it, without a restart.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate } from "../../app/src/db/migrate";
import { openDatabase } from "../../app/src/db/open";
import { startService, type RunningService } from "../../app/src/server/service";
import { startOpenBao, startOpenBaoAgent, type TestOpenBao, type TestOpenBaoAgent } from "../support/openbao";
import { freePort, waitFor } from "../support/ports";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startOidc, type TestOidc } from "./shell/oidc";
import { createServiceDatabase, grantServiceRole, TEST_SERVICE_SETTINGS } from "./shell/service";
import { enableTransit, transitKey, type TransitKeyFixture } from "./transit-support";
import { createPostgresDatabase } from "../../app/src/db/postgres";
import { run } from "../../app/src/cli/receipts";
import { capturedStreams } from "../support/streams";

jest.setTimeout(240_000);

let pg: TestPostgres;
let bao: TestOpenBao;
let oidc: TestOidc;
let agent: TestOpenBaoAgent;
let key: TransitKeyFixture;
let database: string;
let admin: string;
let service: RunningService | undefined;
const logs: string[] = [];

/** The service's signing variables: the agent's proxy, no token of its own (the agent adds it). */
function signingEnv(): Record<string, string> {
  const env = key.env({ KNHK_SIGNING_VAULT_ADDR: agent.addr, KNHK_SIGNING_VAULT_STARTUP_WAIT_SECONDS: "60", KNHK_SIGNING_VAULT_TIMEOUT_MS: "1500", KNHK_SIGNING_TRANSIT_REFRESH_SECONDS: "1" });
  delete env.KNHK_SIGNING_VAULT_TOKEN_FILE;
  return env;
}

function serviceEnv(): Record<string, string> {
  // As prod runs it: no DDL at start (the migration Job applied the schema), no owner URL.
  return { ...TEST_SERVICE_SETTINGS, DB_POOL_MAX_CONNECTIONS: "10", DATABASE_URL: pg.url(database, "knhk_app"), KNHK_MIGRATE_ON_START: "false", ...oidc.env(), ...signingEnv() };
}

async function start(extra: Record<string, string> = {}): Promise<RunningService> {
  service = await startService({ ...serviceEnv(), ...extra }, (level, message, extra) => logs.push(`${level} ${message} ${extra ? JSON.stringify(extra) : ""}`));
  return service;
}

/** `knhk receipts <args>` as the owner (the migration Job's identity and Vault token). */
async function asOwner(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const db = createPostgresDatabase({ connectionString: pg.url(database), max: 2 });
  const { stdout, stderr, out, err } = capturedStreams();
  try {
    const code = await run(args, { db, env: key.ownerEnv(), stdout, stderr });
    return { code, out: out(), err: err() };
  } finally {
    await db.close();
  }
}

const observe = async (i: number) => {
  const response = await fetch(`${service!.apiUrl}/api/v1/observations`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ event_type: "api.call", value: i, sector: "finance" }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

const detect = async () => {
  const response = await fetch(`${service!.apiUrl}/api/v1/patterns/detect`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ window_seconds: 120 }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

const counts = async () => {
  const [observations, receipts, outbox] = (
    await pg.psql("SELECT (SELECT count(*) FROM observations) || ',' || (SELECT count(*) FROM receipts) || ',' || (SELECT count(*) FROM receipt_outbox)", database)
  )
    .trim()
    .split(",")
    .map(Number);
  return { observations, receipts, outbox };
};

beforeAll(async () => {
  [pg, bao, oidc] = await Promise.all([startPostgres(), startOpenBao(), startOidc()]);
  await enableTransit(bao);
  key = await transitKey(bao);
  const agentToken = join(mkdtempSync(join(tmpdir(), "knhk-agent-")), "token");
  writeFileSync(agentToken, key.serviceToken, { mode: 0o600 });
  agent = await startOpenBaoAgent(bao, { tokenFile: agentToken });

  database = await createServiceDatabase(pg);
  const owner = await openDatabase({ url: pg.url(database), poolMax: 1, poolMin: 0 });
  await migrate(owner);
  await owner.close();
  await grantServiceRole(pg, database);
  admin = await oidc.roleToken("administrator");
});
afterAll(async () => {
  await service?.stop();
  await agent?.stop();
  await oidc?.close();
  await bao?.stop();
  await pg?.destroy();
});

test("without a registered transit version the service waits alive and unready, naming the command; once the owner registers it, it serves through the agent's proxy and its receipts verify with the keys Vault publishes", async () => {
  const port = await freePort();
  const starting = start({ KNHK_PORT: String(port) });
  const gate = `http://127.0.0.1:${port}`;
  await waitFor(
    "the start-up gate to name the missing registration",
    async () => {
      const ready = await fetch(`${gate}/ready`);
      const body = (await ready.json()) as { reason?: string };
      return ready.status === 503 && /no version of Vault transit key transit\/.* is registered in receipt_signing_keys; .*receipts register-transit-keys/.test(body.reason ?? "");
    },
    60_000,
    200,
  );
  expect((await fetch(`${gate}/health`)).status).toBe(200);

  const registered = await asOwner(["register-transit-keys"]);
  expect(registered).toMatchObject({ code: 0, out: expect.stringMatching(/version 1: registered/) });
  await starting;
  for (let i = 0; i < 5; i++) expect((await observe(i)).status).toBe(201);
  expect(await counts()).toEqual({ observations: 5, receipts: 5, outbox: 0 });
  const verified = await asOwner(["verify-chain", "--trusted-keys-from-vault"]);
  expect(verified.code).toBe(0);
  expect(verified.out).toMatch(/verified: +\d+[\s\S]*chain intact/);
  expect(Number(await pg.psql("SELECT count(*) FROM receipts WHERE key_version = 1", database))).toBeGreaterThanOrEqual(5);
});

test("Vault sealed: 503 naming receipt signing; an ingest stores nothing, a detection's receipt waits in the outbox and reaches the chain when Vault is back", async () => {
  const before = await counts();
  await bao.seal();
  try {
    const refused = await observe(100);
    expect(refused.status).toBe(503);
    // The agent retries Vault's 503 (sealed) with backoff, so through it the sign call times out.
    expect(refused.body).toMatchObject({ error: "unavailable", message: expect.stringMatching(/^receipt signing unavailable: POST \/v1\/transit\/sign\/.*: Vault at http:\/\/127\.0\.0\.1:\d+ did not answer within 1500 ms$/) });
    expect(JSON.stringify(refused.body)).not.toContain(key.serviceToken);
    // The observation commits only with its receipt: refused means not stored, the client retries.
    expect(await counts()).toEqual(before);

    const staged = await detect();
    expect(staged.status).toBe(503);
    expect(staged.body.message).toMatch(/^receipt signing unavailable: /);
    // The detection's transaction committed with its receipt staged: durable, not yet in the chain.
    expect(await counts()).toEqual({ ...before, outbox: 1 });
  } finally {
    await bao.unseal();
  }
  // The ledger retries the staged receipt by itself once Vault answers: no restart needed.
  await waitFor("the staged receipt to reach the chain", async () => (await counts()).outbox === 0, 60_000, 200);
  expect((await observe(101)).status).toBe(201);
  const after = await counts();
  expect(after).toEqual({ observations: before.observations + 1, receipts: before.receipts + 2, outbox: 0 });
  expect(Number(await pg.psql("SELECT count(*) FROM receipts WHERE operation = 'pattern.detect'", database))).toBe(1);
  expect((await asOwner(["verify-chain", "--trusted-keys-from-vault"])).code).toBe(0);
});

test("agent gone: 503 (Vault unreachable), nothing lost; a service started before its agent waits for it", async () => {
  await agent.stop();
  const before = await counts();
  const refused = await observe(200);
  expect(refused.status).toBe(503);
  expect(refused.body.message).toMatch(/receipt signing unavailable: .*is unreachable \(ECONNREFUSED\)/);
  expect(await counts()).toEqual(before);
  expect((await detect()).status).toBe(503);
  expect((await counts()).outbox).toBe(1);

  await service!.stop();
  service = undefined;
  const starting = start();
  const port = agent.port;
  const tokenFile = join(mkdtempSync(join(tmpdir(), "knhk-agent-")), "token");
  writeFileSync(tokenFile, key.serviceToken, { mode: 0o600 });
  agent = await startOpenBaoAgent(bao, { tokenFile, port });
  await starting;
  expect(logs.join("\n")).toMatch(/waiting up to 60 s for Vault transit/);
  expect((await observe(201)).status).toBe(201);
  // The stopped service's staged receipt is recovered by the new one.
  await waitFor("the recovered receipt to reach the chain", async () => (await counts()).outbox === 0, 60_000, 200);
  expect(await counts()).toEqual({ observations: before.observations + 1, receipts: before.receipts + 2, outbox: 0 });
  expect((await asOwner(["verify-chain", "--trusted-keys-from-vault"])).code).toBe(0);
});

test("rotation while serving: the new version is reported on /metrics as unregistered and not used, then signs once registered, without a restart", async () => {
  const gauge = async (name: string) => {
    const text = await (await fetch(`${service!.metricsUrl}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
  };
  expect(await gauge("knhk_receipt_signing_key_version")).toBe(1);
  expect(await gauge("knhk_receipt_signing_unregistered_key_versions")).toBe(0);
  await key.rotate();
  await waitFor("the unregistered version on /metrics", async () => (await gauge("knhk_receipt_signing_unregistered_key_versions")) === 1, 30_000, 200);
  expect(await gauge("knhk_receipt_signing_key_version")).toBe(1);
  expect((await observe(300)).status).toBe(201);
  expect((await pg.psql("SELECT key_version FROM receipts ORDER BY seq DESC LIMIT 1", database)).trim()).toBe("1");

  expect((await asOwner(["register-transit-keys"])).out).toMatch(/version 2: registered/);
  await waitFor("version 2 signing", async () => (await gauge("knhk_receipt_signing_key_version")) === 2, 30_000, 200);
  expect(await gauge("knhk_receipt_signing_unregistered_key_versions")).toBe(0);
  expect((await observe(301)).status).toBe(201);
  expect((await pg.psql("SELECT key_version FROM receipts ORDER BY seq DESC LIMIT 1", database)).trim()).toBe("2");
  expect((await asOwner(["verify-chain", "--trusted-keys-from-vault"])).code).toBe(0);
});
