/**
 * `knhk:app.oidc`: the identity providers whose tokens the service accepts (rendered into the
 * ConfigMap `knhk-config` as KNHK_OIDC_*; infra/render/app-settings.ts). Each field is checked
 * with the service's own rules (app/src/config/oidc.ts); the stack rules (stack-rules.ts) add
 * what depends on the stack: at least one issuer and https outside `local`.
 */
import { z } from "zod";
import { DEFAULT_MFA_REQUIRED_ROLES, ROLES } from "../../app/src/auth/roles";
import {
  CLAIM_MAPPINGS,
  mfaRuleEntry,
  duplicateIssuer,
  OIDC_CLOCK_TOLERANCE_SECONDS,
  OIDC_MAX_TOKEN_AGE_SECONDS,
  oidcAudienceList,
  oidcIssuerName,
  oidcUrl,
} from "../../app/src/config/oidc";

const bounded = (b: { readonly min: number; readonly max: number; readonly default: number }) =>
  z.number().int().min(b.min).max(b.max).default(b.default);

export const oidcIssuerConfig = z
  .object({
    /** Short name in logs and the audit trail. */
    name: oidcIssuerName,
    claimMapping: z.enum(CLAIM_MAPPINGS),
    /** Exact `iss` value of the provider's tokens. */
    issuer: oidcUrl,
    /** Default: the provider's published location derived from the issuer (defaultJwksUri). */
    jwksUri: oidcUrl.optional(),
    /** Default: the service's audiences (knhk-api, knhk-admin, knhk-cli). */
    audiences: oidcAudienceList.optional(),
    /** What proves MFA in this issuer's tokens (`amr` and/or `acr` values). Default: the provider's (DEFAULT_MFA_RULES). */
    mfa: mfaRuleEntry.optional(),
  })
  .strict();
export type OidcIssuerConfig = z.infer<typeof oidcIssuerConfig>;

export const oidcSection = z
  .object({
    issuers: z.array(oidcIssuerConfig).default([]),
    clockToleranceSeconds: bounded(OIDC_CLOCK_TOLERANCE_SECONDS),
    maxTokenAgeSeconds: bounded(OIDC_MAX_TOKEN_AGE_SECONDS),
    /** Roles held only with a token that proves MFA. Default: proposer, validator, operator, administrator. */
    mfaRequiredRoles: z
      .array(z.enum(ROLES))
      .default([...DEFAULT_MFA_REQUIRED_ROLES])
      .refine((roles) => new Set(roles).size === roles.length, { message: "lists a role twice" }),
  })
  .strict()
  .superRefine((o, ctx) => {
    const twice = duplicateIssuer(o.issuers);
    if (twice !== undefined) {
      const index = o.issuers.map((i) => i.issuer).lastIndexOf(twice);
      ctx.addIssue({ code: "custom", path: ["issuers", index, "issuer"], input: twice, message: "is configured twice: a token must map to exactly one claim mapping" });
    }
    const names = o.issuers.map((i) => i.name);
    names.forEach((name, index) => {
      if (names.indexOf(name) !== index) {
        ctx.addIssue({ code: "custom", path: ["issuers", index, "name"], input: name, message: "is used by another issuer: the audit trail names the issuer" });
      }
    });
  });
export type OidcConfig = z.infer<typeof oidcSection>;
