import { z } from "zod";

/** How a provider's token carries the user id and the groups that map to roles. */
export const CLAIM_MAPPINGS = ["okta", "azure", "keycloak"] as const;
export type ClaimMapping = (typeof CLAIM_MAPPINGS)[number];

export const DEFAULT_AUDIENCES = ["knhk-api", "knhk-admin", "knhk-cli"] as const;

/**
 * What proves that a token was issued after multi-factor authentication: an `amr` entry
 * (RFC 8176 method names) from `amr`, or an `acr` value from `acr`. Either one suffices.
 */
export interface MfaRule {
  readonly amr: readonly string[];
  readonly acr: readonly string[];
}

/**
 * Each provider's own way of saying "more than one factor":
 *   okta      amr `mfa`; acr `urn:okta:loa:2fa:any` and the phishing-resistant `phr`, `phrh`
 *             (not `...:ifpossible`, which Okta also issues after one factor);
 *   azure     amr `mfa`, and `ngcmfa` (Windows Hello / passkey enrolment); not `wiaormfa`, which
 *             may mean integrated Windows authentication alone;
 *   keycloak  amr `mfa`, `otp`, `hwk` (the AMR protocol mapper), or acr `2`, the level the
 *             step-up flow's second factor grants in Keycloak's documented set-up.
 */
export const DEFAULT_MFA_RULES: Readonly<Record<ClaimMapping, MfaRule>> = {
  okta: { amr: ["mfa"], acr: ["urn:okta:loa:2fa:any", "phr", "phrh"] },
  azure: { amr: ["mfa", "ngcmfa"], acr: [] },
  keycloak: { amr: ["mfa", "otp", "hwk"], acr: ["2"] },
};

export interface OidcIssuer {
  /** Short name used in logs and the audit trail. */
  readonly name: string;
  readonly claimMapping: ClaimMapping;
  /** Exact `iss` value the tokens carry. */
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audiences: readonly string[];
  /** What counts as proof of MFA in this issuer's tokens (default: DEFAULT_MFA_RULES of its mapping). */
  readonly mfa: MfaRule;
}

/*
 * The pieces below are exported so the stack config (infra/config/oidc.ts) validates issuers with
 * the rules this parser applies: one definition for both.
 */

/** Issuer and JWKS locations. */
export const oidcUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

/** An issuer's short name (logs, audit trail). */
export const oidcIssuerName = z.string().regex(/^[a-z0-9-]+$/, "lower-case letters, digits and '-'");

/** Audiences a token of one issuer may carry. */
export const oidcAudienceList = z.array(z.string().min(1)).min(1);

/** An issuer's MFA rule as configured; at least one claim value, or nothing could ever prove MFA. */
export const mfaRuleEntry = z
  .object({
    amr: z.array(z.string().min(1).max(200)).max(50).default([]),
    acr: z.array(z.string().min(1).max(200)).max(50).default([]),
  })
  .strict()
  .refine((rule) => rule.amr.length + rule.acr.length > 0, { message: "needs at least one amr or acr value (otherwise no token could prove MFA)" });

/** Bounds and defaults of KNHK_OIDC_CLOCK_TOLERANCE_SECONDS and KNHK_OIDC_MAX_TOKEN_AGE_SECONDS. */
export const OIDC_CLOCK_TOLERANCE_SECONDS = { min: 0, max: 300, default: 60 } as const;
export const OIDC_MAX_TOKEN_AGE_SECONDS = { min: 60, max: 86_400, default: 3600 } as const;

/** One element of KNHK_OIDC_ISSUERS. */
export const oidcIssuerEntry = z
  .object({
    name: oidcIssuerName.optional(),
    claim_mapping: z.enum(CLAIM_MAPPINGS),
    issuer: oidcUrl,
    jwks_uri: oidcUrl.optional(),
    audiences: oidcAudienceList.optional(),
    mfa: mfaRuleEntry.optional(),
  })
  .strict();
export type OidcIssuerEntry = z.infer<typeof oidcIssuerEntry>;

