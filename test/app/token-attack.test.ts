/**
 * Tokens whose unverified header or claims carry text PostgreSQL cannot store (NUL, lone UTF-16
 * surrogates), very long values and numbers JSON.stringify cannot write, sent alongside valid
 * requests at a concurrency of about 40, against the real service on PostgreSQL 15 (least-
 * privileged role). The authorization decisions of all of them share the audit writer's group
 * commit: a valid request must never fail because of another request's token, and every
 * decision, every denial included, must be in audit_log.
 */
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

jest.setTimeout(300_000);
const CONCURRENCY = 40;
const ROUNDS = 8;

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_RATE_LIMIT_MAX: "1000000" });
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
});

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");
/** JSON text written by hand: JSON.stringify would write a lone surrogate as \udXXX too, but not 1e309. */
const unsigned = (headerJson: string, payloadJson: string) => `${b64(headerJson)}.${b64(payloadJson)}.c2lnbmF0dXJl`;

interface Attack {
  readonly name: string;
  readonly token: () => Promise<string>;
  /** The status the attacker gets: 401 for every refused token; a signed token with odd text in its subject is a valid token. */
  readonly status: number;
}

const ATTACKS: Attack[] = [
  { name: "issuer with a lone surrogate and a NUL", status: 401, token: async () => unsigned('{"alg":"RS256"}', '{"iss":"\\ud800evil\\u0000","sub":"x"}') },
  { name: "issuer that is a lone low surrogate", status: 401, token: async () => unsigned('{"alg":"ES256"}', '{"iss":"\\udc00"}') },
  // 5,000 characters, 10,000 as JSON escapes: just inside the 16 KB token limit, so it reaches the issuer check.
  { name: "issuer of 5,000 characters, 1,000 of them lone surrogates", status: 401, token: async () => unsigned('{"alg":"RS256"}', JSON.stringify({ iss: "\ud800".repeat(1000) + "x".repeat(4000) })) },
  { name: "issuer that is an object holding a NUL", status: 401, token: async () => unsigned('{"alg":"RS256"}', '{"iss":{"\\u0000":"\\ud800"}}') },
  { name: "algorithm that is a NUL", status: 401, token: async () => unsigned('{"alg":"\\u0000"}', '{"iss":"x"}') },
  { name: "algorithm that is a lone surrogate", status: 401, token: async () => unsigned('{"alg":"\\udbff"}', '{"iss":"x"}') },
  { name: "kid with a lone surrogate, known issuer", status: 401, token: async () => unsigned('{"alg":"RS256","kid":"\\ud800\\u0000"}', JSON.stringify({ iss: oidc.issuer("okta"), sub: "x", aud: "knhk-api", iat: 1, exp: 9_999_999_999 })) },
  {
    name: "critical header naming a lone surrogate (jose quotes it in its error)",
    status: 401,
    token: () => oidc.signRaw("okta", JSON.stringify({ iss: oidc.issuer("okta"), sub: "x", aud: "knhk-api", iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 }), { crit: ["\ud800\u0000"], "\ud800\u0000": 1 }),
  },
  {
    name: "signed token with exp 1e309",
    status: 401,
    token: () => oidc.signRaw("okta", `{"iss":${JSON.stringify(oidc.issuer("okta"))},"sub":"\\ud800","aud":"knhk-api","iat":${Math.floor(Date.now() / 1000)},"exp":1e309,"groups":["knhk-admins"]}`),
  },
  {
    name: "validly signed token whose subject holds a NUL and a lone surrogate (allowed, audited with escapes)",
    status: 200,
    token: () => oidc.token("okta", { claims: { sub: "mallory\u0000\udfff\ud800", groups: ["knhk-observers"] } }),
  },
  { name: "not base64url JSON at all", status: 401, token: async () => `${b64("\u0000")}.${b64("\ud800")}.x` },
];

const countAudit = async (outcome: string) => Number(await pg.psql(`SELECT count(*) FROM audit_log WHERE action = 'authz.decision' AND outcome = '${outcome}'`, svc.database));

test("each hostile token alone gets its status and is audited (control for the concurrent run)", async () => {
  for (const attack of ATTACKS) {
    const outcome = attack.status === 200 ? "allow" : "deny_unauthenticated";
    const before = await countAudit(outcome);
    const response = await svc.api("/api/v1/observations?limit=1", { token: await attack.token() });
    expect({ attack: attack.name, status: response.status }).toEqual({ attack: attack.name, status: attack.status });
    expect({ attack: attack.name, audited: (await countAudit(outcome)) - before }).toEqual({ attack: attack.name, audited: 1 });
  }
});

test("at concurrency 40, hostile tokens never make a valid request fail, and every decision is audited", async () => {
  const ingestor = await oidc.roleToken("ingestor", "ingest-bot");
  const observer = await oidc.roleToken("observer", "watcher");
  const attackTokens = await Promise.all(ATTACKS.map(async (a) => ({ ...a, value: await a.token() })));
  const [deniedBefore, allowedBefore] = [await countAudit("deny_unauthenticated"), await countAudit("allow")];

  const valid: { status: number; body: unknown }[] = [];
  const hostile: { name: string; expected: number; status: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // One hostile request in four, interleaved, all in flight together.
    const requests = Array.from({ length: CONCURRENCY }, async (_, i) => {
      if (i % 4 === 1) {
        const attack = attackTokens[(round * CONCURRENCY + i) % attackTokens.length];
        const response = await svc.api("/api/v1/observations?limit=1", { token: attack.value });
        hostile.push({ name: attack.name, expected: attack.status, status: response.status });
        return;
      }
      const response =
        i % 2 === 0
          ? await svc.api("/api/v1/observations", { method: "POST", token: ingestor, json: { event_type: "attack.ingest", sector: "generic", value: round * CONCURRENCY + i } })
          : await svc.api("/api/v1/observations?limit=1", { token: observer });
      valid.push({ status: response.status, body: response.status >= 300 ? response.body : undefined });
    });
    await Promise.all(requests);
  }

  expect(valid.filter((v) => v.status >= 300)).toEqual([]);
  expect(valid.length).toBe((ROUNDS * CONCURRENCY * 3) / 4);
  expect(hostile.filter((h) => h.status !== h.expected)).toEqual([]);
  const hostileAllowed = hostile.filter((h) => h.expected === 200).length;
  expect((await countAudit("deny_unauthenticated")) - deniedBefore).toBe(hostile.length - hostileAllowed);
  expect((await countAudit("allow")) - allowedBefore).toBe(valid.length + hostileAllowed);
});

test("the escaped attacker text is what audit_log shows", async () => {
  const actors = await pg.psql("SELECT DISTINCT actor FROM audit_log WHERE actor LIKE '%mallory%'", svc.database);
  expect(actors.trim()).toBe("okta:mallory\\u0000\\udfff\\ud800");
  const reasons = await pg.psql("SELECT details ->> 'reason' FROM audit_log WHERE details ->> 'reason' LIKE 'unknown issuer%evil%' LIMIT 1", svc.database);
  expect(reasons.trim()).toBe("unknown issuer \\ud800evil\\u0000");
});
