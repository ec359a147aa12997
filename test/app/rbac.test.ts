/**
 * RBAC against the real service (real PostgreSQL 15, local JWKS server): every role against every
 * endpoint (2xx when the role holds the endpoint's permission, else 403), the same without the
 * token's proof of MFA (the roles that need it are withheld), every kind of bad token (401), the
 * three claim mappings and their MFA claims, and the audit row each decision leaves. All over
 * HTTPS (TLS 1.3), as the deployed service serves.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_MFA_REQUIRED_ROLES, ROLE_PERMISSIONS, ROLES, type Permission, type Role } from "../../app/src/auth/roles";
import type { Domain } from "../../app/src/domain";
import { MAX_REASON } from "../../app/src/server/audit";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { passedProposal, promotedSnapshot } from "./shell/fixtures";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";
import { waitFor } from "../support/ports";
import { makeTestPki, type TestPki } from "../support/tls";

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let domain: Domain;
let pki: TestPki;
let pkiDir: string;
const fixed: { observationId: string; proposalId: string; receiptId: string; checkpointSize: number } = { observationId: "", proposalId: "", receiptId: "", checkpointSize: 0 };
const UNKNOWN = "00000000-0000-4000-8000-000000000000";

beforeAll(async () => {
  pkiDir = mkdtempSync(join(tmpdir(), "knhk-rbac-tls-"));
  [pg, oidc, pki] = await Promise.all([startPostgres(), startOidc(), makeTestPki(pkiDir, { dns: ["localhost"], ips: ["127.0.0.1"] })]);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_RATE_LIMIT_MAX: "100000", KNHK_TLS_CERT_FILE: pki.certFile, KNHK_TLS_KEY_FILE: pki.keyFile }, { ca: pki.caPem });
  expect(svc.service.apiUrl).toMatch(/^https:\/\//);
  domain = svc.service.domain;
  const observation = await domain.observations.create({ event_type: "rbac.seed", sector: "finance", value: 1 });
  fixed.observationId = observation.id;
  fixed.proposalId = (await passedProposal(domain)).id;
  const receipts = await svc.api("/api/v1/receipts?limit=1", { token: await oidc.roleToken("administrator") });
  fixed.receiptId = receipts.body.items[0].id;
  // The service signs the log's first checkpoint once its tree covers the first receipts.
  await waitFor("the receipt log's first checkpoint", async () => (await svc.api("/api/v1/receipts/checkpoint", { token: await oidc.roleToken("administrator") })).status === 200, 30_000, 100);
  const note = (await svc.api("/api/v1/receipts/checkpoint", { token: await oidc.roleToken("administrator") })).body as string;
  fixed.checkpointSize = Number(String(note).split("\n")[1]);
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
  if (pkiDir) rmSync(pkiDir, { recursive: true, force: true });
});

interface Endpoint {
  readonly method: "GET" | "POST";
  readonly permission: Permission;
  /** Path and body for a call that succeeds when permitted (fixtures made on demand). */
  request(allowed: boolean): Promise<{ path: string; json?: unknown }>;
}

