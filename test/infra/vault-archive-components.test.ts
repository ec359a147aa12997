import type { RenderResult, RenderedResource } from "../../infra/testing/render";
import { migrationPolicyRules, operatorPolicyRules, renderPolicyHcl, servicePolicyRules, vaultLayout } from "../../infra/render/vault-policies";
import { ledgerJobVaultRoles } from "../../infra/render/ledger-jobs";
import { renderTestStack, TEST_AWS_ACCOUNT } from "../support/stack-identifiers";

const results: Record<string, RenderResult> = {};
beforeAll(async () => {
  for (const stack of ["local", "dev", "staging", "prod"]) results[stack] = await renderTestStack(stack);
}, 240_000);

const ofType = (r: RenderResult, type: string) => r.resources.filter((x) => x.type === type);
const one = (r: RenderResult, type: string, nameSuffix = "") => {
  const found = ofType(r, type).filter((x) => x.name.endsWith(nameSuffix));
  expect(found.map((f) => f.name)).toHaveLength(1);
  return found[0];
};
const byBucket = (r: RenderResult, type: string) => {
  const buckets = new Map(ofType(r, "aws:s3/bucket:Bucket").map((b) => [b.name, b]));
  return new Map(
    ofType(r, type).map((x) => {
      const owner = [...buckets.keys()].find((n) => x.name.startsWith(`${n}-`));
      return [owner ?? x.name, x] as [string, RenderedResource];
    }),
  );
};

