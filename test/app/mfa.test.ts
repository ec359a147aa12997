/**
 * The MFA rule as pure functions: each provider's default proof, the roles withheld without it,
 * the reason a refusal gives, and hostile claim values (fast-check) that must never prove MFA
 * unless they carry one of the rule's values.
 */
import fc from "fast-check";
import type { JWTPayload } from "jose";
import { principalFromClaims } from "../../app/src/auth/claims";
import { mfaEvidence } from "../../app/src/auth/mfa";
import { DEFAULT_MFA_REQUIRED_ROLES, ROLE_GROUPS, ROLES, type Role } from "../../app/src/auth/roles";
import { CLAIM_MAPPINGS, DEFAULT_MFA_RULES, parseOidcIssuers, type ClaimMapping, type MfaRule } from "../../app/src/config/oidc";
import { ConfigError, loadConfig } from "../../app/src/config/env";
import { MAX_REASON } from "../../app/src/server/audit";
import { forbiddenReason } from "../../app/src/server/auth-hook";

const REQUIRED: ReadonlySet<Role> = new Set(DEFAULT_MFA_REQUIRED_ROLES);
const issuer = (claimMapping: ClaimMapping, mfa: MfaRule = DEFAULT_MFA_RULES[claimMapping]) => ({ name: claimMapping, claimMapping, mfa });
const groupsClaim = (mapping: ClaimMapping, groups: string[]): JWTPayload =>
  mapping === "azure" ? { roles: groups } : mapping === "keycloak" ? { realm_access: { roles: groups } } : { groups };

