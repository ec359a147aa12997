/** no-placeholder-identifiers: invented account ids and OIDC providers never reach a resource. */
import fc from "fast-check";
import { placeholderAccountProblem } from "../../infra/config/identifiers";
import { noPlaceholderIdentifiers, placeholderProblems } from "../../policy/policies/no-placeholder-identifiers";
import { TEST_AWS_ACCOUNT, TEST_EKS_ISSUER, TEST_OIDC_PROVIDER_ARN } from "../support/stack-identifiers";
import { byName, cleanStack, irsaTrustPolicy, mutate } from "./fixtures";
import { check } from "./helpers";

const clean = cleanStack("prod");
const role = byName(clean, "archive-service-role");

async function violations(name: string, change: (props: any) => void): Promise<string[]> {
  return (await check(noPlaceholderIdentifiers, byName(mutate(clean, name, change), name))).violations;
}

describe("no-placeholder-identifiers", () => {
  test("the clean stack's IRSA role, buckets and workloads pass", async () => {
    for (const r of clean) expect({ name: r.name, ...(await check(noPlaceholderIdentifiers, r)) }).toEqual({ name: r.name, violations: [] });
  });

  test("an IAM role trusting the former schema default is refused, naming the role, the property and the reason", async () => {
    const placeholder = "arn:aws:iam::000000000000:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/KNHK";
    const v = await violations("archive-service-role", (p) => (p.assumeRolePolicy = irsaTrustPolicy(placeholder, "oidc.eks.eu-central-1.amazonaws.com/id/KNHK")));
    expect(v).toEqual([
      `aws:iam/role:Role knhk-service: assumeRolePolicy.Statement[0].Principal.Federated: ${placeholder}: account 000000000000 is a placeholder, not a real AWS account id`,
      `aws:iam/role:Role knhk-service: assumeRolePolicy.Statement[0].Principal.Federated: ${placeholder}: "KNHK" is a placeholder`,
      'aws:iam/role:Role knhk-service: assumeRolePolicy.Statement[0].Condition.StringEquals.oidc.eks.eu-central-1.amazonaws.com/id/KNHK:sub: condition on issuer oidc.eks.eu-central-1.amazonaws.com/id/KNHK: "KNHK" is a placeholder',
      'aws:iam/role:Role knhk-service: assumeRolePolicy.Statement[0].Condition.StringEquals.oidc.eks.eu-central-1.amazonaws.com/id/KNHK:aud: condition on issuer oidc.eks.eu-central-1.amazonaws.com/id/KNHK: "KNHK" is a placeholder',
    ]);
  });

  test("a trust policy whose conditions name another provider than the one it trusts is refused", async () => {
    const other = "oidc.eks.eu-west-1.amazonaws.com/id/B1E2C3D4A5F60718293A4B5C6D7E8F90";
    const v = await violations("archive-service-role", (p) => (p.assumeRolePolicy = irsaTrustPolicy(TEST_OIDC_PROVIDER_ARN, other)));
    expect(v).toEqual([`aws:iam/role:Role knhk-service: assumeRolePolicy.Statement[0].Condition: conditions on ${other} but the trusted provider is ${TEST_EKS_ISSUER}: no token can satisfy both`]);
  });

  test("the documentation account anywhere: an ARN in a bucket's encryption, a bare id, inside a JSON policy", async () => {
    expect(await violations("archive-ledger-sse", (p) => (p.rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId = "arn:aws:kms:eu-central-1:123456789012:key/k"))).toEqual([
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration archive-ledger-sse: rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId: arn:aws:kms:eu-central-1:123456789012:key/k: account 123456789012 is a placeholder, not a real AWS account id",
    ]);
    expect(await violations("archive-data-policy", (p) => {
      const doc = JSON.parse(p.policy);
      doc.Statement[0].Condition.StringEquals = { "aws:SourceAccount": "111111111111" };
      p.policy = JSON.stringify(doc);
    })).toEqual([
      "aws:s3/bucketPolicy:BucketPolicy archive-data-policy: policy.Statement[0].Condition.StringEquals.aws:SourceAccount: account 111111111111 is a placeholder, not a real AWS account id",
    ]);
  });

  test("a Kubernetes object annotated with a placeholder role (IRSA on a ServiceAccount)", async () => {
    const sa = { ...role, type: "kubernetes:core/v1:ServiceAccount", name: "sa", props: { metadata: { name: "knhk-service", annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::000000000000:role/knhk-service" } } } };
    expect((await check(noPlaceholderIdentifiers, sa)).violations).toEqual([
      "kubernetes:core/v1:ServiceAccount knhk-service: metadata.annotations.eks.amazonaws.com/role-arn: arn:aws:iam::000000000000:role/knhk-service: account 000000000000 is a placeholder, not a real AWS account id",
    ]);
  });

  test("real-looking values pass: the test account, S3 ARNs (no account), numbers that are not accounts", () => {
    expect(placeholderProblems({ a: `arn:aws:iam::${TEST_AWS_ACCOUNT}:role/x`, b: "arn:aws:s3:::knhk-prod-ledger/*", c: 0, d: "000000000000000", e: 12 })).toEqual([]);
  });

  test("property: every repeated-digit account is refused wherever it sits in an ARN; the check never throws", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9 }), fc.constantFrom("iam", "kms", "sts", "logs"), fc.stringMatching(/^[a-z0-9/_-]{1,30}$/), (digit, service, tail) => {
        const account = String(digit).repeat(12);
        expect(placeholderAccountProblem(account)).toBeDefined();
        const problems = placeholderProblems({ deep: [{ doc: JSON.stringify({ Resource: `arn:aws:${service}:eu-central-1:${account}:${tail}` }) }] });
        expect(problems.some((p) => p.includes(`account ${account} is a placeholder`))).toBe(true);
      }),
    );
    fc.assert(fc.property(fc.anything(), (value) => Array.isArray(placeholderProblems(value))));
  });
});
