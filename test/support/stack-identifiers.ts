/**
 * The one fixture of account- and organisation-specific identifiers the tests supply to the
 * deployed stacks (dev, staging, prod). The committed stack files leave them out on purpose: the
 * deploying team sets its own (README, "Deploying an environment"), and the program refuses to
 * run without them. These values are recognisably from the tests (digits of π, a `TESTFIXTURE`
 * cluster id, an identity provider and a ticket system under `knhk-tests.internal`) and pass the placeholder rules
 * (infra/config/identifiers.ts), so the policy pack judges the rest of the render.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { parseStackConfig, type StackConfig } from "../../infra/config";
import { LOCAL_STACK } from "../../infra/config/stack-rules";
import { mergeConfig, readStackConfigFile, renderStack, type RenderOptions, type RenderResult } from "../../infra/testing/render";

export const TEST_AWS_ACCOUNT = "314159265358";
export const TEST_EKS_ISSUER = "oidc.eks.eu-central-1.amazonaws.com/id/KNHKTESTFIXTURE00000000000000001";
export const TEST_OIDC_PROVIDER_ARN = `arn:aws:iam::${TEST_AWS_ACCOUNT}:oidc-provider/${TEST_EKS_ISSUER}`;

export const TEST_TICKET_URL = "https://tickets.knhk-tests.internal/api/alertmanager";

/** The identity provider the tests configure for `stack` (Keycloak realm `knhk`). */
export function testIdpIssuer(stack: string): string {
  return `https://idp.${stack}.knhk-tests.internal/realms/knhk`;
}

/** What the tests add to `Pulumi.<stack>.yaml` (nothing for `local`, which needs no identifiers). */
export function testIdentifiers(stack: string): Record<string, unknown> {
  if (stack === LOCAL_STACK) return {};
  return {
    "knhk:aws": { oidcProviderArn: TEST_OIDC_PROVIDER_ARN, oidcIssuer: TEST_EKS_ISSUER },
    "knhk:app": { oidc: { issuers: [{ name: "keycloak", claimMapping: "keycloak", issuer: testIdpIssuer(stack) }] } },
    "knhk:monitoring": { receivers: { ticketUrl: TEST_TICKET_URL } },
  };
}

/** `Pulumi.<stack>.yaml`'s config with the test identifiers. */
export function testStackConfigFile(stack: string): Record<string, unknown> {
  return mergeConfig(readStackConfigFile(stack), testIdentifiers(stack));
}

/** The validated config of `stack` with the test identifiers. */
export function testStackConfig(stack: string): StackConfig {
  return parseStackConfig(stack, testStackConfigFile(stack));
}

/** renderStack with the test identifiers merged over the stack file (or over `options.config`). */
export function renderTestStack(stack: string, options: RenderOptions = {}): Promise<RenderResult> {
  return renderStack(stack, { ...options, overlay: mergeConfig(testIdentifiers(stack), options.overlay ?? {}) });
}

/** Writes the test identifiers of `stack` to `<dir>/identifiers-<stack>.yaml` for `npm run render -- --overlay <file>`. */
export function writeTestIdentifiers(dir: string, stack: string): string {
  const file = join(dir, `identifiers-${stack}.yaml`);
  writeFileSync(file, stringify(testIdentifiers(stack)));
  return file;
}

/** Adds the test identifiers to `<projectDir>/Pulumi.<stack>.yaml` (a copy of the project; comments are not kept). */
export function addTestIdentifiersToStackFile(projectDir: string, stack: string): void {
  const file = join(projectDir, `Pulumi.${stack}.yaml`);
  const doc = parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
  writeFileSync(file, stringify({ ...doc, config: mergeConfig(doc.config ?? {}, testIdentifiers(stack)) }));
}