describe("ComplianceArchive and VaultAccess per stack", () => {
  it("local turns Vault and AWS off", () => {
    const types = results.local.resources.map((r) => r.type);
    expect(types.some((t) => t.startsWith("aws:") || t.startsWith("vault:"))).toBe(false);
  });

  it.each(["dev", "staging", "prod"])("%s has the archive and Vault under their components", (stack) => {
    const r = results[stack];
    const archive = one(r, "knhk:archive:ComplianceArchive");
    const vaultAccess = one(r, "knhk:vault:VaultAccess");
    const volumes = one(r, "knhk:storage:EncryptedStorage");
    for (const res of r.resources.filter((x) => x.type.startsWith("aws:s3") || x.type.startsWith("aws:iam") || x.type.startsWith("aws:kms"))) {
      // The volume key and its alias belong to the encrypted StorageClass; everything else to the archive.
      expect({ name: res.name, parent: res.parent }).toEqual({ name: res.name, parent: res.name.startsWith("knhk-volumes-") ? volumes.urn : archive.urn });
    }
    for (const res of r.resources.filter((x) => x.type.startsWith("vault:"))) expect(res.parent).toBe(vaultAccess.urn);
    expect(ofType(r, "aws:s3/bucket:Bucket").map((b) => b.inputs.bucket).sort()).toEqual(
      ["access-logs", "backup", "data", "ledger"].map((role) => `knhk-${stack}-${role}`),
    );
  });

  it("prod: ledger bucket with Object Lock COMPLIANCE 7 years", () => {
    const r = results.prod;
    const ledger = ofType(r, "aws:s3/bucket:Bucket").find((b) => b.inputs.bucket === "knhk-prod-ledger")!;
    expect(ledger.inputs.objectLockEnabled).toBe(true);
    const lock = one(r, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration");
    expect(lock.inputs.rule).toEqual({ defaultRetention: { mode: "COMPLIANCE", years: 7 } });
    expect(ofType(r, "aws:s3/bucket:Bucket").filter((b) => b.inputs.objectLockEnabled).map((b) => b.inputs.bucket)).toEqual(["knhk-prod-ledger"]);
  });

  it("dev: ledger lock is GOVERNANCE for 1 day", () => {
    const lock = one(results.dev, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration");
    expect(lock.inputs.rule).toEqual({ defaultRetention: { mode: "GOVERNANCE", days: 1 } });
  });

  it("prod lifecycle rules: each prefix with the stated days", () => {
    const r = results.prod;
    const lifecycles = byBucket(r, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration");
    type Rule = { id: string; filter: { prefix: string }; transitions?: { days: number; storageClass: string }[]; expiration?: { days: number }; noncurrentVersionExpiration?: { noncurrentDays: number }; abortIncompleteMultipartUpload?: { daysAfterInitiation: number } };
    const rules = (bucket: string) => lifecycles.get(`knhk-archive-${bucket}`)!.inputs.rules as Rule[];
    const prefix = (bucket: string, p: string) => rules(bucket).find((x) => x.filter.prefix === p)!;
    expect(prefix("ledger", "receipts/").transitions).toEqual([{ days: 90, storageClass: "GLACIER" }]);
    expect(prefix("ledger", "audit/").transitions).toEqual([{ days: 90, storageClass: "GLACIER" }]);
    expect(prefix("ledger", "receipts/").noncurrentVersionExpiration).toEqual({ noncurrentDays: 7 * 366 });
    expect(prefix("data", "observations/").transitions).toEqual([{ days: 90, storageClass: "GLACIER" }]);
    expect(prefix("data", "snapshots/").expiration).toEqual({ days: 365 });
    expect(prefix("data", "telemetry/").expiration).toEqual({ days: 30 });
    expect(rules("data").find((x) => x.id === "abort-incomplete-multipart")!.abortIncompleteMultipartUpload).toEqual({ daysAfterInitiation: 7 });
  });

  it.each(["dev", "staging", "prod"])("%s: no bucket without encryption, public access block, ownership, TLS-only policy", (stack) => {
    const r = results[stack];
    const buckets = ofType(r, "aws:s3/bucket:Bucket").map((b) => b.name);
    const sse = byBucket(r, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration");
    const pab = byBucket(r, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock");
    const own = byBucket(r, "aws:s3/bucketOwnershipControls:BucketOwnershipControls");
    const pol = byBucket(r, "aws:s3/bucketPolicy:BucketPolicy");
    const logging = byBucket(r, "aws:s3/bucketLogging:BucketLogging");
    for (const bucket of buckets) {
      const rule = (sse.get(bucket)!.inputs.rules as { applyServerSideEncryptionByDefault: { sseAlgorithm: string }; bucketKeyEnabled?: boolean }[])[0];
      if (bucket.endsWith("-access-logs")) {
        // S3 server access logs can only be delivered to an SSE-S3 bucket.
        expect(rule.applyServerSideEncryptionByDefault.sseAlgorithm).toBe("AES256");
      } else {
        expect(rule.applyServerSideEncryptionByDefault.sseAlgorithm).toBe("aws:kms");
        expect(rule.bucketKeyEnabled).toBe(true);
        expect(logging.get(bucket)).toBeDefined();
      }
      expect(pab.get(bucket)!.inputs).toMatchObject({ blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });
      expect(own.get(bucket)!.inputs.rule).toEqual({ objectOwnership: "BucketOwnerEnforced" });
      const policy = JSON.parse(String(pol.get(bucket)!.inputs.policy)) as { Statement: { Sid: string; Resource: string[] }[] };
      const tls = policy.Statement.find((st) => st.Sid === "DenyInsecureTransport")!;
      expect(tls.Resource).toEqual([`arn:aws:s3:::${bucket.replace("knhk-archive-", `knhk-${stack}-`)}`, `arn:aws:s3:::${bucket.replace("knhk-archive-", `knhk-${stack}-`)}/*`]);
    }
    const key = one(r, "aws:kms/key:Key", "archive-key");
    expect(key.inputs.enableKeyRotation).toBe(true);
  });

  it("IRSA roles trust exactly the service's (and its scheduled archive run's) and pgBackRest's service accounts", () => {
    const roles = ofType(results.prod, "aws:iam/role:Role");
    const trust = (suffix: string) => JSON.parse(String(roles.find((x) => x.name.endsWith(suffix))!.inputs.assumeRolePolicy));
    const subject = (doc: { Statement: { Condition: { StringEquals: Record<string, string | string[]> } }[] }) =>
      Object.entries(doc.Statement[0].Condition.StringEquals).find(([k]) => k.endsWith(":sub"))![1];
    expect(subject(trust("-service-role"))).toEqual(["system:serviceaccount:knhk:knhk-service", "system:serviceaccount:knhk:knhk-archive"]);
    expect(subject(trust("-backup-role"))).toEqual(["system:serviceaccount:knhk:postgres", "system:serviceaccount:knhk:pgbackrest"]);
    const postgresSa = results.prod.k8sObjects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === "postgres")!;
    expect((postgresSa.metadata.annotations as Record<string, string>)["eks.amazonaws.com/role-arn"]).toBe(
      `arn:aws:iam::${TEST_AWS_ACCOUNT}:knhk-archive-backup-role`,
    );
  });

  it("IRSA: ServiceAccount knhk-service carries the service role where AWS is on, no annotation in local", () => {
    const serviceSa = (stack: string) => results[stack].k8sObjects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === "knhk-service")!;
    expect((serviceSa("prod").metadata.annotations as Record<string, string>)["eks.amazonaws.com/role-arn"]).toBe(
      `arn:aws:iam::${TEST_AWS_ACCOUNT}:knhk-archive-service-role`,
    );
    expect((serviceSa("local").metadata.annotations as Record<string, string> | undefined)?.["eks.amazonaws.com/role-arn"]).toBeUndefined();
  });

  it("stack outputs name only the components the stack has", () => {
    for (const key of ["vaultAuthRole", "archiveLedgerBucket", "archiveServiceRoleArn", "backupRoleArn"]) {
      expect(results.local.outputs).not.toHaveProperty(key);
      expect(results.prod.outputs).toHaveProperty(key);
    }
    expect(results.prod.outputs.archiveServiceRoleArn).toBe(`arn:aws:iam::${TEST_AWS_ACCOUNT}:knhk-archive-service-role`);
  });

  it("Vault: policies are the rendered documents; the service's is least privilege", () => {
    const r = results.prod;
    const policies = Object.fromEntries(ofType(r, "vault:index/policy:Policy").map((p) => [p.inputs.name, p.inputs.policy]));
    const layout = vaultLayout({ kv: "knhk-kv", database: "database", transit: "transit" });
    expect(policies["knhk-service"]).toBe(renderPolicyHcl(servicePolicyRules(layout)));
    expect(policies["knhk-operator"]).toBe(renderPolicyHcl(operatorPolicyRules(layout)));
    expect(policies["knhk-migration"]).toBe(renderPolicyHcl(migrationPolicyRules(layout)));
    for (const job of ledgerJobVaultRoles("database", 3600, { mount: "transit", key: "knhk-receipts" })) expect(policies[job.authRole]).toBe(renderPolicyHcl(job.policyRules));
  });

  it("Vault: each Kubernetes auth role bound to its own service account in knhk, with its own policy only", () => {
    const roles = Object.fromEntries(ofType(results.prod, "vault:kubernetes/authBackendRole:AuthBackendRole").map((r) => [r.inputs.roleName, r.inputs]));
    expect(Object.keys(roles).sort()).toEqual(["knhk-archive", "knhk-migrate", "knhk-service", "knhk-verify-chain"]);
    expect(roles["knhk-migrate"]).toMatchObject({ boundServiceAccountNames: ["knhk-migrate"], boundServiceAccountNamespaces: ["knhk"], tokenNoDefaultPolicy: true, tokenPolicies: ["knhk-migration"] });
    for (const job of ledgerJobVaultRoles("database", 3600, { mount: "transit", key: "knhk-receipts" })) {
      expect(roles[job.authRole]).toMatchObject({ boundServiceAccountNames: [job.serviceAccount], boundServiceAccountNamespaces: ["knhk"], tokenNoDefaultPolicy: true, tokenPolicies: [job.authRole] });
    }
    const role = { inputs: roles["knhk-service"] };
    expect(role.inputs).toMatchObject({
      roleName: "knhk-service",
      boundServiceAccountNames: ["knhk-service"],
      boundServiceAccountNamespaces: ["knhk"],
      audience: "vault",
      tokenTtl: 3600,
      tokenNoDefaultPolicy: true,
      tokenPolicies: ["knhk-service"],
    });
  });

  it("Vault: database engine with dynamic and 30-day static roles, root rotation, connection to postgres-primary", () => {
    const r = results.prod;
    const conn = one(r, "vault:database/secretBackendConnection:SecretBackendConnection");
    expect(conn.inputs.allowedRoles).toEqual(["knhk-app", "knhk-owner", "knhk-archiver", "knhk-verifier"]);
    expect(conn.inputs.rotationSchedule).toBe("0 3 1 * *");
    const pg = conn.inputs.postgresql as Record<string, unknown> | string;
    expect(JSON.stringify(pg)).toMatch(/postgres-primary\.knhk\.svc|\[secret\]/);
    expect(JSON.stringify(r.resources)).not.toMatch(/"password":"[^[]/);
    const dynamic = one(r, "vault:database/secretBackendRole:SecretBackendRole", "-app-role");
    expect(dynamic.inputs.name).toBe("knhk-app");
    expect(String((dynamic.inputs.creationStatements as string[])[0])).toContain("IN ROLE knhk_service");
    const stat = one(r, "vault:database/secretBackendStaticRole:SecretBackendStaticRole");
    expect(stat.inputs).toMatchObject({ name: "knhk-owner", username: "knhk_owner", rotationPeriod: 30 * 24 * 3600 });
  });

  it("Vault: ed25519 transit key for receipts, not exportable, rotated every 90 days", () => {
    const key = one(results.prod, "vault:transit/secretBackendKey:SecretBackendKey");
    expect(key.inputs).toMatchObject({ name: "knhk-receipts", type: "ed25519", exportable: false, deletionAllowed: false, autoRotatePeriod: 90 * 24 * 3600 });
  });

  it("the Deployment's Vault Agent renders the database URL file from the dynamic role, verified with the mounted CA", () => {
    const deployments = results.prod.k8sObjects.filter((o) => o.kind === "Deployment" && /^knhk-(blue|green)$/.test(o.metadata.name));
    expect(deployments).toHaveLength(2);
    for (const d of deployments) {
      const annotations = (d as unknown as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations;
      expect(annotations["vault.hashicorp.com/role"]).toBe("knhk-service");
      const template = Object.entries(annotations).find(([k]) => k.startsWith("vault.hashicorp.com/agent-inject-template-"))![1];
      expect(template).toContain('secret "database/creds/knhk-app"');
      expect(template).toMatch(/^\{\{- with secret "database\/creds\/knhk-app" -\}\}\npostgresql:\/\/.*sslmode=verify-full&sslrootcert=%2Fetc%2Fknhk%2Fpostgres-ca%2Fca\.crt\n/);
    }
  });
});
