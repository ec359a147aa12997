export { ClaimError, groupsFromClaims, principalFromClaims, type Principal } from "./claims";
export { mfaEvidence, type MfaEvidence } from "./mfa";
export { DEFAULT_MFA_REQUIRED_ROLES, PERMISSIONS, ROLES, ROLE_GROUPS, ROLE_PERMISSIONS, permissionsOf, rolesFromGroups, type Permission, type Role } from "./roles";
export { ALLOWED_ALGORITHMS, createTokenVerifier, type Authentication, type TokenVerifier, type VerifierSettings } from "./verifier";
