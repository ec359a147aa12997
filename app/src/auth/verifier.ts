import { createHash } from "node:crypto";
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { OidcIssuer } from "../config/oidc";
import { ClaimError, principalFromClaims, type Principal } from "./claims";
import { DEFAULT_MFA_REQUIRED_ROLES, type Role } from "./roles";

/** Asymmetric algorithms only: no HMAC (a shared secret would let any holder mint tokens), no `none`. */
export const ALLOWED_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;
const MAX_TOKEN_LENGTH = 16 * 1024;

export type Authentication =
  | { readonly ok: true; readonly principal: Principal }
  /** 401: the caller's token is not acceptable. 503: the issuer's keys could not be fetched. */
  | { readonly ok: false; readonly status: 401 | 503; readonly reason: string };

export interface TokenVerifier {
  /** Every Authorization header the request carried (a request with more than one is refused). */
  verify(authorizationHeader: string | readonly string[] | undefined): Promise<Authentication>;
}

export interface VerifierSettings {
  readonly issuers: readonly OidcIssuer[];
  readonly clockToleranceSeconds: number;
  readonly maxTokenAgeSeconds: number;
  /** Roles held only with a token that proves MFA under its issuer's rule. Default DEFAULT_MFA_REQUIRED_ROLES. */
  readonly mfaRequiredRoles?: readonly Role[];
  /** Injected key sources (tests); default: jose's remote JWKS with caching and cooldown. */
  readonly keySource?: (issuer: OidcIssuer) => JWTVerifyGetKey;
  /** Verified tokens remembered (see VERIFIED_TOKEN_CACHE); 0 turns the cache off. Default 10,000. */
  readonly cacheEntries?: number;
  /** Milliseconds since the epoch; default Date.now (tests move it to cross expiry). */
  readonly clock?: () => number;
  /** Called on every cache lookup of a well-formed bearer token. */
  readonly onCacheLookup?: (hit: boolean) => void;
}

/**
 * A token that verified is remembered by its SHA-256 until the earliest of its `exp`, its
 * `iat` + max token age, and `maxSeconds` from its verification, so a client reusing its token
 * costs one hash instead of a signature verification. `maxSeconds` is below the JWKS cache's own
 * lifetime (jose keeps fetched keys up to 10 minutes), so the cache never trusts a removed
 * signing key longer than the verifier already does. Only successes are cached; tolerance for
 * clock skew is never extended (a cached token expires exactly at `exp`).
 */
export const VERIFIED_TOKEN_CACHE = { entries: 10_000, maxSeconds: 60 } as const;

/** jose compares these as numbers, so 1e309 (Infinity) would be a token that never expires. */
const TIME_CLAIMS = ["exp", "nbf", "iat"] as const;

/** The token of an RFC 6750 `Bearer` credential; the scheme is case-insensitive (RFC 7235 2.1). */
function bearerToken(header: string): string | undefined {
  return /^bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim())?.[1];
}

/** Successful verifications by token hash, oldest first (Map keeps insertion order). */
function createVerifiedTokenCache(maxEntries: number, clock: () => number) {
  const entries = new Map<string, { principal: Principal; until: number }>();
  return {
    get(key: string): Principal | undefined {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (clock() < entry.until) return entry.principal;
      entries.delete(key);
      return undefined;
    },
    set(key: string, principal: Principal, claims: { exp?: number; iat?: number }, maxTokenAgeSeconds: number): void {
      if (maxEntries <= 0) return;
      const now = clock();
      const until = Math.min(
        (claims.exp ?? 0) * 1000,
        ((claims.iat ?? 0) + maxTokenAgeSeconds) * 1000,
        now + VERIFIED_TOKEN_CACHE.maxSeconds * 1000,
      );
      if (until <= now) return;
      entries.delete(key);
      entries.set(key, { principal, until });
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
    },
    get size() {
      return entries.size;
    },
  };
}

const deny = (reason: string, status: 401 | 503 = 401): Authentication => ({ ok: false, status, reason });

