/**
 * The config rules a deployed stack must meet before anything is declared: OIDC issuers, the
 * account-specific identifiers (no defaults, no placeholders) and the PostgreSQL connection
 * budget. Each failure stops the program naming the key.
 */
import fc from "fast-check";
import { loadConfig } from "../../app/src/config/env";
import { parseStackConfig, StackConfigError } from "../../infra/config";
import { largestPoolThatFits, reservedConnections } from "../../infra/config/connection-budget";
import { mergeConfig, readStackConfigFile } from "../../infra/testing/render";
import { TEST_EKS_ISSUER, TEST_OIDC_PROVIDER_ARN, testIdentifiers, testStackConfig, testStackConfigFile } from "../support/stack-identifiers";

const DEPLOYED = ["dev", "staging", "prod"] as const;

function problemsOf(stack: string, raw: Record<string, unknown>): string[] {
  try {
    parseStackConfig(stack, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(StackConfigError);
    return [...(err as StackConfigError).problems];
  }
  throw new Error("expected the config to be rejected");
}

/** prod's stack file with the test identifiers, then `overlay` on top. */
const prodWith = (overlay: Record<string, unknown>) => mergeConfig(testStackConfigFile("prod"), overlay);
const issuer = (fields: Record<string, unknown>) => ({ "knhk:app": { oidc: { issuers: [{ name: "corp", claimMapping: "okta", issuer: "https://corp.okta.com/oauth2/default", ...fields }] } } });

describe("the committed stack files leave the identifiers to the deploying team", () => {
  test.each(DEPLOYED)("%s without them: every missing key is named at once", (stack) => {
    const problems = problemsOf(stack, readStackConfigFile(stack));
    expect(problems).toEqual([
      "knhk:monitoring.receivers.ticketUrl = (missing): required when knhk:monitoring.enabled is true: the ticket system's Alertmanager webhook URL (no default: it is organisation-specific)",
      expect.stringMatching(/^knhk:aws\.oidcProviderArn = \(missing\): required when knhk:aws\.enabled is true: the IAM OIDC provider ARN/),
      expect.stringMatching(/^knhk:aws\.oidcIssuer = \(missing\): required when knhk:aws\.enabled is true/),
      expect.stringMatching(new RegExp(`^knhk:app\\.oidc\\.issuers = \\[\\]: at least one OIDC issuer is required in stack "${stack}"`)),
    ]);
  });

  test("local needs none of them", () => {
    const cfg = parseStackConfig("local", readStackConfigFile("local"));
    expect(cfg.aws.enabled).toBe(false);
    expect(cfg.app.oidc.issuers).toEqual([]);
  });

  test("the test identifiers are the only difference between a stack file and a deployable config", () => {
    for (const stack of DEPLOYED) {
      const cfg = testStackConfig(stack);
      expect(cfg.aws).toMatchObject({ enabled: true, oidcProviderArn: TEST_OIDC_PROVIDER_ARN, oidcIssuer: TEST_EKS_ISSUER });
      expect(Object.keys(testIdentifiers(stack)).sort()).toEqual(["knhk:app", "knhk:aws", "knhk:monitoring"]);
    }
  });
});

describe("knhk:app.oidc", () => {
  test("issuers, audiences and timing reach the validated config", () => {
    const cfg = parseStackConfig("prod", prodWith({
      "knhk:app": { oidc: { issuers: [{ name: "corp", claimMapping: "azure", issuer: "https://login.microsoftonline.com/7d3f0c8e-2b6a-4d1e-9a57-3c1b2e4f6a80/v2.0", audiences: ["knhk-api"] }], clockToleranceSeconds: 30, maxTokenAgeSeconds: 900 } },
    }));
    expect(cfg.app.oidc).toEqual({
      issuers: [{ name: "corp", claimMapping: "azure", issuer: "https://login.microsoftonline.com/7d3f0c8e-2b6a-4d1e-9a57-3c1b2e4f6a80/v2.0", audiences: ["knhk-api"] }],
      clockToleranceSeconds: 30,
      maxTokenAgeSeconds: 900,
      mfaRequiredRoles: ["proposer", "validator", "operator", "administrator"],
    });
  });

  test.each(DEPLOYED)("%s: the roles that need MFA may be widened, never narrowed", (stack) => {
    const withRoles = (mfaRequiredRoles: string[]) => mergeConfig(testStackConfigFile(stack), { "knhk:app": { oidc: { mfaRequiredRoles } } });
    expect(parseStackConfig(stack, withRoles(["observer", "proposer", "validator", "operator", "administrator"])).app.oidc.mfaRequiredRoles).toHaveLength(5);
    expect(problemsOf(stack, withRoles(["administrator", "proposer"]))).toEqual([
      'knhk:app.oidc.mfaRequiredRoles = ["administrator","proposer"]: must include validator, operator outside the local stack (roles that change state are held only after multi-factor authentication; a stack may add roles, not remove these)',
    ]);
    expect(problemsOf(stack, withRoles(["operator", "operator"]))[0]).toMatch(/^knhk:app\.oidc\.mfaRequiredRoles = \["operator","operator"\]: lists a role twice/);
    expect(problemsOf(stack, withRoles(["root"]))[0]).toMatch(/^knhk:app\.oidc\.mfaRequiredRoles\[0\] = "root": /);
  });

  test.each(["staging", "prod"])("%s: the API's certificate Secret is required", (stack) => {
    const file = structuredClone(testStackConfigFile(stack)) as Record<string, any>;
    delete file["knhk:app"].tls;
    expect(problemsOf(stack, file)).toEqual([
      `knhk:app.tls = (missing): required in stack "${stack}": the API must serve HTTPS (TLS 1.3); set knhk:app.tls.secretName to the kubernetes.io/tls Secret (e.g. a cert-manager Certificate's) holding tls.crt and tls.key`,
    ]);
  });

  test("local may require MFA of no role (loopback tests, a developer's IdP without a second factor)", () => {
    expect(parseStackConfig("local", { "knhk:app": { oidc: { mfaRequiredRoles: [] } } }).app.oidc.mfaRequiredRoles).toEqual([]);
  });

  test("an issuer's MFA rule must name at least one claim value", () => {
    expect(problemsOf("prod", prodWith(issuer({ mfa: {} })))).toEqual([
      `knhk:app.oidc.issuers[0].mfa = {"amr":[],"acr":[]}: needs at least one amr or acr value (otherwise no token could prove MFA)`,
    ]);
  });

  test.each(DEPLOYED)("%s: an http issuer or JWKS location is refused, naming the key", (stack) => {
    const problems = problemsOf(stack, mergeConfig(testStackConfigFile(stack), issuer({ issuer: "http://corp.okta.com/oauth2/default", jwksUri: "http://corp.okta.com/keys" })));
    expect(problems).toEqual([
      'knhk:app.oidc.issuers[0].issuer = "http://corp.okta.com/oauth2/default": must be an https URL outside the local stack (tokens and keys must not travel in clear text)',
      'knhk:app.oidc.issuers[0].jwksUri = "http://corp.okta.com/keys": must be an https URL outside the local stack (tokens and keys must not travel in clear text)',
    ]);
  });

  test("local may use a loopback http issuer (tests, a developer's Keycloak)", () => {
    const cfg = parseStackConfig("local", mergeConfig(readStackConfigFile("local"), issuer({ issuer: "http://127.0.0.1:8180/realms/knhk" })));
    expect(cfg.app.oidc.issuers[0].issuer).toBe("http://127.0.0.1:8180/realms/knhk");
  });

  test("an issuer configured twice is refused (a token must map to one claim mapping); so is a reused name", () => {
    const twice = { "knhk:app": { oidc: { issuers: [
      { name: "a", claimMapping: "okta", issuer: "https://corp.okta.com/oauth2/default" },
      { name: "a", claimMapping: "keycloak", issuer: "https://corp.okta.com/oauth2/default" },
    ] } } };
    expect(problemsOf("prod", prodWith(twice))).toEqual([
      'knhk:app.oidc.issuers[1].issuer = "https://corp.okta.com/oauth2/default": is configured twice: a token must map to exactly one claim mapping',
      'knhk:app.oidc.issuers[1].name = "a": is used by another issuer: the audit trail names the issuer',
    ]);
  });

  test("the service's own field rules: claim mapping, name, URL, audiences, bounds", () => {
    const problems = problemsOf("prod", prodWith({ "knhk:app": { oidc: { issuers: [{ name: "Corp IdP", claimMapping: "github", issuer: "corp.okta.com", audiences: [] }], clockToleranceSeconds: 301 } } }));
    expect(problems).toEqual([
      expect.stringMatching(/^knhk:app\.oidc\.issuers\[0\]\.name = "Corp IdP": lower-case letters, digits and '-'/),
      expect.stringMatching(/^knhk:app\.oidc\.issuers\[0\]\.claimMapping = "github": .*"okta"\|"azure"\|"keycloak"/),
      'knhk:app.oidc.issuers[0].issuer = "corp.okta.com": must be an http(s) URL',
      expect.stringMatching(/^knhk:app\.oidc\.issuers\[0\]\.audiences = \[\]: /),
      expect.stringMatching(/^knhk:app\.oidc\.clockToleranceSeconds = 301: .*<=300/),
    ]);
    expect(problemsOf("prod", prodWith({ "knhk:app": { oidc: { issuers: [{ claimMapping: "okta", issuer: "https://corp.okta.com" }] } } }))).toEqual([
      expect.stringMatching(/^knhk:app\.oidc\.issuers\[0\]\.name = \(missing\): /),
    ]);
  });

  test("placeholder identity providers are refused outside local", () => {
    for (const url of ["https://login.example.com/", "https://idp.example/realms/knhk", "https://sso.corp.test/realms/knhk", "https://changeme.okta.com/oauth2/default"]) {
      const [p] = problemsOf("staging", mergeConfig(testStackConfigFile("staging"), issuer({ issuer: url })));
      expect(p).toMatch(new RegExp(`^knhk:app\\.oidc\\.issuers\\[0\\]\\.issuer = "${url.replace(/[.?]/g, "\\$&")}": .*(reserved|placeholder).*: set the identity provider's real issuer$`));
    }
  });

  test("property: the stack schema's timing bounds are the service's (what one accepts, the other accepts)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -10, max: 100_000 }), fc.constantFrom("clockToleranceSeconds", "maxTokenAgeSeconds"), (n, field) => {
        const variable = field === "clockToleranceSeconds" ? "KNHK_OIDC_CLOCK_TOLERANCE_SECONDS" : "KNHK_OIDC_MAX_TOKEN_AGE_SECONDS";
        let stackAccepts = true;
        try {
          parseStackConfig("local", { "knhk:app": { oidc: { [field]: n } } });
        } catch {
          stackAccepts = false;
        }
        let serviceAccepts = true;
        try {
          loadConfig({ [variable]: String(n) });
        } catch {
          serviceAccepts = false;
        }
        // Negative numbers are not whole-number text for the service either way.
        return stackAccepts === serviceAccepts;
      }),
    );
  });
});