const ENDPOINTS: Record<string, Endpoint> = {
  "GET /observations": { method: "GET", permission: "READ_OBSERVATIONS", request: async () => ({ path: "/observations?limit=5" }) },
  "GET /observations/:id": { method: "GET", permission: "READ_OBSERVATIONS", request: async () => ({ path: `/observations/${fixed.observationId}` }) },
  "POST /observations": {
    method: "POST",
    permission: "INGEST_OBSERVATIONS",
    request: async () => ({ path: "/observations", json: { event_type: "rbac.ingest", value: 42, sector: "logistics", metadata: { site: "a" } } }),
  },
  "POST /observations/batch": {
    method: "POST",
    permission: "INGEST_OBSERVATIONS",
    request: async () => ({ path: "/observations/batch", json: { items: [{ event_type: "rbac.batch", value: 1, sector: "finance" }, { event_type: "rbac.batch", value: 2, sector: "finance" }] } }),
  },
  "GET /observations/:id/proof": { method: "GET", permission: "READ_OBSERVATIONS", request: async () => ({ path: `/observations/${fixed.observationId}/proof` }) },
  "GET /snapshots": { method: "GET", permission: "READ_SNAPSHOTS", request: async () => ({ path: "/snapshots" }) },
  "GET /snapshots/current": { method: "GET", permission: "READ_SNAPSHOTS", request: async () => ({ path: "/snapshots/current" }) },
  "GET /snapshots/:id": { method: "GET", permission: "READ_SNAPSHOTS", request: async () => ({ path: `/snapshots/${(await domain.snapshots.current()).id}` }) },
  "POST /snapshots/:id/promote": {
    method: "POST",
    permission: "PROMOTE_SNAPSHOTS",
    request: async (allowed) => ({ path: `/snapshots/${allowed ? (await passedProposal(domain)).snapshot_id : UNKNOWN}/promote` }),
  },
  "POST /snapshots/rollback": {
    method: "POST",
    permission: "ROLLBACK_SNAPSHOTS",
    request: async (allowed) => {
      if (allowed) await promotedSnapshot(domain);
      return { path: "/snapshots/rollback" };
    },
  },
  "GET /patterns": { method: "GET", permission: "READ_PATTERNS", request: async () => ({ path: "/patterns?kind=high_frequency" }) },
  "POST /patterns/detect": { method: "POST", permission: "DETECT_PATTERNS", request: async () => ({ path: "/patterns/detect", json: { window_seconds: 120 } }) },
  "POST /analytics/run": { method: "POST", permission: "RUN_ANALYTICS", request: async () => ({ path: "/analytics/run", json: {} }) },
  "POST /proposals/generate": { method: "POST", permission: "GENERATE_PROPOSALS", request: async () => ({ path: "/proposals/generate", json: {} }) },
  "GET /proposals/:id": { method: "GET", permission: "READ_PROPOSALS", request: async () => ({ path: `/proposals/${fixed.proposalId}` }) },
  "POST /proposals/:id/validate": {
    method: "POST",
    permission: "VALIDATE_PROPOSALS",
    request: async (allowed) => ({ path: `/proposals/${allowed ? (await passedProposal(domain)).id : UNKNOWN}/validate`, json: { timeout_ms: 10_000 } }),
  },
  "GET /proposals/:id/validation-report": {
    method: "GET",
    permission: "VIEW_VALIDATION_REPORTS",
    request: async () => ({ path: `/proposals/${fixed.proposalId}/validation-report` }),
  },
  "POST /mape-k/execute": { method: "POST", permission: "EXECUTE_MAPE_K", request: async () => ({ path: "/mape-k/execute" }) },
  "GET /receipts": { method: "GET", permission: "READ_RECEIPTS", request: async () => ({ path: "/receipts?limit=10" }) },
  "GET /receipts/:id": { method: "GET", permission: "READ_RECEIPTS", request: async () => ({ path: `/receipts/${fixed.receiptId}` }) },
  "POST /receipts/verify": { method: "POST", permission: "VERIFY_RECEIPTS", request: async () => ({ path: "/receipts/verify", json: {} }) },
  "GET /receipts/checkpoint": { method: "GET", permission: "READ_RECEIPTS", request: async () => ({ path: "/receipts/checkpoint" }) },
  "GET /receipts/:id/proof": { method: "GET", permission: "READ_RECEIPTS", request: async () => ({ path: `/receipts/${fixed.receiptId}/proof` }) },
  "GET /receipts/consistency": { method: "GET", permission: "READ_RECEIPTS", request: async () => ({ path: `/receipts/consistency?from=${fixed.checkpointSize}&to=${fixed.checkpointSize}` }) },
  "GET /receipts/tile/*": { method: "GET", permission: "READ_RECEIPTS", request: async () => ({ path: "/receipts/tile/0/000.p/1" }) },
};

const MATRIX: [Role, string][] = ROLES.flatMap((role) => Object.keys(ENDPOINTS).map((name) => [role, name] as [Role, string]));