/** The first `iss` value configured twice (a token must map to exactly one claim mapping), if any. */
export function duplicateIssuer(issuers: readonly { readonly issuer: string }[]): string | undefined {
  const seen = new Set<string>();
  for (const entry of issuers) {
    if (seen.has(entry.issuer)) return entry.issuer;
    seen.add(entry.issuer);
  }
  return undefined;
}

/** The provider's published JWKS location, derived from the issuer when not configured. */
export function defaultJwksUri(mapping: ClaimMapping, issuer: string): string {
  const base = issuer.replace(/\/+$/, "");
  switch (mapping) {
    case "okta":
      return `${base}/v1/keys`;
    case "azure":
      // https://login.microsoftonline.com/<tenant>/v2.0 -> .../<tenant>/discovery/v2.0/keys
      return base.endsWith("/v2.0") ? `${base.slice(0, -"/v2.0".length)}/discovery/v2.0/keys` : `${base}/discovery/v2.0/keys`;
    case "keycloak":
      return `${base}/protocol/openid-connect/certs`;
  }
}

export class OidcConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable}: ${reason}`);
  }
}

function toIssuer(entry: z.infer<typeof oidcIssuerEntry>, fallbackName: string, audiences: readonly string[]): OidcIssuer {
  return {
    name: entry.name ?? fallbackName,
    claimMapping: entry.claim_mapping,
    issuer: entry.issuer,
    jwksUri: entry.jwks_uri ?? defaultJwksUri(entry.claim_mapping, entry.issuer),
    audiences: entry.audiences ?? audiences,
    mfa: entry.mfa ?? DEFAULT_MFA_RULES[entry.claim_mapping],
  };
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue.path.map(String).join(".");
  return path ? `${path}: ${issue.message}` : issue.message;
}

/**
 * Issuers come from KNHK_OIDC_ISSUERS (a JSON array) and/or the per-provider variables
 * KNHK_OIDC_{OKTA,AZURE,KEYCLOAK}_ISSUER (+ _JWKS_URI). Two entries with one `iss` are refused:
 * a token must map to exactly one claim mapping.
 */
export function parseOidcIssuers(env: Readonly<Record<string, string | undefined>>, audiences: readonly string[]): OidcIssuer[] {
  const issuers: OidcIssuer[] = [];
  const json = env.KNHK_OIDC_ISSUERS?.trim();
  if (json) {
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch (error) {
      throw new OidcConfigError("KNHK_OIDC_ISSUERS", `not valid JSON (${(error as Error).message})`);
    }
    const parsed = z.array(oidcIssuerEntry).safeParse(raw);
    if (!parsed.success) throw new OidcConfigError("KNHK_OIDC_ISSUERS", describe(parsed.error));
    parsed.data.forEach((entry, i) => issuers.push(toIssuer(entry, `${entry.claim_mapping}-${i}`, audiences)));
  }
  for (const mapping of CLAIM_MAPPINGS) {
    const prefix = `KNHK_OIDC_${mapping.toUpperCase()}`;
    const issuer = env[`${prefix}_ISSUER`]?.trim();
    const jwks = env[`${prefix}_JWKS_URI`]?.trim();
    if (!issuer) {
      if (jwks) throw new OidcConfigError(`${prefix}_JWKS_URI`, `set without ${prefix}_ISSUER`);
      continue;
    }
    const checkedIssuer = oidcUrl.safeParse(issuer);
    if (!checkedIssuer.success) throw new OidcConfigError(`${prefix}_ISSUER`, describe(checkedIssuer.error));
    if (jwks !== undefined && !oidcUrl.safeParse(jwks).success) {
      throw new OidcConfigError(`${prefix}_JWKS_URI`, "must be an http(s) URL");
    }
    issuers.push(toIssuer({ claim_mapping: mapping, issuer, jwks_uri: jwks || undefined }, mapping, audiences));
  }
  const twice = duplicateIssuer(issuers);
  if (twice !== undefined) throw new OidcConfigError("KNHK_OIDC_ISSUERS", `issuer ${twice} is configured twice`);
  return issuers;
}