describe("knhk:aws identifiers: required when enabled, never a placeholder", () => {
  const aws = (fields: Record<string, unknown>) => prodWith({ "knhk:aws": fields });
  const provider = (account: string, id: string) => `arn:aws:iam::${account}:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/${id}`;

  const realId = "B1E2C3D4A5F60718293A4B5C6D7E8F90";
  test.each([
    ["the former schema default", provider("000000000000", "KNHK"), "oidc.eks.eu-central-1.amazonaws.com/id/KNHK", ["account 000000000000 is a placeholder, not a real AWS account id; \"KNHK\" is a placeholder", '"KNHK" is a placeholder']],
    ["the AWS documentation account", provider("123456789012", realId), `oidc.eks.eu-central-1.amazonaws.com/id/${realId}`, ["account 123456789012 is a placeholder, not a real AWS account id"]],
    ["a repeated-digit account", provider("111111111111", realId), `oidc.eks.eu-central-1.amazonaws.com/id/${realId}`, ["account 111111111111 is a placeholder, not a real AWS account id"]],
    ["the AWS documentation cluster id", provider("314159265358", "EXAMPLED539D4633E53DE1B71EXAMPLE"), "oidc.eks.eu-central-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE", ['"EXAMPLED539D4633E53DE1B71EXAMPLE" is a placeholder', '"EXAMPLED539D4633E53DE1B71EXAMPLE" is a placeholder']],
    ["a CHANGEME cluster id", provider("314159265358", "CHANGEME"), "oidc.eks.eu-central-1.amazonaws.com/id/CHANGEME", ['"CHANGEME" is a placeholder', '"CHANGEME" is a placeholder']],
    ["an example.com issuer", "arn:aws:iam::314159265358:oidc-provider/oidc.example.com/id/B1E2C3D4", "oidc.example.com/id/B1E2C3D4", ["host oidc.example.com is reserved for documentation/tests (RFC 2606/6761)", "host oidc.example.com is reserved for documentation/tests (RFC 2606/6761)"]],
  ])("%s stops the program naming the key", (_what, arn, issuerHost, reasons) => {
    const problems = problemsOf("prod", aws({ oidcProviderArn: arn, oidcIssuer: issuerHost }));
    const keys = ["knhk:aws.oidcProviderArn", "knhk:aws.oidcIssuer"];
    expect(problems).toHaveLength(reasons.length);
    problems.forEach((p, i) => {
      expect(p.startsWith(`${keys[i]} = "`)).toBe(true);
      expect(p.endsWith(`: ${reasons[i]}`)).toBe(true);
    });
  });

  test("the issuer must be the provider the ARN names", () => {
    expect(problemsOf("prod", aws({ oidcIssuer: "oidc.eks.eu-west-1.amazonaws.com/id/B1E2C3D4A5F60718293A4B5C6D7E8F90" }))).toEqual([
      `knhk:aws.oidcIssuer = "oidc.eks.eu-west-1.amazonaws.com/id/B1E2C3D4A5F60718293A4B5C6D7E8F90": must be the issuer oidcProviderArn names (${TEST_EKS_ISSUER})`,
    ]);
  });

  test("switched off, nothing is required (the local stack)", () => {
    expect(parseStackConfig("local", { "knhk:aws": { enabled: false } }).aws).toMatchObject({ enabled: false });
    expect(problemsOf("local", { "knhk:aws": { enabled: true } })).toHaveLength(2);
  });
});