describe("role x endpoint matrix", () => {
  test.each(MATRIX)("%s -> %s", async (role, name) => {
    const endpoint = ENDPOINTS[name];
    const allowed = ROLE_PERMISSIONS[role].includes(endpoint.permission);
    const { path, json } = await endpoint.request(allowed);
    const response = await svc.api(`/api/v1${path}`, { method: endpoint.method, token: await oidc.roleToken(role), json });
    if (allowed) {
      expect({ name, status: response.status, body: response.status >= 300 ? response.body : "ok" }).toEqual({ name, status: expect.any(Number), body: "ok" });
      expect(response.status).toBeGreaterThanOrEqual(200);
      expect(response.status).toBeLessThan(300);
    } else {
      expect(response.status).toBe(403);
      expect(response.body).toMatchObject({ error: "forbidden", permission: endpoint.permission });
    }
  });

  test.each(MATRIX)("%s without MFA -> %s", async (role, name) => {
    const endpoint = ENDPOINTS[name];
    const needsMfa = DEFAULT_MFA_REQUIRED_ROLES.includes(role);
    const holds = ROLE_PERMISSIONS[role].includes(endpoint.permission);
    const allowed = holds && !needsMfa;
    const { path, json } = await endpoint.request(allowed);
    const subject = `no-mfa-${role}`;
    const response = await svc.api(`/api/v1${path}`, { method: endpoint.method, token: await oidc.roleToken(role, subject, "okta", false), json });
    if (allowed) {
      expect({ name, status: response.status, body: response.status >= 300 ? response.body : "ok" }).toEqual({ name, status: expect.any(Number), body: "ok" });
      expect(response.status).toBeLessThan(300);
      return;
    }
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ error: "forbidden", permission: endpoint.permission });
    if (!holds) {
      expect(response.body.message).not.toMatch(/multi-factor/);
      return;
    }
    expect(response.body.message).toBe(
      `roles [] lack ${endpoint.permission}; roles [${role}] would grant it but need multi-factor authentication (amr with one of [mfa] or acr one of [urn:okta:loa:2fa:any, phr, phrh]; the token has no amr claim, no acr claim)`,
    );
    const audited = await pg.psql(
      `SELECT outcome || '|' || (details->>'reason') FROM audit_log WHERE action = 'authz.decision' AND actor = 'okta:${subject}' AND details->>'permission' = '${endpoint.permission}' ORDER BY id DESC LIMIT 1`,
      svc.database,
    );
    expect(audited.trim()).toBe(`deny_forbidden|${response.body.message}`);
  });

  test("every endpoint is in the matrix, and the matrix covers each permission someone holds", () => {
    const routes = Object.keys(ENDPOINTS);
    expect(routes).toHaveLength(25);
    const used = new Set(Object.values(ENDPOINTS).map((e) => e.permission));
    for (const role of ROLES) for (const p of ROLE_PERMISSIONS[role]) expect(used).toContain(p);
  });

  test("a forbidden and an allowed decision are in audit_log with actor, route, permission and outcome", async () => {
    await svc.api("/api/v1/mape-k/execute", { method: "POST", token: await oidc.roleToken("observer", "audit-probe-observer") });
    await svc.api("/api/v1/observations?limit=1", { token: await oidc.roleToken("observer", "audit-probe-observer") });
    const rows = await pg.psql(
      "SELECT outcome || '|' || target || '|' || (details->>'permission') FROM audit_log WHERE action = 'authz.decision' AND actor LIKE '%audit-probe-observer' ORDER BY id",
      svc.database,
    );
    expect(rows.trim().split("\n")).toEqual([
      "deny_forbidden|POST /api/v1/mape-k/execute|EXECUTE_MAPE_K",
      "allow|GET /api/v1/observations|READ_OBSERVATIONS",
    ]);
  });
});

