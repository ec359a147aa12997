/**
 * Roles, the groups that grant them and the permissions they carry (the reference role table,
 * plus `ingestor`, the only non-admin role that may POST observations).
 */
export const PERMISSIONS = [
  "READ_OBSERVATIONS",
  "READ_SNAPSHOTS",
  "READ_RECEIPTS",
  "READ_PATTERNS",
  "READ_PROPOSALS",
  "INGEST_OBSERVATIONS",
  "DETECT_PATTERNS",
  "RUN_ANALYTICS",
  "GENERATE_PROPOSALS",
  "VIEW_VALIDATION_REPORTS",
  "VALIDATE_PROPOSALS",
  "PROMOTE_SNAPSHOTS",
  "ROLLBACK_SNAPSHOTS",
  "EXECUTE_MAPE_K",
  "VERIFY_RECEIPTS",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ["observer", "analyst", "proposer", "validator", "operator", "administrator", "ingestor"] as const;
export type Role = (typeof ROLES)[number];

const OBSERVER_READS: readonly Permission[] = ["READ_OBSERVATIONS", "READ_SNAPSHOTS", "READ_RECEIPTS", "READ_PATTERNS"];
/** The table's READ_* for every role above observer. */
const ALL_READS: readonly Permission[] = [...OBSERVER_READS, "READ_PROPOSALS"];

export const ROLE_GROUPS: Readonly<Record<Role, readonly string[]>> = {
  observer: ["knhk-observers", "knhk-readonly"],
  analyst: ["knhk-analysts", "knhk-data-analysts"],
  proposer: ["knhk-proposers", "knhk-ml-engineers"],
  validator: ["knhk-validators", "knhk-approvers"],
  operator: ["knhk-operators", "knhk-deployers"],
  administrator: ["knhk-admins", "knhk-superusers"],
  ingestor: ["knhk-ingestors"],
};

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  observer: OBSERVER_READS,
  analyst: [...ALL_READS, "DETECT_PATTERNS", "RUN_ANALYTICS"],
  proposer: [...ALL_READS, "DETECT_PATTERNS", "GENERATE_PROPOSALS", "VIEW_VALIDATION_REPORTS"],
  validator: [...ALL_READS, "VALIDATE_PROPOSALS", "VIEW_VALIDATION_REPORTS", "VERIFY_RECEIPTS"],
  operator: [...ALL_READS, "PROMOTE_SNAPSHOTS", "ROLLBACK_SNAPSHOTS", "EXECUTE_MAPE_K", "VERIFY_RECEIPTS"],
  administrator: PERMISSIONS,
  ingestor: ["INGEST_OBSERVATIONS"],
};

const GROUP_TO_ROLE: ReadonlyMap<string, Role> = new Map(
  ROLES.flatMap((role) => ROLE_GROUPS[role].map((group) => [group, role] as const)),
);

/** Roles granted by a principal's groups; unknown groups grant nothing. */
export function rolesFromGroups(groups: readonly string[]): Role[] {
  const roles = new Set<Role>();
  for (const group of groups) {
    const role = GROUP_TO_ROLE.get(group);
    if (role) roles.add(role);
  }
  return ROLES.filter((r) => roles.has(r));
}

export function permissionsOf(roles: readonly Role[]): Set<Permission> {
  return new Set(roles.flatMap((role) => ROLE_PERMISSIONS[role]));
}

/**
 * Roles a principal holds only when its token proves multi-factor authentication (configurable:
 * KNHK_MFA_REQUIRED_ROLES): the people who propose, validate, promote and administer. Observer,
 * analyst and ingestor are the roles of machine identities (client-credentials tokens, which
 * carry no `amr` or `acr`); they read, analyse or append observations and change nothing else,
 * so their own rule is the token's audience, lifetime and rate limit, without MFA.
 */
export const DEFAULT_MFA_REQUIRED_ROLES: readonly Role[] = ["proposer", "validator", "operator", "administrator"];
