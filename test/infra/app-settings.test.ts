/**
 * The ConfigMap `knhk-config` as the service reads it: the rendered data, fed to the service's
 * own `loadConfig`, yields the issuers, pool and timing the stack config sets.
 */
import fc from "fast-check";
import { DEFAULT_LOG_LEVEL, loadConfig, LOG_LEVELS, SERVICE_TUNING } from "../../app/src/config/env";
import { DEFAULT_MFA_REQUIRED_ROLES, ROLES } from "../../app/src/auth/roles";
import { DEFAULT_AUDIENCES, DEFAULT_MFA_RULES, defaultJwksUri } from "../../app/src/config/oidc";
import { parseStackConfig } from "../../infra/config";
import type { OidcIssuerConfig } from "../../infra/config/oidc";
import { renderAppSettings } from "../../infra/render/app-settings";
import { PORTS } from "../../infra/render/topology";
import type { RenderResult } from "../../infra/testing/render";
import { renderTestStack, testIdpIssuer, testStackConfigFile } from "../support/stack-identifiers";
import { find } from "./helpers";

const REDIS = { sentinels: ["redis-sentinel-0.redis-sentinel.knhk.svc.cluster.local:26379"], masterName: "knhk" };

/** What the service makes of one configured issuer (its defaults for the optional fields). */
function asServiceSees(i: OidcIssuerConfig) {
  return { name: i.name, claimMapping: i.claimMapping, issuer: i.issuer, jwksUri: i.jwksUri ?? defaultJwksUri(i.claimMapping, i.issuer), audiences: i.audiences ?? [...DEFAULT_AUDIENCES], mfa: i.mfa ?? DEFAULT_MFA_RULES[i.claimMapping] };
}

describe("the rendered prod ConfigMap, read by the service", () => {
  const issuers = [
    { name: "corp-okta", claimMapping: "okta", issuer: "https://corp.okta.com/oauth2/default", audiences: ["knhk-api", "knhk-cli"] },
    { name: "partners", claimMapping: "azure", issuer: "https://login.microsoftonline.com/7d3f0c8e-2b6a-4d1e-9a57-3c1b2e4f6a80/v2.0" },
    { name: "ops", claimMapping: "keycloak", issuer: "https://sso.ops.knhk-tests.internal/realms/knhk", jwksUri: "https://sso.ops.knhk-tests.internal/keys", mfa: { acr: ["gold"] } },
  ];
  let prod: RenderResult;
  beforeAll(async () => {
    prod = await renderTestStack("prod", { overlay: { "knhk:app": { oidc: { issuers, clockToleranceSeconds: 15, maxTokenAgeSeconds: 1800, mfaRequiredRoles: [...DEFAULT_MFA_REQUIRED_ROLES, "analyst"] } } } });
  }, 120_000);

  test("yields the configured issuers, timing and pool", () => {
    const data = find(prod, "ConfigMap", "knhk-config").data as Record<string, string>;
    const config = loadConfig(data);
    expect(config.oidc).toEqual({
      issuers: [
        { name: "corp-okta", claimMapping: "okta", issuer: "https://corp.okta.com/oauth2/default", jwksUri: "https://corp.okta.com/oauth2/default/v1/keys", audiences: ["knhk-api", "knhk-cli"], mfa: DEFAULT_MFA_RULES.okta },
        { name: "partners", claimMapping: "azure", issuer: "https://login.microsoftonline.com/7d3f0c8e-2b6a-4d1e-9a57-3c1b2e4f6a80/v2.0", jwksUri: "https://login.microsoftonline.com/7d3f0c8e-2b6a-4d1e-9a57-3c1b2e4f6a80/discovery/v2.0/keys", audiences: [...DEFAULT_AUDIENCES], mfa: DEFAULT_MFA_RULES.azure },
        { name: "ops", claimMapping: "keycloak", issuer: "https://sso.ops.knhk-tests.internal/realms/knhk", jwksUri: "https://sso.ops.knhk-tests.internal/keys", audiences: [...DEFAULT_AUDIENCES], mfa: { amr: [], acr: ["gold"] } },
      ],
      clockToleranceSeconds: 15,
      maxTokenAgeSeconds: 1800,
      mfaRequiredRoles: ["analyst", "proposer", "validator", "operator", "administrator"],
    });
    expect(config.database).toMatchObject({ poolMax: 8, poolMin: 2 });
    expect(config.http).toMatchObject({ port: PORTS.appHttp, metricsPort: PORTS.appMetrics });
    expect(config.redis).toMatchObject({ mode: "sentinel", masterName: "knhk" });
    expect(config.http.tls).toEqual({ certFile: "/etc/knhk/tls/tls.crt", keyFile: "/etc/knhk/tls/tls.key", reloadSeconds: 60 });
  });

  test("keeps the keys the component adds (ports, Sentinels); no embedded database with Vault", () => {
    const data = find(prod, "ConfigMap", "knhk-config").data as Record<string, string>;
    expect(Object.keys(data)).toEqual(expect.arrayContaining([
      "DB_POOL_MAX_CONNECTIONS", "DB_POOL_MIN_CONNECTIONS", "KNHK_LOG_LEVEL", "KNHK_METRICS_PORT",
      "KNHK_MFA_REQUIRED_ROLES", "KNHK_OIDC_CLOCK_TOLERANCE_SECONDS", "KNHK_OIDC_ISSUERS", "KNHK_OIDC_MAX_TOKEN_AGE_SECONDS", "KNHK_PORT",
      "PATTERN_WINDOW_SECONDS", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "VALIDATION_TIMEOUT_MS",
    ]));
    expect(data.KNHK_EMBEDDED_DATA_DIR).toBeUndefined();
  });
});

