/** The audit log against PostgreSQL 15: appends, validation, append-only enforcement, `audit log` CLI. */
import { AuditInputError, appendAudit, appendAuditBatch, createAuditWriter, listAudit } from "../../app/src/audit";
import { run } from "../../app/src/cli/audit";
import type { CliContext } from "../../app/src/cli/context";
import type { Sql } from "../../app/src/db/types";
import { capturedStreams } from "../support/streams";
import { startLedgerPostgres, type LedgerPostgres } from "./receipts-support";

jest.setTimeout(120_000);
let env: LedgerPostgres;

beforeAll(async () => {
  env = await startLedgerPostgres();
});
afterAll(async () => {
  await env?.close();
});

function cli(): { ctx: CliContext; out: () => string; err: () => string } {
  const { stdout, stderr, out, err } = capturedStreams();
  return { ctx: { db: env.service, env: {}, stdout, stderr }, out, err };
}

test("an authorization decision is stored as given", async () => {
  const record = await appendAudit(env.service, {
    actor: "alice@example.com",
    action: "authz.decision",
    target: "POST /api/v1/proposals",
    outcome: "deny_forbidden",
    details: { permission: "proposals:create", roles: ["observer"] },
  });
  expect(record).toMatchObject({ actor: "alice@example.com", outcome: "deny_forbidden", details: { roles: ["observer"] } });
  const listed = await listAudit(env.service, { actor: "alice@example.com" });
  expect(listed).toEqual([record]);
});

test("a batch is stored in one statement; one bad event rejects the whole batch naming its index and field", async () => {
  const before = (await listAudit(env.service, { limit: 1000 })).length;
  expect(
    await appendAuditBatch(env.service, [
      { actor: "a", action: "authz.decision", target: "GET /x", outcome: "allow" },
      { actor: "b", action: "authz.decision", target: "GET /y", outcome: "deny_unauthenticated" },
    ]),
  ).toBe(2);
  await expect(
    appendAuditBatch(env.service, [
      { actor: "a", action: "authz.decision", target: "GET /x" },
      { actor: "", action: "authz.decision", target: "GET /x" },
    ]),
  ).rejects.toThrow(/^events\[1\]\.actor: must be a non-empty string/);
  expect((await listAudit(env.service, { limit: 1000 })).length).toBe(before + 2);
});

test("the audit writer group-commits concurrent events; each promise resolves once its event is stored", async () => {
  const batches: number[] = [];
  // Counts the rows of each INSERT the writer issues (a spy on the real database).
  const db: Sql = {
    query<R>(text: string, params?: readonly unknown[]) {
      if (text.startsWith("INSERT")) batches.push((params?.[0] as unknown[]).length);
      return env.service.query<R>(text, params);
    },
    exec: (text: string) => env.service.exec(text),
  };
  const writer = createAuditWriter({ db });
  const stored = await Promise.all(
    Array.from({ length: 400 }, (_, i) =>
      writer.record({ actor: `user-${i}`, action: "authz.decision", target: "GET /api/v1/snapshots/x", outcome: "allow" }).then(async () => {
        const rows = await env.owner.query("SELECT 1 FROM audit_log WHERE actor = $1", [`user-${i}`]);
        return rows.rowCount;
      }),
    ),
  );
  expect(stored.every((n) => n === 1)).toBe(true);
  expect(batches.reduce((a, b) => a + b, 0)).toBe(400);
  expect(batches.length).toBeLessThan(400);
  expect(() => writer.record({ actor: "x", action: "NOT VALID", target: "t" })).toThrow(AuditInputError);
  await writer.close();
});

test.each([
  [{ actor: "", action: "a.b", target: "t" }, "actor"],
  [{ actor: "x", action: "Deploy Start", target: "t" }, "action"],
  [{ actor: "x", action: "a.b", target: "t\u0000" }, "target"],
  [{ actor: "x", action: "a.b", target: "t", outcome: "OK" }, "outcome"],
  [{ actor: "x", action: "a.b", target: "t", details: [1] }, "details"],
  [{ actor: "x", action: "a.b", target: "t", details: { s: "nul\u0000" } }, "details"],
  [{ actor: "x", action: "a.b", target: "t", details: { big: "x".repeat(20_000) } }, "details"],
  [{ actor: "lone\ud800", action: "a.b", target: "t" }, "actor"],
  [{ actor: "x", action: "a.b", target: "t\udc00" }, "target"],
  [{ actor: "x", action: "a.b", target: "t", details: { reason: "lone \ud83d" } }, "details"],
  [{ actor: "x", action: "a.b", target: "t", details: { nested: [{ "key\udfff": 1 }] } }, "details"],
  [{ actor: "x", action: "a.b", target: "t", details: { "k\u0000": 1 } }, "details"],
])("bad event %# names %s", async (event, field) => {
  const error = await appendAudit(env.service, event as never).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AuditInputError);
  expect((error as AuditInputError).field).toBe(field);
});

