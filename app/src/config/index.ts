export { ConfigError, describeConfig, loadConfig, type Config, type RedisConfig } from "./env";
export { CLAIM_MAPPINGS, DEFAULT_AUDIENCES, DEFAULT_MFA_RULES, defaultJwksUri, parseOidcIssuers, type ClaimMapping, type MfaRule, type OidcIssuer } from "./oidc";