describe("the receipt log's origin", () => {
  test("dev, staging and prod name their own; the service reads it from the ConfigMap; the local stack keeps the service default", () => {
    for (const [stack, origin] of [["prod", "knhk.prod/receipts"], ["staging", "knhk.staging/receipts"], ["dev", "knhk.dev/receipts"]]) {
      const cfg = parseStackConfig(stack, testStackConfigFile(stack));
      expect(loadConfig(renderAppSettings(cfg.app, { redis: REDIS })).tlog.origin).toBe(origin);
    }
    const local = parseStackConfig("local", {});
    expect(renderAppSettings(local.app, { redis: REDIS }).KNHK_TLOG_ORIGIN).toBeUndefined();
  });

  test("an origin a signed note cannot carry is refused by the stack config, naming the key, as the service would", () => {
    for (const origin of ["two words", "a+b"]) {
      expect(() => parseStackConfig("local", { "knhk:app": { settings: { KNHK_TLOG_ORIGIN: origin } } })).toThrow(/knhk:app\.settings\.KNHK_TLOG_ORIGIN.*printable ASCII/);
      expect(() => loadConfig({ KNHK_TLOG_ORIGIN: origin })).toThrow(/KNHK_TLOG_ORIGIN: must be 1-255 printable ASCII/);
    }
  });
});

describe("settings the stack config and the service both check", () => {
  const accepts = {
    stack: (settings: Record<string, unknown>) => {
      try {
        parseStackConfig("local", { "knhk:app": { settings } });
        return true;
      } catch {
        return false;
      }
    },
    service: (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return true;
      } catch {
        return false;
      }
    },
  };

  test("every log level the service accepts, and nothing else, passes the stack config", () => {
    for (const level of [...LOG_LEVELS, "verbose", "INFO", ""]) {
      expect({ level, stack: accepts.stack({ KNHK_LOG_LEVEL: level }) }).toEqual({ level, stack: accepts.service({ KNHK_LOG_LEVEL: level }) && level !== "" });
    }
    expect(loadConfig({}).logLevel).toBe(DEFAULT_LOG_LEVEL);
    expect(parseStackConfig("local", {}).app.settings.KNHK_LOG_LEVEL).toBe(DEFAULT_LOG_LEVEL);
  });

  test("the tuning settings have one set of bounds: the stack config refuses exactly what the service would", () => {
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(SERVICE_TUNING) as (keyof typeof SERVICE_TUNING)[])), fc.integer({ min: -5, max: 700_000 }), (key, value) => {
        expect(accepts.stack({ [key]: value })).toBe(accepts.service({ [key]: String(value) }));
      }),
    );
    for (const [key, rule] of Object.entries(SERVICE_TUNING)) {
      for (const value of [rule.min - 1, rule.min, rule.max, rule.max + 1]) expect({ key, value, stack: accepts.stack({ [key]: value }) }).toEqual({ key, value, stack: accepts.service({ [key]: String(value) }) });
    }
  });
});