test("details that only look like escapes (a backslash then u0000, a paired surrogate) are stored verbatim", async () => {
  const details = { text: "\\u0000 and \\ud800", emoji: "\ud83d\ude00" };
  const record = await appendAudit(env.service, { actor: "escapes", action: "a.b", target: "t", details });
  expect(record.details).toEqual(details);
});

test("the audit writer stores every event of a batch that one event (bypassing validation) poisons", async () => {
  // A NUL in jsonb fails a whole multi-row INSERT in PostgreSQL (22P05); the writer must store the
  // rest without it. Validation would refuse such an event first, so this spy smuggles the NUL
  // into one event's details wherever it is written: the group commit's isolation is under test.
  const poisoned = "isolated-7";
  const insertSizes: number[] = [];
  const db: Sql = {
    query<R>(text: string, params?: readonly unknown[]) {
      if (!text.startsWith("INSERT") || !params) return env.service.query<R>(text, params);
      const actors = params[0] as string[];
      insertSizes.push(actors.length);
      const details = (params[4] as string[]).map((d, i) => (actors[i] === poisoned ? '{"reason":"\\u0000"}' : d));
      return env.service.query<R>(text, [params[0], params[1], params[2], params[3], details]);
    },
    exec: (text: string) => env.service.exec(text),
  };
  const writer = createAuditWriter({ db });
  const actors = Array.from({ length: 20 }, (_, i) => `isolated-${i}`);
  const outcomes = await Promise.allSettled(actors.map((actor) => writer.record({ actor, action: "authz.decision", target: "GET /x", outcome: "allow" })));
  await writer.close();
  expect(Math.max(...insertSizes)).toBeGreaterThan(1);
  const rejected = outcomes.flatMap((o, i) => (o.status === "rejected" ? [actors[i]] : []));
  expect(rejected).toEqual([poisoned]);
  const { rows } = await env.owner.query<{ actor: string }>("SELECT actor FROM audit_log WHERE actor LIKE 'isolated-%'");
  expect(rows.map((r) => r.actor).sort()).toEqual(actors.filter((a) => a !== poisoned).sort());
});

test.each([
  ["UPDATE", "UPDATE audit_log SET actor = 'mallory'", /permission denied/],
  ["DELETE", "DELETE FROM audit_log", /permission denied/],
  ["TRUNCATE", "TRUNCATE audit_log", /permission denied/],
])("%s as the service role is refused", async (_op, sql, message) => {
  await expect(env.service.query(sql)).rejects.toThrow(message);
});

test.each(["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", "TRUNCATE audit_log"])(
  "%s as the owner is stopped by the trigger",
  async (sql) => {
    await expect(env.owner.query(sql)).rejects.toThrow(/table audit_log is append-only/);
    expect((await listAudit(env.owner, { actor: "mallory" })).length).toBe(0);
  },
);

describe("knhk audit log", () => {
  test("appends the event and prints it", async () => {
    const c = cli();
    const code = await run(
      ["log", "--actor", "deploy-script", "--action", "deploy.start", "--target", "prod", "--outcome", "success", "--details", '{"version":"1.2.3"}'],
      c.ctx,
    );
    expect({ code, err: c.err() }).toEqual({ code: 0, err: "" });
    const printed = JSON.parse(c.out());
    expect(printed).toMatchObject({ actor: "deploy-script", action: "deploy.start", target: "prod", details: { version: "1.2.3" } });
    expect((await listAudit(env.owner, { action: "deploy.start" })).map((r) => r.id)).toEqual([printed.id]);
  });

  test.each([
    [["log", "--action", "deploy.start", "--target", "prod"], /--actor: required/],
    [["log", "--actor", "x", "--action", "deploy.start", "--target", "prod", "--details", "{nope"], /--details: is not valid JSON/],
    [["log", "--actor", "x", "--action", "deploy.start", "--target", "prod", "--details", "[1]"], /--details: must be a JSON object/],
    [["log", "--actor", "x", "--action", "Bad Action", "--target", "prod"], /action: must be dotted lower-case words/],
    [["log", "--actor", "x", "--action", "a.b", "--target", "prod", "--color"], /Unknown option '--color'/],
    [["frobnicate"], /unknown command "frobnicate"/],
  ])("bad usage %# exits 2 naming the problem", async (args, message) => {
    const c = cli();
    expect(await run(args, c.ctx)).toBe(2);
    expect(c.err()).toMatch(message);
    expect(c.out()).toBe("");
  });
});