function describeJoseError(error: unknown): Authentication {
  if (error instanceof errors.JWTExpired) return deny(error.claim === "iat" ? "token too old (max token age)" : "token expired");
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return deny("token not yet valid");
    return deny(`claim ${error.claim} invalid: ${error.message}`);
  }
  if (error instanceof errors.JWKSNoMatchingKey) return deny("signing key not found in the issuer's JWKS");
  if (error instanceof errors.JWKSMultipleMatchingKeys) return deny("token does not identify a single signing key");
  if (error instanceof errors.JWSSignatureVerificationFailed) return deny("signature invalid");
  if (error instanceof errors.JOSEAlgNotAllowed) return deny("algorithm not allowed");
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return deny(`malformed token: ${error.message}`);
  if (error instanceof errors.JWKSTimeout) return deny("issuer JWKS timed out", 503);
  if (error instanceof errors.JOSENotSupported) return deny(`unsupported token: ${error.message}`);
  if (error instanceof errors.JWKSInvalid || error instanceof errors.JOSEError) return deny(`issuer JWKS unusable: ${(error as Error).message}`, 503);
  // Network failures fetching the JWKS surface as plain errors (fetch TypeError).
  return deny(`issuer JWKS unavailable: ${(error as Error).message}`, 503);
}

/**
 * Validates bearer tokens against the configured issuers: the unverified `iss` only selects which
 * issuer's keys and claim mapping to use; everything is then checked by jose against that issuer.
 */
export function createTokenVerifier(settings: VerifierSettings): TokenVerifier {
  const byIssuer = new Map(
    settings.issuers.map((issuer) => [
      issuer.issuer,
      {
        issuer,
        keys: settings.keySource
          ? settings.keySource(issuer)
          : createRemoteJWKSet(new URL(issuer.jwksUri), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 }),
      },
    ]),
  );
  const clock = settings.clock ?? Date.now;
  const mfaRequiredRoles: ReadonlySet<Role> = new Set(settings.mfaRequiredRoles ?? DEFAULT_MFA_REQUIRED_ROLES);
  const cache = createVerifiedTokenCache(settings.cacheEntries ?? VERIFIED_TOKEN_CACHE.entries, clock);
  return {
    async verify(headers) {
      const all = typeof headers === "string" ? [headers] : [...(headers ?? [])];
      // Two credentials are ambiguous: which one a proxy or the service honours must not matter.
      if (all.length > 1) return deny("more than one Authorization header");
      const header = all[0];
      if (!header) return deny("missing bearer token");
      const token = bearerToken(header);
      if (!token) return deny("authorization header is not 'Bearer <token>'");
      if (token.length > MAX_TOKEN_LENGTH) return deny("token too long");
      const cacheKey = createHash("sha256").update(token).digest("base64");
      const remembered = cache.get(cacheKey);
      settings.onCacheLookup?.(remembered !== undefined);
      if (remembered) return { ok: true, principal: remembered };
      let iss: string | undefined;
      try {
        const alg = decodeProtectedHeader(token).alg;
        if (typeof alg !== "string" || !(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) {
          return deny(`algorithm ${typeof alg === "string" ? alg : "(none)"} not allowed`);
        }
        const claims = decodeJwt(token);
        const badTime = TIME_CLAIMS.find((claim) => claims[claim] !== undefined && !Number.isSafeInteger(claims[claim]));
        if (badTime) return deny(`claim ${badTime} must be an integer NumericDate`);
        iss = claims.iss;
      } catch {
        return deny("malformed token");
      }
      const entry = iss ? byIssuer.get(iss) : undefined;
      if (!entry) return deny(iss ? `unknown issuer ${iss}` : "token has no issuer");
      try {
        const { payload } = await jwtVerify(token, entry.keys, {
          issuer: entry.issuer.issuer,
          audience: [...entry.issuer.audiences],
          algorithms: [...ALLOWED_ALGORITHMS],
          clockTolerance: settings.clockToleranceSeconds,
          maxTokenAge: settings.maxTokenAgeSeconds,
          requiredClaims: ["exp", "iat"],
          currentDate: new Date(clock()),
        });
        const principal = principalFromClaims(entry.issuer, mfaRequiredRoles, payload);
        cache.set(cacheKey, principal, payload, settings.maxTokenAgeSeconds);
        return { ok: true, principal };
      } catch (error) {
        if (error instanceof ClaimError) return deny(error.message);
        return describeJoseError(error);
      }
    },
  };
}