describe("renderAppSettings", () => {
  test("the local stack: no issuer, the embedded database's directory", () => {
    const cfg = parseStackConfig("local", {});
    const data = renderAppSettings(cfg.app, { redis: REDIS, embeddedDataDir: "/var/lib/knhk" });
    expect(data.KNHK_OIDC_ISSUERS).toBeUndefined();
    expect(data.KNHK_EMBEDDED_DATA_DIR).toBe("/var/lib/knhk");
    expect(loadConfig(data).oidc.issuers).toEqual([]);
    expect(loadConfig(data).database.embeddedDir).toBe("/var/lib/knhk");
  });

  test("each deployed stack's test issuer reaches the service", async () => {
    for (const stack of ["dev", "staging"]) {
      const cfg = parseStackConfig(stack, testStackConfigFile(stack));
      const config = loadConfig(renderAppSettings(cfg.app, { redis: REDIS }));
      expect(config.oidc.issuers.map((i) => i.issuer)).toEqual([testIdpIssuer(stack)]);
    }
  });

  const issuerArb = fc.record(
    {
      name: fc.stringMatching(/^[a-z0-9-]{1,20}$/),
      claimMapping: fc.constantFrom("okta", "azure", "keycloak"),
      issuer: fc.webUrl({ validSchemes: ["https"], withQueryParameters: true, withFragments: false }),
      jwksUri: fc.webUrl({ validSchemes: ["https"] }),
      audiences: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 3 }),
      mfa: fc.record({ amr: fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 3 }), acr: fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 3 }) }),
    },
    { requiredKeys: ["name", "claimMapping", "issuer"] },
  );

  test("property: whatever the stack schema accepts, the service reads back unchanged", () => {
    fc.assert(
      fc.property(fc.array(issuerArb, { maxLength: 4 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 60, max: 86_400 }), fc.subarray([...ROLES]), (issuers, tolerance, maxAge, mfaRequiredRoles) => {
        let cfg;
        try {
          cfg = parseStackConfig("local", { "knhk:app": { oidc: { issuers, clockToleranceSeconds: tolerance, maxTokenAgeSeconds: maxAge, mfaRequiredRoles } } });
        } catch {
          // Refused by the stack schema (e.g. the same issuer twice): the service must refuse it too.
          const json = JSON.stringify(issuers.map((i) => ({ name: i.name, claim_mapping: i.claimMapping, issuer: i.issuer, jwks_uri: i.jwksUri, audiences: i.audiences, mfa: i.mfa })));
          const names = issuers.map((i) => i.name);
          const duplicateName = new Set(names).size !== names.length;
          if (!duplicateName) expect(() => loadConfig({ KNHK_OIDC_ISSUERS: json })).toThrow();
          return;
        }
        const config = loadConfig(renderAppSettings(cfg.app, { redis: REDIS }));
        expect(config.oidc.issuers).toEqual(cfg.app.oidc.issuers.map(asServiceSees));
        expect(config.oidc.clockToleranceSeconds).toBe(tolerance);
        expect(config.oidc.maxTokenAgeSeconds).toBe(maxAge);
        expect(config.oidc.mfaRequiredRoles).toEqual(mfaRequiredRoles);
      }),
      { numRuns: 200 },
    );
  });
});
