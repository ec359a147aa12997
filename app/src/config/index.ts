export { ConfigError, describeConfig, loadConfig, type Config, type RedisConfig } from "./env";
export { CLAIM_MAPPINGS, DEFAULT_AUDIENCES, defaultJwksUri, parseOidcIssuers, type ClaimMapping, type OidcIssuer } from "./oidc";
