import type { JWTPayload } from "jose";
import type { ClaimMapping, OidcIssuer } from "../config/oidc";
import { mfaEvidence, type MfaEvidence } from "./mfa";
import { permissionsOf, rolesFromGroups, type Permission, type Role } from "./roles";

export interface Principal {
  /** Stable user id: Azure's `oid`, else `sub`. */
  readonly subject: string;
  readonly issuerName: string;
  readonly email?: string;
  readonly name?: string;
  readonly groups: readonly string[];
  /** The roles the principal holds: those its groups grant, less the withheld ones. */
  readonly roles: readonly Role[];
  /** Roles its groups grant that need MFA the token does not prove (held by nobody with this token). */
  readonly withheldRoles: readonly Role[];
  readonly mfa: MfaEvidence;
  /** The permissions of `roles` only. */
  readonly permissions: ReadonlySet<Permission>;
}

export class ClaimError extends Error {}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The group names a provider's token carries, per its claim mapping. */
export function groupsFromClaims(mapping: ClaimMapping, claims: JWTPayload): string[] {
  switch (mapping) {
    case "okta":
      return stringList(claims.groups);
    case "azure":
      // Azure AD app roles arrive in `roles`; `groups` holds object ids, not names.
      return stringList(claims.roles);
    case "keycloak": {
      const realmAccess = claims.realm_access as { roles?: unknown } | undefined;
      // Keycloak's group mapper emits full paths ("/knhk-admins") unless "full path" is off.
      const groups = stringList(claims.groups).map((g) => g.replace(/^\/+/, ""));
      return [...new Set([...stringList(realmAccess?.roles), ...groups])];
    }
  }
}

export function principalFromClaims(
  issuer: Pick<OidcIssuer, "claimMapping" | "name" | "mfa">,
  mfaRequiredRoles: ReadonlySet<Role>,
  claims: JWTPayload,
): Principal {
  const mapping = issuer.claimMapping;
  const subject = mapping === "azure" ? optionalString(claims.oid) ?? optionalString(claims.sub) : optionalString(claims.sub);
  if (!subject) throw new ClaimError(mapping === "azure" ? "token has neither oid nor sub" : "token has no sub");
  const groups = groupsFromClaims(mapping, claims);
  const granted = rolesFromGroups(groups);
  const mfa = mfaEvidence(issuer.mfa, claims);
  const roles = mfa.proven ? granted : granted.filter((role) => !mfaRequiredRoles.has(role));
  return {
    subject,
    issuerName: issuer.name,
    email: optionalString(claims.email) ?? optionalString(claims.preferred_username),
    name: optionalString(claims.name),
    groups,
    roles,
    withheldRoles: granted.filter((role) => !roles.includes(role)),
    mfa,
    permissions: permissionsOf(roles),
  };
}
