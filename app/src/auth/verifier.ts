import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { OidcIssuer } from "../config/oidc";
import { ClaimError, principalFromClaims, type Principal } from "./claims";

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
  /** Injected key sources (tests); default: jose's remote JWKS with caching and cooldown. */
  readonly keySource?: (issuer: OidcIssuer) => JWTVerifyGetKey;
}

/** jose compares these as numbers, so 1e309 (Infinity) would be a token that never expires. */
const TIME_CLAIMS = ["exp", "nbf", "iat"] as const;

/** The token of an RFC 6750 `Bearer` credential; the scheme is case-insensitive (RFC 7235 2.1). */
function bearerToken(header: string): string | undefined {
  return /^bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(header.trim())?.[1];
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
        });
        return { ok: true, principal: principalFromClaims(entry.issuer.claimMapping, entry.issuer.name, payload) };
      } catch (error) {
        if (error instanceof ClaimError) return deny(error.message);
        return describeJoseError(error);
      }
    },
  };
}
