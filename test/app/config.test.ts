/**
 * Service configuration from the environment: defaults, every bad value refused naming the
 * variable and the reason, OIDC issuer parsing, and a real start-up stopped by a bad value.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { ConfigError, defaultJwksUri, describeConfig, loadConfig } from "../../app/src/config";
import { DEFAULT_MFA_RULES } from "../../app/src/config/oidc";

const run = promisify(execFile);

const refused = (env: Record<string, string>, variable: string, reason: RegExp) => {
  let error: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).variable).toBe(variable);
  expect((error as ConfigError).message).toMatch(reason);
};

test("defaults: embedded database, no Redis, documented ports, pool and timings", () => {
  const config = loadConfig({});
  expect(config.database).toEqual({ url: undefined, poolMax: 50, poolMin: 10, embeddedDir: undefined, migrationUrl: undefined, migrateOnStart: true, credentialsMaxAgeSeconds: 86_400 });
  expect(config.redis).toBeUndefined();
  expect(config.http).toEqual({ host: "0.0.0.0", port: 8080, metricsPort: 9090, bodyLimitBytes: 262_144, batchBodyLimitBytes: 4_194_304 });
  expect(config.domain).toEqual({ patternWindowSeconds: 60, validationTimeoutMs: 100, mapeKIntervalSeconds: 60 });
  expect(config.oidc).toEqual({ issuers: [], clockToleranceSeconds: 60, maxTokenAgeSeconds: 3600, mfaRequiredRoles: ["proposer", "validator", "operator", "administrator"] });
  expect(config.rateLimit).toEqual({ max: 600, windowSeconds: 60 });
  expect(config.telemetry).toEqual({ otlpEndpoint: undefined, serviceName: "knhk-closed-loop" });
  expect(config.tlog).toEqual({ origin: "knhk.local/receipts", checkpointEveryReceipts: 1000, checkpointIntervalSeconds: 60 });
});

test("the receipt log's settings: an origin a signed note can carry, bounded checkpoint policy", () => {
  expect(loadConfig({ KNHK_TLOG_ORIGIN: "knhk.example.com/prod/receipts", KNHK_TLOG_CHECKPOINT_EVERY_RECEIPTS: "500", KNHK_TLOG_CHECKPOINT_INTERVAL_SECONDS: "30" }).tlog).toEqual({
    origin: "knhk.example.com/prod/receipts",
    checkpointEveryReceipts: 500,
    checkpointIntervalSeconds: 30,
  });
  for (const origin of ["has space", "a+b", "tab\there", "\u2014dash", "x".repeat(256)]) refused({ KNHK_TLOG_ORIGIN: origin }, "KNHK_TLOG_ORIGIN", /printable ASCII/);
  refused({ KNHK_TLOG_CHECKPOINT_EVERY_RECEIPTS: "0" }, "KNHK_TLOG_CHECKPOINT_EVERY_RECEIPTS", /at least 1/);
  refused({ KNHK_TLOG_CHECKPOINT_INTERVAL_SECONDS: "86401" }, "KNHK_TLOG_CHECKPOINT_INTERVAL_SECONDS", /at most 86400/);
});

test("values are read and converted", () => {
  const config = loadConfig({
    DATABASE_URL: "postgres://knhk:secret@db:5432/knhk",
    DB_POOL_MAX_CONNECTIONS: "20",
    DB_POOL_MIN_CONNECTIONS: "2",
    REDIS_SENTINELS: "s1:26379, s2:26379,[::1]:26380",
    REDIS_SENTINEL_MASTER: "knhk-master",
    PATTERN_WINDOW_SECONDS: "300",
    VALIDATION_TIMEOUT_MS: "250",
    KNHK_PORT: "8081",
    KNHK_METRICS_PORT: "9091",
  });
  expect(config.database).toMatchObject({ url: "postgres://knhk:secret@db:5432/knhk", poolMax: 20, poolMin: 2 });
  expect(config.redis).toEqual({
    mode: "sentinel",
    sentinels: [{ host: "s1", port: 26379 }, { host: "s2", port: 26379 }, { host: "::1", port: 26380 }],
    masterName: "knhk-master",
    password: undefined,
    sentinelPassword: undefined,
  });
  expect(config.domain).toMatchObject({ patternWindowSeconds: 300, validationTimeoutMs: 250 });
  expect(config.http).toMatchObject({ port: 8081, metricsPort: 9091 });
  // The start-up summary never carries credentials.
  expect(JSON.stringify(describeConfig(config))).not.toContain("secret");
});

test.each([
  [{ DATABASE_URL: "mysql://db/knhk" }, "DATABASE_URL", /postgres:\/\//],
  [{ DB_POOL_MAX_CONNECTIONS: "fifty" }, "DB_POOL_MAX_CONNECTIONS", /whole number/],
  [{ DB_POOL_MAX_CONNECTIONS: "0" }, "DB_POOL_MAX_CONNECTIONS", /at least 1/],
  [{ DB_POOL_MAX_CONNECTIONS: "5", DB_POOL_MIN_CONNECTIONS: "10" }, "DB_POOL_MIN_CONNECTIONS", /must not exceed DB_POOL_MAX_CONNECTIONS/],
  [{ DB_POOL_MIN_CONNECTIONS: "-1" }, "DB_POOL_MIN_CONNECTIONS", /whole number/],
  [{ REDIS_URL: "http://cache:6379" }, "REDIS_URL", /redis:\/\//],
  [{ REDIS_URL: "redis://a:6379", REDIS_SENTINELS: "s1:26379", REDIS_SENTINEL_MASTER: "m" }, "REDIS_SENTINELS", /not both/],
  [{ REDIS_SENTINELS: "s1:26379" }, "REDIS_SENTINEL_MASTER", /required/],
  [{ REDIS_SENTINELS: "s1" }, "REDIS_SENTINELS", /not host:port/],
  [{ REDIS_SENTINELS: "s1:99999", REDIS_SENTINEL_MASTER: "m" }, "REDIS_SENTINELS", /not host:port/],
  [{ REDIS_SENTINEL_MASTER: "m" }, "REDIS_SENTINEL_MASTER", /without REDIS_SENTINELS/],
  [{ PATTERN_WINDOW_SECONDS: "1.5" }, "PATTERN_WINDOW_SECONDS", /whole number/],
  [{ VALIDATION_TIMEOUT_MS: "0" }, "VALIDATION_TIMEOUT_MS", /at least 1/],
  [{ KNHK_PORT: "70000" }, "KNHK_PORT", /at most 65535/],
  [{ KNHK_PORT: "9090" }, "KNHK_METRICS_PORT", /differ from KNHK_PORT/],
  [{ KNHK_LOG_LEVEL: "loud" }, "KNHK_LOG_LEVEL", /info/],
  [{ KNHK_MIGRATE_ON_START: "yes" }, "KNHK_MIGRATE_ON_START", /true or false/],
  [{ DATABASE_MIGRATION_URL: "postgres://owner@db/knhk" }, "DATABASE_MIGRATION_URL", /without DATABASE_URL/],
  [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, "OTEL_EXPORTER_OTLP_ENDPOINT", /http/],
  [{ KNHK_OIDC_AUDIENCES: "knhk-api,everyone" }, "KNHK_OIDC_AUDIENCES", /unknown audience everyone/],
  [{ KNHK_OIDC_ISSUERS: "[{" }, "KNHK_OIDC_ISSUERS", /not valid JSON/],
  [{ KNHK_OIDC_ISSUERS: '[{"claim_mapping":"google","issuer":"https://x"}]' }, "KNHK_OIDC_ISSUERS", /0\.claim_mapping/],
  [{ KNHK_OIDC_ISSUERS: '[{"claim_mapping":"okta","issuer":"https://x","extra":1}]' }, "KNHK_OIDC_ISSUERS", /extra/],
  [{ KNHK_OIDC_OKTA_ISSUER: "not a url" }, "KNHK_OIDC_OKTA_ISSUER", /http\(s\) URL/],
  [{ KNHK_OIDC_AZURE_JWKS_URI: "https://login.microsoftonline.com/t/discovery/v2.0/keys" }, "KNHK_OIDC_AZURE_JWKS_URI", /without KNHK_OIDC_AZURE_ISSUER/],
  [
    { KNHK_OIDC_ISSUERS: '[{"claim_mapping":"okta","issuer":"https://corp.okta.com/oauth2/default"}]', KNHK_OIDC_OKTA_ISSUER: "https://corp.okta.com/oauth2/default" },
    "KNHK_OIDC_ISSUERS",
    /configured twice/,
  ],
])("%o is refused naming %s", (env, variable, reason) => refused(env as Record<string, string>, variable, reason));

test("OIDC issuers: JSON list and per-provider variables, JWKS URIs derived per provider", () => {
  const config = loadConfig({
    KNHK_OIDC_ISSUERS: JSON.stringify([{ name: "corp", claim_mapping: "okta", issuer: "https://corp.okta.com/oauth2/default", audiences: ["knhk-api"] }]),
    KNHK_OIDC_AZURE_ISSUER: "https://login.microsoftonline.com/tenant-id/v2.0",
    KNHK_OIDC_KEYCLOAK_ISSUER: "https://sso.example.com/realms/knhk",
    KNHK_OIDC_KEYCLOAK_JWKS_URI: "https://sso.example.com/realms/knhk/keys",
  });
  expect(config.oidc.issuers).toEqual([
    { name: "corp", claimMapping: "okta", issuer: "https://corp.okta.com/oauth2/default", jwksUri: "https://corp.okta.com/oauth2/default/v1/keys", audiences: ["knhk-api"], mfa: DEFAULT_MFA_RULES.okta },
    { name: "azure", claimMapping: "azure", issuer: "https://login.microsoftonline.com/tenant-id/v2.0", jwksUri: "https://login.microsoftonline.com/tenant-id/discovery/v2.0/keys", audiences: ["knhk-api", "knhk-admin", "knhk-cli"], mfa: DEFAULT_MFA_RULES.azure },
    { name: "keycloak", claimMapping: "keycloak", issuer: "https://sso.example.com/realms/knhk", jwksUri: "https://sso.example.com/realms/knhk/keys", audiences: ["knhk-api", "knhk-admin", "knhk-cli"], mfa: DEFAULT_MFA_RULES.keycloak },
  ]);
  expect(defaultJwksUri("keycloak", "https://sso.example.com/realms/knhk/")).toBe("https://sso.example.com/realms/knhk/protocol/openid-connect/certs");
});

test("a bad value stops a real start-up with exit code 1, naming the variable and the reason", async () => {
  const root = join(__dirname, "..", "..");
  const error = await run(join(root, "node_modules", ".bin", "tsx"), ["app/src/main.ts"], {
    cwd: root,
    env: { PATH: process.env.PATH, DB_POOL_MAX_CONNECTIONS: "lots" },
    timeout: 60_000,
  }).catch((e: { code: number; stderr: string }) => e);
  expect((error as { code: number }).code).toBe(1);
  expect((error as { stderr: string }).stderr).toContain("invalid configuration: DB_POOL_MAX_CONNECTIONS: must be a whole number");
}, 60_000);

test("KNHK_TLS_CERT_FILE and KNHK_TLS_KEY_FILE: both or neither, with the reload interval", () => {
  expect(loadConfig({}).http.tls).toBeUndefined();
  expect(loadConfig({ KNHK_TLS_CERT_FILE: "/etc/knhk/tls/tls.crt", KNHK_TLS_KEY_FILE: "/etc/knhk/tls/tls.key" }).http.tls).toEqual({ certFile: "/etc/knhk/tls/tls.crt", keyFile: "/etc/knhk/tls/tls.key", reloadSeconds: 60 });
  expect(() => loadConfig({ KNHK_TLS_CERT_FILE: "/etc/knhk/tls/tls.crt" })).toThrow(new ConfigError("KNHK_TLS_KEY_FILE", "required when KNHK_TLS_CERT_FILE is set"));
  expect(() => loadConfig({ KNHK_TLS_KEY_FILE: "/etc/knhk/tls/tls.key" })).toThrow(new ConfigError("KNHK_TLS_CERT_FILE", "required when KNHK_TLS_KEY_FILE is set"));
  expect(() => loadConfig({ KNHK_TLS_CERT_FILE: "a", KNHK_TLS_KEY_FILE: "b", KNHK_TLS_RELOAD_SECONDS: "0" })).toThrow(/KNHK_TLS_RELOAD_SECONDS: must be at least 1/);
});
