/** The placeholder rules shared by the config schema and the policy pack (infra/config/identifiers.ts). */
import fc from "fast-check";
import {
  arnAccount,
  placeholderAccountProblem,
  placeholderArnProblems,
  placeholderHostProblem,
  placeholderIssuerProblem,
  placeholderUrlProblem,
} from "../../infra/config/identifiers";
import { TEST_AWS_ACCOUNT, TEST_EKS_ISSUER, TEST_OIDC_PROVIDER_ARN, TEST_TICKET_URL, testIdpIssuer } from "../support/stack-identifiers";

describe("placeholders are recognised", () => {
  test.each(["000000000000", "111111111111", "999999999999", "123456789012", "111122223333", "444455556666", "777788889999"])("account %s", (account) => {
    expect(placeholderAccountProblem(account)).toBe(`account ${account} is a placeholder, not a real AWS account id`);
  });

  test.each([
    ["oidc.eks.eu-central-1.amazonaws.com/id/KNHK", '"KNHK" is a placeholder'],
    ["oidc.eks.eu-central-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE", '"EXAMPLED539D4633E53DE1B71EXAMPLE" is a placeholder'],
    ["oidc.eks.eu-central-1.amazonaws.com/id/CHANGEME", '"CHANGEME" is a placeholder'],
    ["oidc.eks.eu-central-1.amazonaws.com/id/00000000000000000000000000000000", '"00000000000000000000000000000000" is a placeholder'],
    ["oidc.example.org/id/B1E2C3D4", "host oidc.example.org is reserved for documentation/tests (RFC 2606/6761)"],
    ["issuer.invalid/id/B1E2C3D4", "host issuer.invalid is reserved for documentation/tests (RFC 2606/6761)"],
  ])("IRSA issuer %s", (issuer, problem) => {
    expect(placeholderIssuerProblem(issuer)).toBe(problem);
  });

  test.each([
    ["https://login.example.com/", "host login.example.com is reserved for documentation/tests (RFC 2606/6761)"],
    ["https://idp.corp.test/realms/knhk", "host idp.corp.test is reserved for documentation/tests (RFC 2606/6761)"],
    ["https://your-org.okta.com/oauth2/default", "host your-org.okta.com is a placeholder"],
    ["https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0", '"00000000-0000-0000-0000-000000000000" is a placeholder'],
    ["https://sso.corp.internal/realms/CHANGEME", '"CHANGEME" is a placeholder'],
  ])("identity provider %s", (url, problem) => {
    expect(placeholderUrlProblem(url)).toBe(problem);
  });

  test("every ARN in a text is checked, the account and an OIDC provider's issuer", () => {
    const text = JSON.stringify({ a: "arn:aws:kms:eu-central-1:123456789012:key/k", b: ["arn:aws:iam::314159265358:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/KNHK"], c: "arn:aws:s3:::bucket/*" });
    expect(placeholderArnProblems(text)).toEqual([
      "arn:aws:kms:eu-central-1:123456789012:key/k: account 123456789012 is a placeholder, not a real AWS account id",
      'arn:aws:iam::314159265358:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/KNHK: "KNHK" is a placeholder',
    ]);
    expect(arnAccount("arn:aws:iam::314159265358:role/x")).toBe("314159265358");
    expect(arnAccount("arn:aws:s3:::bucket")).toBeUndefined();
  });
});

describe("real values pass", () => {
  test("the tests' own identifiers (so the policy pack judges the rest of the render)", () => {
    expect(placeholderAccountProblem(TEST_AWS_ACCOUNT)).toBeUndefined();
    expect(placeholderIssuerProblem(TEST_EKS_ISSUER)).toBeUndefined();
    expect(placeholderArnProblems(TEST_OIDC_PROVIDER_ARN)).toEqual([]);
    expect(placeholderUrlProblem(testIdpIssuer("prod"))).toBeUndefined();
    expect(placeholderUrlProblem(TEST_TICKET_URL)).toBeUndefined();
  });

  test.each([
    "https://corp.okta.com/oauth2/default",
    "https://login.microsoftonline.com/7d3f0c8e-2b6a-4d1e-9a57-3c1b2e4f6a80/v2.0",
    "https://sso.corp.internal/realms/knhk",
    "https://accounts.google.com",
  ])("identity provider %s (realm and server names such as knhk or default are real)", (url) => {
    expect(placeholderUrlProblem(url)).toBeUndefined();
  });

  test("a host that merely contains a word (todos, examples-app) is not a placeholder", () => {
    expect(placeholderHostProblem("todosapp.okta.com")).toBeUndefined();
    expect(placeholderHostProblem("examplesapp.corp.internal")).toBeUndefined();
  });
});

describe("hostile input", () => {
  test("property: no rule throws, whatever the text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => {
        placeholderAccountProblem(text);
        placeholderHostProblem(text);
        placeholderIssuerProblem(text);
        placeholderUrlProblem(text);
        expect(Array.isArray(placeholderArnProblems(text))).toBe(true);
      }),
    );
  });

  test("property: an ARN of any repeated-digit account is found inside arbitrary surrounding text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.integer({ min: 0, max: 9 }), fc.string({ maxLength: 40 }), (before, digit, after) => {
        const account = String(digit).repeat(12);
        const problems = placeholderArnProblems(`${before} arn:aws:iam::${account}:role/x ${after}`);
        expect(problems.some((p) => p.endsWith(`account ${account} is a placeholder, not a real AWS account id`))).toBe(true);
      }),
    );
  });
});