describe("mfaEvidence", () => {
  test.each<[ClaimMapping, JWTPayload, boolean]>([
    ["okta", { amr: ["pwd", "mfa"] }, true],
    ["okta", { acr: "urn:okta:loa:2fa:any" }, true],
    ["okta", { acr: "urn:okta:loa:2fa:any:ifpossible" }, false],
    ["okta", { amr: ["pwd"] }, false],
    ["azure", { amr: ["ngcmfa"] }, true],
    ["azure", { amr: ["wiaormfa"] }, false],
    ["keycloak", { acr: "2" }, true],
    ["keycloak", { amr: ["hwk"] }, true],
    ["keycloak", { acr: "1", amr: ["pwd"] }, false],
    ["keycloak", {}, false],
  ])("%s %j -> %s", (mapping, claims, proven) => {
    expect(mfaEvidence(DEFAULT_MFA_RULES[mapping], claims).proven).toBe(proven);
  });

  test("names what proved it, and what was missing", () => {
    expect(mfaEvidence(DEFAULT_MFA_RULES.okta, { amr: ["pwd", "mfa"] })).toEqual({ proven: true, by: "amr mfa" });
    expect(mfaEvidence(DEFAULT_MFA_RULES.keycloak, { acr: "2" })).toEqual({ proven: true, by: "acr 2" });
    expect(mfaEvidence(DEFAULT_MFA_RULES.azure, { amr: ["pwd"] })).toEqual({
      proven: false,
      missing: 'multi-factor authentication (amr with one of [mfa, ngcmfa]; the token has amr ["pwd"], no acr claim)',
    });
    expect(mfaEvidence(DEFAULT_MFA_RULES.keycloak, { amr: "otp", acr: 2 })).toEqual({
      proven: false,
      missing: "multi-factor authentication (amr with one of [mfa, otp, hwk] or acr one of [2]; the token has amr is not a list, acr is not a string)",
    });
  });

  test("hostile amr and acr values prove MFA exactly when they carry one of the rule's values, and a refusal fits the audit entry whole", () => {
    const ruleValue = fc.constantFrom("mfa", "otp", "hwk", "2", "phr");
    const hostile = fc.oneof(fc.string({ maxLength: 2000 }), fc.anything(), ruleValue);
    const configured = fc.array(fc.string({ minLength: 1, maxLength: 200 }), { maxLength: 50 });
    const everyGroup = ROLES.map((role) => ROLE_GROUPS[role][0]);
    fc.assert(
      fc.property(fc.oneof(fc.array(hostile, { maxLength: 300 }), hostile), hostile, configured, configured, (amr, acr, extraAmr, extraAcr) => {
        const rule: MfaRule = { amr: ["mfa", "otp", "hwk", ...extraAmr], acr: ["2", "phr", ...extraAcr] };
        const evidence = mfaEvidence(rule, { amr, acr } as JWTPayload);
        const expected = (Array.isArray(amr) && amr.some((v) => typeof v === "string" && rule.amr.includes(v))) || (typeof acr === "string" && rule.acr.includes(acr));
        expect(evidence.proven).toBe(expected);
        if (evidence.proven) return;
        const principal = principalFromClaims(issuer("okta", rule), REQUIRED, { sub: "u", groups: everyGroup, amr, acr } as JWTPayload);
        expect(forbiddenReason(principal, "VALIDATE_PROPOSALS").length).toBeLessThanOrEqual(MAX_REASON);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("principalFromClaims", () => {
  test.each(CLAIM_MAPPINGS)("%s: without MFA every role that needs it is withheld, the others are held", (mapping) => {
    const groups = ROLES.map((role) => ROLE_GROUPS[role][0]);
    const principal = principalFromClaims(issuer(mapping), REQUIRED, { sub: "u", oid: "u", ...groupsClaim(mapping, groups) });
    expect(principal.roles).toEqual(["observer", "analyst", "ingestor"]);
    expect(principal.withheldRoles).toEqual(["proposer", "validator", "operator", "administrator"]);
    expect(principal.permissions.has("PROMOTE_SNAPSHOTS")).toBe(false);
    expect(principal.permissions.has("INGEST_OBSERVATIONS")).toBe(true);
  });

  test.each(CLAIM_MAPPINGS)("%s: with the provider's proof every role is held", (mapping) => {
    const proof = mapping === "keycloak" ? { acr: "2" } : { amr: ["mfa"] };
    const principal = principalFromClaims(issuer(mapping), REQUIRED, { sub: "u", oid: "u", ...proof, ...groupsClaim(mapping, [ROLE_GROUPS.administrator[0]]) });
    expect(principal.roles).toEqual(["administrator"]);
    expect(principal.withheldRoles).toEqual([]);
  });

  test("the required roles are configurable: none required holds everything, observer required withholds it", () => {
    const claims = { sub: "u", groups: [ROLE_GROUPS.administrator[0], ROLE_GROUPS.observer[0]] };
    expect(principalFromClaims(issuer("okta"), new Set(), claims).roles).toEqual(["observer", "administrator"]);
    expect(principalFromClaims(issuer("okta"), new Set<Role>(["observer"]), claims).roles).toEqual(["administrator"]);
  });

  test("an issuer's own rule replaces the provider default", () => {
    const claims = { sub: "u", groups: [ROLE_GROUPS.operator[0]], acr: "gold" };
    expect(principalFromClaims(issuer("okta"), REQUIRED, claims).roles).toEqual([]);
    expect(principalFromClaims(issuer("okta", { amr: [], acr: ["gold"] }), REQUIRED, claims).roles).toEqual(["operator"]);
  });
});

describe("forbiddenReason", () => {
  test("names the missing factor only when a withheld role would grant the permission", () => {
    const principal = principalFromClaims(issuer("okta"), REQUIRED, { sub: "u", groups: [ROLE_GROUPS.operator[0], ROLE_GROUPS.ingestor[0]] });
    expect(forbiddenReason(principal, "ROLLBACK_SNAPSHOTS")).toBe(
      "roles [ingestor] lack ROLLBACK_SNAPSHOTS; roles [operator] would grant it but need multi-factor authentication (amr with one of [mfa] or acr one of [urn:okta:loa:2fa:any, phr, phrh]; the token has no amr claim, no acr claim)",
    );
    expect(forbiddenReason(principal, "VALIDATE_PROPOSALS")).toBe("roles [ingestor] lack VALIDATE_PROPOSALS");
  });
});

describe("configuration", () => {
  const env = (extra: Record<string, string>) => ({ KNHK_OIDC_OKTA_ISSUER: "https://idp.test/oauth2/default", ...extra });

  test("KNHK_MFA_REQUIRED_ROLES: default, a list, none, and a bad name refused naming the variable", () => {
    expect(loadConfig(env({})).oidc.mfaRequiredRoles).toEqual(DEFAULT_MFA_REQUIRED_ROLES);
    expect(loadConfig(env({ KNHK_MFA_REQUIRED_ROLES: "administrator, operator" })).oidc.mfaRequiredRoles).toEqual(["operator", "administrator"]);
    expect(loadConfig(env({ KNHK_MFA_REQUIRED_ROLES: "none" })).oidc.mfaRequiredRoles).toEqual([]);
    expect(() => loadConfig(env({ KNHK_MFA_REQUIRED_ROLES: "admin" }))).toThrow(
      new ConfigError("KNHK_MFA_REQUIRED_ROLES", 'unknown role "admin" (roles: observer, analyst, proposer, validator, operator, administrator, ingestor; or "none")'),
    );
    expect(() => loadConfig(env({ KNHK_MFA_REQUIRED_ROLES: "operator,,administrator" }))).toThrow(/KNHK_MFA_REQUIRED_ROLES: empty role name/);
  });

  test("an issuer's mfa rule in KNHK_OIDC_ISSUERS: taken as given, defaulted per provider, refused when it can prove nothing", () => {
    const parse = (mfa?: unknown) =>
      parseOidcIssuers({ KNHK_OIDC_ISSUERS: JSON.stringify([{ claim_mapping: "keycloak", issuer: "https://kc.test/realms/knhk", ...(mfa === undefined ? {} : { mfa }) }]) }, ["knhk-api"]);
    expect(parse()[0].mfa).toEqual(DEFAULT_MFA_RULES.keycloak);
    expect(parse({ acr: ["gold"] })[0].mfa).toEqual({ amr: [], acr: ["gold"] });
    expect(() => parse({})).toThrow("KNHK_OIDC_ISSUERS: 0.mfa: needs at least one amr or acr value (otherwise no token could prove MFA)");
    expect(() => parse({ amr: ["mfa"], level: 2 })).toThrow(/KNHK_OIDC_ISSUERS: 0.mfa: Unrecognized key/);
  });
});