describe("tokens that must be refused with 401", () => {
  const path = "/api/v1/observations?limit=1";
  const refused = async (token: string | undefined, reason: RegExp) => {
    const before = Number(await pg.psql("SELECT count(*) FROM audit_log WHERE outcome = 'deny_unauthenticated'", svc.database));
    const response = await svc.api(path, { token });
    expect(response.status).toBe(401);
    expect(response.body.message).toMatch(reason);
    expect(response.headers.get("www-authenticate")).toContain("Bearer");
    const after = Number(await pg.psql("SELECT count(*) FROM audit_log WHERE outcome = 'deny_unauthenticated'", svc.database));
    expect(after).toBe(before + 1);
  };

  test("a valid token passes (control)", async () => {
    expect((await svc.api(path, { token: await oidc.roleToken("observer") })).status).toBe(200);
  });
  test("no token", () => refused(undefined, /missing bearer token/));
  test("expired beyond the 60 s leeway", async () => refused(await oidc.token("okta", { expiresIn: -120, issuedAgo: 600, claims: { groups: ["knhk-admins"] } }), /expired/));
  test("expired within the leeway is still accepted", async () => {
    const token = await oidc.token("okta", { expiresIn: -30, issuedAgo: 600, claims: { groups: ["knhk-admins"] } });
    expect((await svc.api(path, { token })).status).toBe(200);
  });
  test("not yet valid (nbf in the future)", async () => refused(await oidc.token("okta", { notBeforeIn: 600, claims: { groups: ["knhk-admins"] } }), /not yet valid/));
  test("older than the 3600 s maximum token age", async () => refused(await oidc.token("okta", { issuedAgo: 4000, expiresIn: 600, claims: { groups: ["knhk-admins"] } }), /too old/));
  test("without exp", async () => refused(await oidc.token("okta", { omitExp: true, claims: { groups: ["knhk-admins"] } }), /exp/));
  test("unknown issuer", async () => refused(await oidc.token("okta", { issuer: "https://evil.example.com/oauth2/default", claims: { groups: ["knhk-admins"] } }), /unknown issuer/));
  test("wrong audience", async () => refused(await oidc.token("okta", { audience: "some-other-api", claims: { groups: ["knhk-admins"] } }), /aud/));
  test("alg none", async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64({ alg: "none", typ: "JWT" })}.${b64({ iss: oidc.issuer("okta"), aud: "knhk-api", sub: "x", groups: ["knhk-admins"], iat: now, exp: now + 600 })}.`;
    await refused(token, /algorithm/);
  });
  test("HS256 signed with the public key as secret (algorithm confusion)", async () => {
    const { SignJWT } = await import("jose");
    const token = await new SignJWT({ groups: ["knhk-admins"] })
      .setProtectedHeader({ alg: "HS256", kid: "okta-key-1" })
      .setIssuer(oidc.issuer("okta"))
      .setAudience("knhk-api")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("public-key-material-used-as-an-hmac-secret"));
    await refused(token, /algorithm HS256 not allowed/);
  });
  test("tampered signature", async () => {
    const token = await oidc.token("okta", { claims: { groups: ["knhk-admins"] } });
    const [h, p, s] = token.split(".");
    const flipped = (s[10] === "A" ? "B" : "A") + s.slice(11);
    await refused(`${h}.${p}.${s.slice(0, 10)}${flipped}`, /signature invalid/);
  });
  test("tampered payload (groups raised to admin) with the original signature", async () => {
    const token = await oidc.token("okta", { claims: { groups: ["knhk-observers"] } });
    const [h, , s] = token.split(".");
    const now = Math.floor(Date.now() / 1000);
    const forged = Buffer.from(JSON.stringify({ sub: "user-1", groups: ["knhk-admins"], iss: oidc.issuer("okta"), aud: "knhk-api", iat: now, exp: now + 600 })).toString("base64url");
    await refused(`${h}.${forged}.${s}`, /signature invalid/);
  });
  test("signed by a key the issuer does not publish (unknown kid)", async () => refused(await oidc.token("okta", { foreignKey: true, claims: { groups: ["knhk-admins"] } }), /signing key not found/));
  test("right kid, wrong key", async () => refused(await oidc.token("okta", { foreignKey: true, kid: "okta-key-1", claims: { groups: ["knhk-admins"] } }), /signature invalid/));
  test("garbage in the Authorization header", () => refused("not-a-jwt", /malformed/));

  /** Claims as JSON text (numbers JSON.stringify cannot write), `claims` given the current time in seconds. */
  const rawPayload = (claims: (now: number) => string) =>
    `{"iss":${JSON.stringify(oidc.issuer("okta"))},"aud":"knhk-api","sub":"time-attacker","groups":["knhk-admins"],"amr":["mfa"],${claims(Math.floor(Date.now() / 1000))}}`;
  test("the raw-signing helper makes acceptable tokens (control)", async () => {
    const token = await oidc.signRaw("okta", rawPayload((now) => `"iat":${now},"exp":${now + 600}`));
    expect((await svc.api(path, { token })).status).toBe(200);
  });
  test.each<[string, (now: number) => string, RegExp]>([
    ["exp of 1e309 (Infinity: a token that never expires)", (now) => `"iat":${now},"exp":1e309`, /exp must be an integer/],
    ["exp that is not an integer", (now) => `"iat":${now},"exp":${now + 600}.5`, /exp must be an integer/],
    ["exp beyond the safe integers", (now) => `"iat":${now},"exp":123456789012345678901234567890`, /exp must be an integer/],
    ["nbf of 1e309", (now) => `"iat":${now},"exp":${now + 600},"nbf":1e309`, /nbf must be an integer/],
    ["iat of -1e309", (now) => `"iat":-1e309,"exp":${now + 600}`, /iat must be an integer/],
])("%s", async (_name, claims, reason) => refused(await oidc.signRaw("okta", rawPayload(claims)), reason));
});

describe("the Authorization header itself", () => {
  const path = "/api/v1/observations?limit=1";
  /** A request with exactly these Authorization header lines (fetch would merge two into one). */
  const withAuthorization = (values: string[]) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const url = new URL(`${svc.service.apiUrl}${path}`);
      // Raw header lines (name, value, ...): Node adds no Host header to this form.
      const headers = ["host", url.host, ...values.flatMap((value) => ["authorization", value])];
      const request = httpsRequest(url, { headers, ca: pki.caPem }, (response) => {
        let text = "";
        response.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
        response.on("end", () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) });
          } catch (error) {
            reject(new Error(`status ${response.statusCode}, body not JSON: ${JSON.stringify(text)} (${error})`));
          }
        });
      });
      request.on("error", reject).end();
    });
  const denials = async () => Number(await pg.psql("SELECT count(*) FROM audit_log WHERE outcome = 'deny_unauthenticated'", svc.database));

  test.each(["bearer", "BEARER", "BeArEr"])("the scheme is case-insensitive: %s <token> is accepted", async (scheme) => {
    const token = await oidc.roleToken("observer");
    expect((await withAuthorization([`${scheme} ${token}`])).status).toBe(200);
  });
  test("two Authorization headers are refused with 401 and audited, even when both are valid", async () => {
    const before = await denials();
    const [a, b] = [await oidc.roleToken("observer", "first"), await oidc.roleToken("administrator", "second")];
    const response = await withAuthorization([`Bearer ${a}`, `Bearer ${b}`]);
    expect(response.status).toBe(401);
    expect(response.body.message).toMatch(/more than one Authorization header/);
    expect(await denials()).toBe(before + 1);
  });
  test("one valid header and one garbage header are refused too", async () => {
    const token = await oidc.roleToken("administrator");
    expect((await withAuthorization([`Bearer ${token}`, "Bearer x"])).status).toBe(401);
    expect((await withAuthorization(["Bearer x", `Bearer ${token}`])).status).toBe(401);
  });
  test("a scheme other than Bearer is refused", async () => {
    const token = await oidc.roleToken("administrator");
    expect((await withAuthorization([`Basic ${token}`])).status).toBe(401);
    expect((await withAuthorization([`Bearer${token}`])).status).toBe(401);
  });
});

describe("each provider's proof of MFA", () => {
  const promote = "/api/v1/mape-k/execute";
  const status = async (provider: "okta" | "azure" | "keycloak", claims: Record<string, unknown>) =>
    (await svc.api(promote, { method: "POST", token: await oidc.token(provider, { mfa: false, audience: "knhk-admin", claims: { sub: "mfa-probe", oid: "mfa-probe", ...claims } }) })).status;
  const operator = { okta: { groups: ["knhk-operators"] }, azure: { roles: ["knhk-operators"] }, keycloak: { realm_access: { roles: ["knhk-operators"] } } } as const;

  test.each<["okta" | "azure" | "keycloak", Record<string, unknown>, number]>([
    ["okta", { amr: ["pwd", "mfa"] }, 200],
    ["okta", { acr: "urn:okta:loa:2fa:any" }, 200],
    ["okta", { acr: "phrh" }, 200],
    ["okta", { amr: ["pwd"], acr: "urn:okta:loa:2fa:any:ifpossible" }, 403],
    ["okta", { amr: "mfa" }, 403],
    ["azure", { amr: ["rsa", "mfa"] }, 200],
    ["azure", { amr: ["ngcmfa"] }, 200],
    ["azure", { amr: ["wiaormfa"] }, 403],
    ["azure", { amr: ["pwd"] }, 403],
    ["keycloak", { acr: "2" }, 200],
    ["keycloak", { amr: ["pwd", "otp"] }, 200],
    ["keycloak", { acr: "1" }, 403],
    ["keycloak", { acr: 2 }, 403],
  ])("%s %j -> %d", async (provider, claims, expected) => {
    expect(await status(provider, { ...operator[provider], ...claims })).toBe(expected);
  });

  test("without MFA an operator who is also an observer keeps the observer's reads, not the operator's writes", async () => {
    const token = await oidc.token("okta", { mfa: false, claims: { sub: "two-roles", groups: ["knhk-operators", "knhk-observers"] } });
    expect((await svc.api("/api/v1/snapshots", { token })).status).toBe(200);
    const refused = await svc.api(promote, { method: "POST", token });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/^roles \[observer\] lack EXECUTE_MAPE_K; roles \[operator\] would grant it but need multi-factor authentication/);
  });

  test("a hostile amr is quoted back bounded, never echoed whole", async () => {
    const long = "x".repeat(5000);
    const token = await oidc.token("okta", { mfa: false, claims: { sub: "hostile-amr", groups: ["knhk-admins"], amr: [long, 7, ...Array.from({ length: 100 }, (_, i) => `m${i}`)] } });
    const response = await svc.api("/api/v1/observations", { token });
    expect(response.status).toBe(403);
    expect(response.body.message).toContain(`amr ["${"x".repeat(24)}...", (not a string), "m0", "m1", "m2", "m3", ...]`);
    expect(response.body.message.length).toBeLessThanOrEqual(MAX_REASON);
    const audited = await pg.psql("SELECT details->>'reason' FROM audit_log WHERE actor = 'okta:hostile-amr' ORDER BY id DESC LIMIT 1", svc.database);
    expect(audited.trim()).toBe(response.body.message);
  });
});

describe("claim mappings", () => {
  test("Azure AD: roles claim grants the role; the audit actor is the oid", async () => {
    const token = await oidc.token("azure", { audience: "knhk-admin", claims: { sub: "pairwise-sub", oid: "azure-oid-7", roles: ["knhk-operators"] } });
    expect((await svc.api("/api/v1/mape-k/execute", { method: "POST", token })).status).toBe(200);
    const actor = await pg.psql("SELECT actor FROM audit_log WHERE outcome = 'allow' AND target = 'POST /api/v1/mape-k/execute' ORDER BY id DESC LIMIT 1", svc.database);
    expect(actor.trim()).toBe("azure:azure-oid-7");
  });
  test("Azure AD: group object ids in `groups` grant nothing", async () => {
    const token = await oidc.token("azure", { claims: { oid: "azure-oid-8", groups: ["knhk-admins"] } });
    expect((await svc.api("/api/v1/observations", { token })).status).toBe(403);
  });
  test("Keycloak: realm_access.roles and full-path groups both map", async () => {
    const validator = await oidc.token("keycloak", { audience: "knhk-cli", claims: { realm_access: { roles: ["knhk-validators", "offline_access"] } } });
    expect((await svc.api(`/api/v1/proposals/${fixed.proposalId}/validation-report`, { token: validator })).status).toBe(200);
    const ingestor = await oidc.token("keycloak", { claims: { groups: ["/knhk-ingestors"] } });
    const created = await svc.api("/api/v1/observations", { method: "POST", token: ingestor, json: { event_type: "kc.ingest", value: "x", sector: "generic" } });
    expect(created.status).toBe(201);
    expect(created.body.id).toEqual(expect.any(String));
  });
  test("Okta: a token with no known group is authenticated but may do nothing", async () => {
    const token = await oidc.token("okta", { claims: { groups: ["everyone"] } });
    const response = await svc.api("/api/v1/observations", { token });
    expect(response.status).toBe(403);
    expect(response.body.message).toContain("lack READ_OBSERVATIONS");
  });
  test("a token from one provider's issuer signed by another provider's key is refused", async () => {
    const token = await oidc.token("keycloak", { issuer: oidc.issuer("okta"), claims: { groups: ["knhk-admins"] } });
    expect((await svc.api("/api/v1/observations", { token })).status).toBe(401);
  });
});