describe("knhk:monitoring.receivers.ticketUrl: the organisation's ticket system", () => {
  test("required whenever monitoring is on, in every stack", () => {
    expect(problemsOf("local", { "knhk:monitoring": { enabled: true } })).toEqual([
      "knhk:monitoring.receivers.ticketUrl = (missing): required when knhk:monitoring.enabled is true: the ticket system's Alertmanager webhook URL (no default: it is organisation-specific)",
    ]);
    expect(parseStackConfig("local", { "knhk:monitoring": { enabled: false } }).monitoring.receivers.ticketUrl).toBeUndefined();
  });

  test("a placeholder host is refused outside local", () => {
    expect(problemsOf("prod", prodWith({ "knhk:monitoring": { receivers: { ticketUrl: "https://tickets.example.com/api/alertmanager" } } }))).toEqual([
      'knhk:monitoring.receivers.ticketUrl = "https://tickets.example.com/api/alertmanager": host tickets.example.com is reserved for documentation/tests (RFC 2606/6761): set the ticket system\'s real webhook',
    ]);
  });
});

describe("the PostgreSQL connection budget", () => {
  test("every committed stack fits: pool × HPA max × 2 colours + reserve <= max_connections", () => {
    for (const stack of ["local", ...DEPLOYED]) {
      const cfg = testStackConfig(stack);
      const input = { maxConnections: cfg.patroni.postgresParameters.max_connections, superuserReservedConnections: cfg.patroni.postgresParameters.superuser_reserved_connections, members: cfg.patroni.members, maxReplicas: cfg.app.autoscaling.maxReplicas };
      const used = cfg.app.settings.DB_POOL_MAX_CONNECTIONS * cfg.app.autoscaling.maxReplicas * 2 + reservedConnections(input);
      expect({ stack, used, fits: used <= input.maxConnections }).toEqual({ stack, used, fits: true });
    }
  });

  test("the stack files' pools (README and their comments say so), and what a stack without one gets", () => {
    expect(testStackConfig("prod").app.settings).toMatchObject({ DB_POOL_MAX_CONNECTIONS: 8, DB_POOL_MIN_CONNECTIONS: 2 });
    expect(testStackConfig("staging").app.settings).toMatchObject({ DB_POOL_MAX_CONNECTIONS: 8, DB_POOL_MIN_CONNECTIONS: 2 });
    expect(testStackConfig("dev").app.settings).toMatchObject({ DB_POOL_MAX_CONNECTIONS: 20, DB_POOL_MIN_CONNECTIONS: 2 });
    expect(testStackConfig("local").app.settings).toMatchObject({ DB_POOL_MAX_CONNECTIONS: 20, DB_POOL_MIN_CONNECTIONS: 10 });
    expect(reservedConnections({ maxConnections: 200, superuserReservedConnections: 3, members: 3, maxReplicas: 10 })).toBe(35);
    expect(reservedConnections({ maxConnections: 200, superuserReservedConnections: 3, members: 2, maxReplicas: 4 })).toBe(34);
    // prod's shape without an explicit pool: the largest that fits.
    const unset = mergeConfig(testStackConfigFile("prod"), { "knhk:app": { settings: { DB_POOL_MAX_CONNECTIONS: undefined, DB_POOL_MIN_CONNECTIONS: undefined } } });
    expect(parseStackConfig("prod", JSON.parse(JSON.stringify(unset))).app.settings).toMatchObject({ DB_POOL_MAX_CONNECTIONS: 8, DB_POOL_MIN_CONNECTIONS: 8 });
  });

  test("prod's former pool of 50 stops the program, naming the key and printing the arithmetic", () => {
    expect(problemsOf("prod", prodWith({ "knhk:app": { settings: { DB_POOL_MAX_CONNECTIONS: 50 } } }))).toEqual([
      "knhk:app.settings.DB_POOL_MAX_CONNECTIONS = 50: connection budget exceeded: 50 per pod × 10 (autoscaling.maxReplicas) × 2 colours = 1000, " +
        "+ reserve 35 (3 superuser_reserved_connections + 2 Patroni + 2 pg_rewind of 2 rejoining member(s) + 2 postgres_exporter + 2 pgBackRest + 4 Vault admin pool + 4 migration Job + 12 ledger CronJobs + 4 operator CLI) = 1035 " +
        "> max_connections 200 (knhk:patroni.postgresParameters.max_connections); at most 8 per pod fits, or raise max_connections to 1035",
    ]);
  });

  test("a larger max_connections admits a larger pool; the derived default follows it", () => {
    const cfg = parseStackConfig("prod", prodWith({ "knhk:patroni": { postgresParameters: { max_connections: 1035 } }, "knhk:app": { settings: { DB_POOL_MAX_CONNECTIONS: 50 } } }));
    expect(cfg.app.settings.DB_POOL_MAX_CONNECTIONS).toBe(50);
    expect(parseStackConfig("local", { "knhk:patroni": { postgresParameters: { max_connections: 435 } } }).app.settings.DB_POOL_MAX_CONNECTIONS).toBe(20);
  });

  test("raising the HPA max beyond the pool's budget is refused, with what fits", () => {
    expect(problemsOf("prod", prodWith({ "knhk:app": { autoscaling: { maxReplicas: 12 } } }))).toEqual([
      expect.stringMatching(/^knhk:app\.settings\.DB_POOL_MAX_CONNECTIONS = 8: connection budget exceeded: 8 per pod × 12 \(autoscaling\.maxReplicas\) × 2 colours = 192, .* = 227 > max_connections 200 .*; at most 6 per pod fits, or raise max_connections to 227$/),
    ]);
  });

  test("a budget in which no pool fits names max_connections", () => {
    const problems = problemsOf("local", { "knhk:patroni": { postgresParameters: { max_connections: 40 } } });
    expect(problems).toEqual([expect.stringMatching(/^knhk:patroni\.postgresParameters\.max_connections = 40: connection budget exceeded: 1 per pod × 10 .* not even 1 per pod fits: lower autoscaling\.maxReplicas, or raise max_connections to 55$/)]);
  });

  test("property: a derived pool always fits and one more connection per pod would not", () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 5000 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 20 }), (maxConnections, members, maxReplicas, reserved) => {
        const input = { maxConnections, superuserReservedConnections: reserved, members, maxReplicas };
        const fits = largestPoolThatFits(input);
        const used = (pool: number) => pool * maxReplicas * 2 + reservedConnections(input);
        return (fits === 0 || used(fits) <= maxConnections) && used(fits + 1) > maxConnections;
      }),
    );
  });
});
