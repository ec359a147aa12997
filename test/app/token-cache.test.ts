/**
 * The verified-token cache: a reused token skips the signature check, but never outlives its
 * exp, its max age or the cache's own bound, and no altered token ever hits it.
 */
import fc from "fast-check";
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTVerifyGetKey, type CryptoKey } from "jose";
import { ROLE_GROUPS } from "../../app/src/auth/roles";
import { createTokenVerifier, VERIFIED_TOKEN_CACHE } from "../../app/src/auth/verifier";
import { DEFAULT_MFA_RULES, type OidcIssuer } from "../../app/src/config/oidc";

const ISSUER: OidcIssuer = { name: "okta", claimMapping: "okta", issuer: "https://idp.test/oauth2/default", jwksUri: "https://idp.test/keys", audiences: ["knhk-api"], mfa: DEFAULT_MFA_RULES.okta };
const TOLERANCE = 60;
const MAX_AGE = 3600;

let privateKey: CryptoKey;
let jwk: JWK;
let now: number;

beforeAll(async () => {
  const pair = await generateKeyPair("RS256", { extractable: true });
  privateKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256" };
});

beforeEach(() => {
  now = Date.parse("2026-12-03T00:00:00Z");
});

function token(subject: string, expiresInSeconds = 300, issuedAgoSeconds = 0): Promise<string> {
  const seconds = Math.floor(now / 1000);
  return new SignJWT({ groups: [...ROLE_GROUPS.ingestor] })
    .setProtectedHeader({ alg: "RS256", kid: "k1" })
    .setIssuer(ISSUER.issuer)
    .setAudience("knhk-api")
    .setSubject(subject)
    .setIssuedAt(seconds - issuedAgoSeconds)
    .setExpirationTime(seconds + expiresInSeconds)
    .sign(privateKey);
}

/** A verifier whose key source counts how often a signature had to be checked. */
function verifier(options: { entries?: number; keys?: () => JWK[] } = {}) {
  let keyLookups = 0;
  const lookups: boolean[] = [];
  const keySource = (): JWTVerifyGetKey => async (header, input) => {
    keyLookups++;
    return createLocalJWKSet({ keys: options.keys?.() ?? [jwk] })(header, input);
  };
  const v = createTokenVerifier({
    issuers: [ISSUER],
    clockToleranceSeconds: TOLERANCE,
    maxTokenAgeSeconds: MAX_AGE,
    keySource,
    clock: () => now,
    cacheEntries: options.entries,
    onCacheLookup: (hit) => lookups.push(hit),
  });
  return { verify: (t: string) => v.verify(`Bearer ${t}`), keyLookups: () => keyLookups, lookups };
}

test("a reused token is verified once, then served from the cache with the same principal", async () => {
  const v = verifier();
  const t = await token("alice");
  const first = await v.verify(t);
  const second = await v.verify(t);
  expect(first.ok && second.ok).toBe(true);
  if (!first.ok || !second.ok) return;
  expect(second.principal).toEqual(first.principal);
  expect(second.principal.roles).toEqual(["ingestor"]);
  expect(v.keyLookups()).toBe(1);
  expect(v.lookups).toEqual([false, true]);
});

test("a cached token is not accepted past its exp plus the clock tolerance", async () => {
  const v = verifier();
  const t = await token("alice", 30);
  expect((await v.verify(t)).ok).toBe(true);
  // Within the tolerance the token is re-verified (the cache ends exactly at exp) and still valid.
  now += 45_000;
  expect((await v.verify(t)).ok).toBe(true);
  expect(v.keyLookups()).toBe(2);
  now += (TOLERANCE + 1) * 1000;
  expect(await v.verify(t)).toEqual({ ok: false, status: 401, reason: "token expired" });
});

test("a cached token is not accepted past iat + the max token age", async () => {
  const v = verifier();
  const t = await token("alice", 10 * MAX_AGE, MAX_AGE - 20);
  expect((await v.verify(t)).ok).toBe(true);
  now += (20 + TOLERANCE + 1) * 1000;
  expect(await v.verify(t)).toEqual({ ok: false, status: 401, reason: "token too old (max token age)" });
});

test("after the cache's bound the signature is checked again: a key removed from the JWKS stops the token", async () => {
  let published: JWK[] = [jwk];
  const v = verifier({ keys: () => published });
  const t = await token("alice", 3600);
  expect((await v.verify(t)).ok).toBe(true);
  published = [];
  now += (VERIFIED_TOKEN_CACHE.maxSeconds - 1) * 1000;
  expect((await v.verify(t)).ok).toBe(true);
  now += 2000;
  const after = await v.verify(t);
  expect(after).toEqual({ ok: false, status: 401, reason: "signing key not found in the issuer's JWKS" });
});

test("the cache holds at most its bound of tokens, dropping the oldest", async () => {
  const v = verifier({ entries: 2 });
  const [a, b, c] = await Promise.all([token("a"), token("b"), token("c")]);
  for (const t of [a, b, c]) await v.verify(t);
  expect(v.keyLookups()).toBe(3);
  await v.verify(c);
  await v.verify(b);
  expect(v.keyLookups()).toBe(3);
  await v.verify(a);
  expect(v.keyLookups()).toBe(4);
});

test("cacheEntries 0 verifies every time", async () => {
  const v = verifier({ entries: 0 });
  const t = await token("alice");
  await v.verify(t);
  await v.verify(t);
  expect(v.keyLookups()).toBe(2);
});

test("no altered copy of a cached token is accepted (fuzzed)", async () => {
  const v = verifier();
  const t = await token("alice");
  expect((await v.verify(t)).ok).toBe(true);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: t.length - 1 }), fc.constantFrom(...alphabet.split("")), fc.boolean(), async (at, char, insert) => {
      const altered = insert ? t.slice(0, at) + char + t.slice(at) : t.slice(0, at) + char + t.slice(at + 1);
      fc.pre(altered !== t);
      const result = await v.verify(altered);
      // Base64url has padding bits: an altered last character may decode to the same bytes.
      if (result.ok) expect(Buffer.from(altered.split(".")[2] ?? "", "base64url")).toEqual(Buffer.from(t.split(".")[2], "base64url"));
      if (result.ok) expect(altered.split(".").slice(0, 2)).toEqual(t.split(".").slice(0, 2));
    }),
    { numRuns: 300, seed: 15 },
  );
});
