/** Every policy: a clean case, a violating case (naming the problem), and where it does not apply. */
import { ALL_POLICIES } from "../../policy/policies/all";
import { appServesHttps } from "../../policy/policies/app-serves-https";
import { alertSeverityAndRunbook } from "../../policy/policies/alert-severity-and-runbook";
import { containerDropCapabilities } from "../../policy/policies/container-drop-capabilities";
import { containerProbes } from "../../policy/policies/container-probes";
import { containerReadOnlyRootFilesystem } from "../../policy/policies/container-read-only-root-filesystem";
import { containerResources } from "../../policy/policies/container-resources";
import { containerRunAsNonRoot } from "../../policy/policies/container-run-as-non-root";
import { imagePinned } from "../../policy/policies/image-pinned";
import { kubernetesObjectsInComponents } from "../../policy/policies/kubernetes-objects-in-components";
import { ledgerObjectLock } from "../../policy/policies/ledger-object-lock";
import { namespaceDefaultDeny } from "../../policy/policies/namespace-default-deny";
import { noPlaintextSecrets } from "../../policy/policies/no-plaintext-secrets";
import { patroniSynchronousReplication } from "../../policy/policies/patroni-synchronous-replication";
import { prodAppHighAvailability } from "../../policy/policies/prod-app-high-availability";
import { s3BucketKmsEncryption } from "../../policy/policies/s3-bucket-kms-encryption";
import { s3BucketPublicAccessBlock } from "../../policy/policies/s3-bucket-public-access-block";
import { s3BucketTlsOnly } from "../../policy/policies/s3-bucket-tls-only";
import { serviceTypeInternal } from "../../policy/policies/service-type-internal";
import { statefulSetStorageClass } from "../../policy/policies/statefulset-storage-class";
import { statefulSetStorageEncrypted } from "../../policy/policies/statefulset-storage-encrypted";
import { vaultPolicyLeastPrivilege } from "../../policy/policies/vault-policy-least-privilege";
import { zeroDowntimeRollout } from "../../policy/policies/zero-downtime-rollout";
import { bucketSet, byName, cleanStack, mutate, NS } from "./fixtures";
import { check, resource, runPolicies } from "./helpers";

const STORAGE = { storageClasses: ["fast-ssd"] };
const clean = cleanStack("prod");
const blue = byName(clean, "app-blue");

async function violationsOn(policy: Parameters<typeof check>[0], name: string, change: (p: any) => void, config: Record<string, unknown> = {}) {
  const r = byName(mutate(clean, name, change), name);
  return (await check(policy, r, { config })).violations;
}

async function stackViolations(policy: Parameters<typeof check>[0], stack: ReturnType<typeof cleanStack>, options: Parameters<typeof check>[2] = {}) {
  return (await check(policy, stack, options)).violations;
}

describe("the clean hand-built stack", () => {
  test.each(["local", "dev", "staging", "prod"])("%s: no policy reports anything", async (stack) => {
    const result = await runPolicies(ALL_POLICIES, cleanStack(stack), { config: { "statefulset-storage-class": STORAGE } });
    expect(result.violations).toEqual([]);
  });

  test("policy names are unique and every guarantee is mandatory", () => {
    const names = ALL_POLICIES.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    const advisory = ALL_POLICIES.filter((p) => p.enforcementLevel !== "mandatory").map((p) => p.name);
    expect(advisory).toEqual(["zero-downtime-rollout"]);
  });
});

describe("container policies", () => {
  test("container-resources: missing limits and requests are named", async () => {
    expect((await check(containerResources, blue)).violations).toEqual([]);
    const v = await violationsOn(containerResources, "app-blue", (p) => {
      delete p.spec.template.spec.containers[0].resources.limits.memory;
      p.spec.template.spec.containers[0].resources.requests.cpu = "0";
    });
    expect(v).toEqual([
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) has no resources.requests.cpu',
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) has no resources.limits.memory',
    ]);
  });

  test("container-resources: init containers and CronJobs count; a Service is not applicable", async () => {
    const cron = resource("prod", "kubernetes:batch/v1:CronJob", "backup", {
      metadata: { name: "backup", namespace: NS },
      spec: { jobTemplate: { spec: { template: { spec: { initContainers: [{ name: "init", image: "x:1" }], containers: [] } } } } },
    });
    const v = (await check(containerResources, cron)).violations;
    expect(v).toHaveLength(4);
    expect(v[0]).toContain('CronJob knhk/backup: container "init" (initContainers[0]) has no resources.requests.cpu');
    expect((await check(containerResources, byName(clean, "app-service"))).notApplicable).toMatch(/no pod template/);
  });

  test("container-probes: missing readiness and handler-less liveness; Jobs are exempt", async () => {
    expect((await check(containerProbes, blue)).violations).toEqual([]);
    const v = await violationsOn(containerProbes, "app-blue", (p) => {
      delete p.spec.template.spec.containers[0].readinessProbe;
      p.spec.template.spec.containers[0].livenessProbe = { periodSeconds: 10 };
    });
    expect(v).toEqual([
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) has a livenessProbe without a handler (httpGet/tcpSocket/exec/grpc)',
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) has no readinessProbe',
    ]);
    const job = resource("prod", "kubernetes:batch/v1:Job", "restore-test", { spec: { template: { spec: { containers: [{ name: "r" }] } } } });
    expect((await check(containerProbes, job)).notApplicable).toMatch(/runs to completion/);
  });

  test("container-run-as-non-root: inherited from the pod is fine, uid 0 or missing is not", async () => {
    const inherited = await violationsOn(containerRunAsNonRoot, "app-blue", (p) => {
      delete p.spec.template.spec.containers[0].securityContext.runAsNonRoot;
    });
    expect(inherited).toEqual([]);
    const v = await violationsOn(containerRunAsNonRoot, "app-blue", (p) => {
      delete p.spec.template.spec.securityContext;
      delete p.spec.template.spec.containers[0].securityContext.runAsNonRoot;
      p.spec.template.spec.containers[0].securityContext.runAsUser = 0;
    });
    expect(v).toEqual([
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) does not set securityContext.runAsNonRoot: true (container or pod)',
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) runs as uid 0 (securityContext.runAsUser)',
    ]);
  });

  test("container-read-only-root-filesystem", async () => {
    expect((await check(containerReadOnlyRootFilesystem, blue)).violations).toEqual([]);
    const v = await violationsOn(containerReadOnlyRootFilesystem, "app-blue", (p) => {
      p.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false;
    });
    expect(v).toEqual(['Deployment knhk/knhk-blue: container "knhk" (containers[0]) does not set securityContext.readOnlyRootFilesystem: true']);
  });

  test("container-drop-capabilities: drop ALL, add none, no escalation, not privileged", async () => {
    expect((await check(containerDropCapabilities, blue)).violations).toEqual([]);
    const v = await violationsOn(containerDropCapabilities, "app-blue", (p) => {
      const sc = p.spec.template.spec.containers[0].securityContext;
      sc.capabilities = { drop: ["NET_RAW"], add: ["SYS_ADMIN"] };
      delete sc.allowPrivilegeEscalation;
      sc.privileged = true;
    });
    expect(v.map((m) => m.replace(/^.*\) /, ""))).toEqual([
      "does not drop ALL capabilities (securityContext.capabilities.drop)",
      "adds capabilities SYS_ADMIN",
      "does not set securityContext.allowPrivilegeEscalation: false",
      "is privileged",
    ]);
  });

  test.each([
    ["ghcr.io/knhk/knhk:latest", "must be pinned: 'latest' is not allowed"],
    ["ghcr.io/knhk/knhk", "must be pinned by tag or digest"],
    ["localhost:5000/knhk", "must be pinned by tag or digest"],
    ["ghcr.io/knhk/knhk@sha256:abc", "invalid digest"],
  ])("image-pinned rejects %s", async (image, reason) => {
    const v = await violationsOn(imagePinned, "app-blue", (p) => {
      p.spec.template.spec.containers[0].image = image;
    });
    expect(v).toHaveLength(1);
    expect(v[0]).toContain(`image "${image}"`);
    expect(v[0]).toContain(reason);
  });

  test.each(["ghcr.io/knhk/knhk:1.4.0", "localhost:5000/knhk:v1", `ghcr.io/knhk/knhk@sha256:${"a".repeat(64)}`, "redis:7.0.15-bookworm"])(
    "image-pinned accepts %s",
    async (image) => {
      expect(await violationsOn(imagePinned, "app-blue", (p) => (p.spec.template.spec.containers[0].image = image))).toEqual([]);
    },
  );
});

describe("no-plaintext-secrets", () => {
  test("clean ConfigMaps and env (secretKeyRef) pass", async () => {
    expect((await check(noPlaintextSecrets, byName(clean, "app-config"))).violations).toEqual([]);
    expect((await check(noPlaintextSecrets, byName(clean, "db-patroni"))).violations).toEqual([]);
    expect((await check(noPlaintextSecrets, blue)).violations).toEqual([]);
  });

  test.each([
    ["DB_PASSWORD", "hunter2", "is named like a secret and holds a literal value"],
    ["DATABASE_URL", "postgres://knhk:s3cret@postgres-primary:5432/knhk", "contains a URL with embedded credentials"],
    ["SETTINGS", "[secret]", "holds a Pulumi secret in plain text"],
    ["redis.conf", "maxmemory 256mb\nrequirepass supersecret\n", 'sets "requirepass" to a literal value'],
    ["key.pem", "-----BEGIN PRIVATE KEY-----\nMII...\n", "contains a PEM private key"],
  ])("ConfigMap key %s is flagged", async (key, value, problem) => {
    const v = await violationsOn(noPlaintextSecrets, "app-config", (p) => (p.data[key] = value));
    expect(v).toEqual([`ConfigMap knhk/knhk-config: data.${key} ${problem}`]);
  });

  test("env value named like a secret is flagged; references and *_FILE are not", async () => {
    const v = await violationsOn(noPlaintextSecrets, "app-blue", (p) => {
      p.spec.template.spec.containers[0].env.push(
        { name: "API_TOKEN", value: "abc123" },
        { name: "PASSWORD_FILE", value: "/vault/secrets/db" },
        { name: "JWT_SECRET", value: "$(JWT_SECRET_FROM_ENV)" },
      );
    });
    expect(v).toEqual([
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) env API_TOKEN is named like a secret and holds a literal value',
      'Deployment knhk/knhk-blue: container "knhk" (containers[0]) env JWT_SECRET is named like a secret and holds a literal value',
    ]);
  });

  test("a Namespace is not applicable", async () => {
    expect((await check(noPlaintextSecrets, byName(clean, "ns-namespace"))).notApplicable).toBeDefined();
  });
});

describe("statefulset-storage-class", () => {
  const sts = byName(clean, "db-statefulset");

  test("the configured class passes; another class or none is named", async () => {
    expect((await check(statefulSetStorageClass, sts, { config: STORAGE })).violations).toEqual([]);
    const other = await violationsOn(statefulSetStorageClass, "db-statefulset", (p) => (p.spec.volumeClaimTemplates[0].spec.storageClassName = "standard"), STORAGE);
    expect(other).toEqual(['StatefulSet knhk/postgres: volumeClaimTemplate "pgdata" uses storage class "standard", configured: fast-ssd']);
    const none = await violationsOn(statefulSetStorageClass, "db-statefulset", (p) => delete p.spec.volumeClaimTemplates[0].spec.storageClassName, STORAGE);
    expect(none).toEqual(['StatefulSet knhk/postgres: volumeClaimTemplate "pgdata" sets no storageClassName (configured: fast-ssd)']);
  });

  test("without a stack file or config the check fails loudly instead of passing", async () => {
    const r = resource("no-such-stack", sts.type, sts.name, sts.props);
    const v = (await check(statefulSetStorageClass, r)).violations;
    expect(v[0]).toContain('no configured storage class for stack "no-such-stack"');
  });
});

describe("service-type-internal", () => {
  test("ClusterIP passes; LoadBalancer fails unless allowed", async () => {
    expect((await check(serviceTypeInternal, byName(clean, "app-service"))).violations).toEqual([]);
    const v = await violationsOn(serviceTypeInternal, "app-service", (p) => (p.spec.type = "LoadBalancer"));
    expect(v).toEqual(['Service knhk/knhk-service is of type LoadBalancer; only ClusterIP/headless Services are allowed unless "knhk/knhk-service" is listed in allowedExternalServices']);
    const allowed = await violationsOn(serviceTypeInternal, "app-service", (p) => (p.spec.type = "NodePort"), { allowedExternalServices: ["knhk/knhk-service"] });
    expect(allowed).toEqual([]);
  });
});

describe("alert-severity-and-runbook", () => {
  test("every alert needs a P0-P3 severity and an http(s) runbook_url; recording rules are skipped", async () => {
    expect((await check(alertSeverityAndRunbook, byName(clean, "mon-rules"))).violations).toEqual([]);
    const v = await violationsOn(alertSeverityAndRunbook, "mon-rules", (p) => {
      p.spec.groups[0].rules.push({ alert: "NoLabels", expr: "1" }, { alert: "Odd", expr: "1", labels: { severity: "urgent" }, annotations: { runbook_url: "runbooks/x.md" } });
    });
    expect(v).toEqual([
      "PrometheusRule knhk/knhk: alert NoLabels (group knhk.api) has no severity label",
      "PrometheusRule knhk/knhk: alert NoLabels (group knhk.api) has no runbook_url annotation",
      'PrometheusRule knhk/knhk: alert Odd (group knhk.api) has severity "urgent", allowed: P0, P1, P2, P3',
      'PrometheusRule knhk/knhk: alert Odd (group knhk.api) has runbook_url "runbooks/x.md", which is not an http(s) URL',
    ]);
  });
});

describe("vault-policy-least-privilege", () => {
  test.each([
    [`path "sys/mounts" {\n capabilities = ["read", "sudo"]\n}`, 'path "sys/mounts" grants sudo'],
    [`path "*" {\n capabilities = ["read"]\n}`, 'path "*" is a wildcard root path granting read'],
    [`path "+/data/knhk" {\n capabilities = ["read"]\n}`, 'path "+/data/knhk" is a wildcard root path granting read'],
    [JSON.stringify({ path: { "*": { capabilities: ["list"] } } }), 'path "*" is a wildcard root path granting list'],
    [`path "secret/data/knhk" {\n capabilities = [\n`, "cannot parse the policy document"],
  ])("flags %j", async (hcl, problem) => {
    const v = await violationsOn(vaultPolicyLeastPrivilege, "vault-service-policy", (p) => (p.policy = hcl));
    expect(v).toHaveLength(1);
    expect(v[0]).toContain(problem);
    expect(v[0]).toContain("Vault policy knhk-service");
  });

  test("narrow paths pass; an explicit deny on * is fine", async () => {
    expect((await check(vaultPolicyLeastPrivilege, byName(clean, "vault-service-policy"))).violations).toEqual([]);
    expect(await violationsOn(vaultPolicyLeastPrivilege, "vault-service-policy", (p) => (p.policy += `path "*" {\n capabilities = ["deny"]\n}\n`))).toEqual([]);
  });
});

describe("zero-downtime-rollout (advisory)", () => {
  test("maxUnavailable must be 0", async () => {
    expect((await check(zeroDowntimeRollout, blue)).violations).toEqual([]);
    const v = await violationsOn(zeroDowntimeRollout, "app-blue", (p) => delete p.spec.strategy);
    expect(v).toEqual(['Deployment knhk/knhk-blue sets rollingUpdate.maxUnavailable "25% (default)"; use 0']);
  });
});

describe("prod-app-high-availability", () => {
  test("clean prod passes; dev is not applicable; the environment tag overrides the stack name", async () => {
    expect((await check(prodAppHighAvailability, clean)).violations).toEqual([]);
    expect((await check(prodAppHighAvailability, cleanStack("dev"))).notApplicable).toMatch(/not a production environment/);
    const prodLike = mutate(cleanStack("dev"), "app-blue", (p) => (p.spec.replicas = 1));
    expect((await check(prodAppHighAvailability, prodLike, { stackTags: { "knhk:environment": "prod" } })).violations).toEqual([
      "Deployment knhk/knhk-blue runs 1 replica(s) in production; at least 3 required",
    ]);
  });

  test("missing HPA, low HPA minimum and missing PDB are named; only the active colour counts", async () => {
    const noHpa = clean.filter((r) => r.name !== "app-hpa-blue");
    expect(await stackViolations(prodAppHighAvailability, noHpa)).toEqual(["Deployment knhk/knhk-blue has no HorizontalPodAutoscaler"]);
    const lowHpa = mutate(clean, "app-hpa-blue", (p) => (p.spec.minReplicas = 2));
    expect(await stackViolations(prodAppHighAvailability, lowHpa)).toEqual(["HorizontalPodAutoscaler knhk/knhk-blue for knhk-blue has minReplicas 2; at least 3 required"]);
    const noPdb = clean.filter((r) => r.name !== "app-pdb");
    expect(await stackViolations(prodAppHighAvailability, noPdb)).toEqual(["Deployment knhk/knhk-blue has no PodDisruptionBudget selecting its pods"]);
    const zeroPdb = mutate(clean, "app-pdb", (p) => (p.spec.minAvailable = 0));
    expect(await stackViolations(prodAppHighAvailability, zeroPdb)).toEqual(["PodDisruptionBudget knhk/knhk allows every pod of knhk-blue to be evicted"]);
    const idleSmall = mutate(clean, "app-green", (p) => (p.spec.replicas = 1));
    expect(await stackViolations(prodAppHighAvailability, idleSmall)).toEqual([]);
    const noService = clean.filter((r) => r.name !== "app-service");
    expect(await stackViolations(prodAppHighAvailability, noService)).toEqual(["production stack prod declares no Service knhk-service for the app"]);
  });
});

describe("patroni-synchronous-replication", () => {
  test("clean staging/prod pass; local/dev are not applicable", async () => {
    expect(await stackViolations(patroniSynchronousReplication, cleanStack("staging"))).toEqual([]);
    expect(await stackViolations(patroniSynchronousReplication, clean)).toEqual([]);
    expect((await check(patroniSynchronousReplication, cleanStack("dev"))).notApplicable).toMatch(/does not require/);
  });

  test("strict mode off, sync mode off, one member, no document", async () => {
    const loose = mutate(clean, "db-patroni", (p) => (p.data["patroni.yml"] = p.data["patroni.yml"].replace("synchronous_mode_strict: true", "synchronous_mode_strict: false").replace("synchronous_mode: true", "synchronous_mode: false")));
    expect(await stackViolations(patroniSynchronousReplication, loose)).toEqual([
      "ConfigMap knhk/patroni-config patroni.yml: bootstrap.dcs.synchronous_mode is false; must be true",
      "ConfigMap knhk/patroni-config patroni.yml: bootstrap.dcs.synchronous_mode_strict is false; must be true",
    ]);
    const single = mutate(cleanStack("staging"), "db-statefulset", (p) => (p.spec.replicas = 1));
    expect(await stackViolations(patroniSynchronousReplication, single)).toEqual(["StatefulSet knhk/postgres (postgres) runs 1 Patroni member(s); at least 2 required in staging"]);
    const none = clean.filter((r) => r.name !== "db-patroni");
    expect(await stackViolations(patroniSynchronousReplication, none)).toEqual(["stack prod declares no Patroni configuration (patroni.yml in a ConfigMap or Secret)"]);
    const hidden = mutate(clean, "db-patroni", (p) => (p.data["patroni.yml"] = "[secret]"));
    expect((await stackViolations(patroniSynchronousReplication, hidden))[0]).toContain("cannot verify Patroni replication");
  });
});

describe("namespace-default-deny", () => {
  test("clean passes; missing Egress deny or a selective policy fails", async () => {
    expect(await stackViolations(namespaceDefaultDeny, clean)).toEqual([]);
    const ingressOnly = mutate(clean, "ns-default-deny", (p) => (p.spec.policyTypes = ["Ingress"]));
    expect(await stackViolations(namespaceDefaultDeny, ingressOnly)).toEqual([
      "namespace knhk has no default-deny NetworkPolicy for Egress (podSelector {}, policyTypes Egress, no rules)",
    ]);
    const selective = mutate(clean, "ns-default-deny", (p) => (p.spec.podSelector = { matchLabels: { app: "x" } }));
    expect((await stackViolations(namespaceDefaultDeny, selective))[0]).toContain("for Ingress and Egress");
    const allows = mutate(clean, "ns-default-deny", (p) => (p.spec.ingress = [{ from: [{ podSelector: {} }] }]));
    expect((await stackViolations(namespaceDefaultDeny, allows))[0]).toContain("for Ingress");
  });
});

describe("S3 bucket policies", () => {
  test("clean buckets pass all three", async () => {
    for (const policy of [s3BucketKmsEncryption, s3BucketPublicAccessBlock, s3BucketTlsOnly]) expect(await stackViolations(policy, clean)).toEqual([]);
  });

  test("no buckets: not applicable", async () => {
    const noAws = clean.filter((r) => !r.type.startsWith("aws:"));
    expect((await check(s3BucketKmsEncryption, noAws)).notApplicable).toMatch(/no S3 bucket/);
  });

  test("s3-bucket-kms-encryption: AES256, missing key, missing bucket keys, missing config", async () => {
    const aes = mutate(clean, "archive-data-sse", (p) => (p.rules[0].applyServerSideEncryptionByDefault = { sseAlgorithm: "AES256" }));
    expect(await stackViolations(s3BucketKmsEncryption, aes)).toEqual(['bucket knhk-prod-data (archive-data) encrypts with "AES256", not SSE-KMS (aws:kms)']);
    const noKey = mutate(clean, "archive-data-sse", (p) => {
      delete p.rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId;
      p.rules[0].bucketKeyEnabled = false;
    });
    expect(await stackViolations(s3BucketKmsEncryption, noKey)).toEqual([
      "bucket knhk-prod-data (archive-data) uses aws:kms without a customer managed key (kmsMasterKeyId)",
      "bucket knhk-prod-data (archive-data) does not enable S3 bucket keys (bucketKeyEnabled)",
    ]);
    const none = clean.filter((r) => r.name !== "archive-ledger-sse");
    expect(await stackViolations(s3BucketKmsEncryption, none)).toEqual(["bucket knhk-prod-ledger (archive-ledger) has no server-side encryption configuration"]);
  });

  test("s3-bucket-kms-encryption: an access-log target bucket may use SSE-S3 (S3 cannot deliver logs into SSE-KMS)", async () => {
    const archive = byName(clean, "archive");
    const logs = bucketSet("prod", archive, "archive-logs", "knhk-prod-logs", false).map((r) =>
      r.name === "archive-logs-sse" ? { ...r, props: { ...r.props, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }] } } : r,
    );
    const logging = resource("prod", "aws:s3/bucketLogging:BucketLogging", "archive-data-logging", { bucket: "archive-data-id", targetBucket: "archive-logs-id", targetPrefix: "data/" }, archive);
    expect(await stackViolations(s3BucketKmsEncryption, [...clean, ...logs, logging])).toEqual([]);
    expect(await stackViolations(s3BucketKmsEncryption, [...clean, ...logs])).toEqual([
      'bucket knhk-prod-logs (archive-logs) encrypts with "AES256", not SSE-KMS (aws:kms)',
      "bucket knhk-prod-logs (archive-logs) does not enable S3 bucket keys (bucketKeyEnabled)",
    ]);
  });

  test("s3-bucket-public-access-block: a setting off or the block missing", async () => {
    const off = mutate(clean, "archive-ledger-pab", (p) => (p.restrictPublicBuckets = false));
    expect(await stackViolations(s3BucketPublicAccessBlock, off)).toEqual(["bucket knhk-prod-ledger (archive-ledger): public access block does not set restrictPublicBuckets to true"]);
    const none = clean.filter((r) => r.name !== "archive-data-pab");
    expect(await stackViolations(s3BucketPublicAccessBlock, none)).toEqual(["bucket knhk-prod-data (archive-data) has no public access block"]);
  });

  test("s3-bucket-tls-only: the Deny statement must cover every principal and s3:*", async () => {
    const allowOnly = mutate(clean, "archive-data-policy", (p) => (p.policy = JSON.stringify({ Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject" }] })));
    expect(await stackViolations(s3BucketTlsOnly, allowOnly)).toEqual(["bucket knhk-prod-data (archive-data): bucket policy does not deny s3:* to every principal when aws:SecureTransport is false"]);
    const narrow = mutate(clean, "archive-data-policy", (p) => (p.policy = p.policy.replace('"s3:*"', '"s3:PutObject"')));
    expect(await stackViolations(s3BucketTlsOnly, narrow)).toHaveLength(1);
    const none = clean.filter((r) => r.name !== "archive-ledger-policy");
    expect((await stackViolations(s3BucketTlsOnly, none))[0]).toContain("has no bucket policy");
  });

  test("config resources link to their bucket through engine property dependencies too", async () => {
    const linked = clean.map((r) => (r.name === "archive-data-pab" ? { ...r, props: { ...r.props, bucket: undefined }, propertyDependencies: { bucket: [byName(clean, "archive-data").urn] } } : r));
    expect(await stackViolations(s3BucketPublicAccessBlock, linked)).toEqual([]);
  });
});

describe("app-serves-https", () => {
  test("clean staging and prod pass; dev and local are not applicable", async () => {
    expect(await stackViolations(appServesHttps, clean)).toEqual([]);
    expect(await stackViolations(appServesHttps, cleanStack("staging"))).toEqual([]);
    for (const stack of ["dev", "local"]) expect((await check(appServesHttps, cleanStack(stack))).notApplicable).toMatch(/does not require HTTPS/);
  });

  test("no certificate in the ConfigMap, an HTTP probe, no Secret where the files are", async () => {
    expect(await stackViolations(appServesHttps, mutate(clean, "app-config", (p) => delete p.data.KNHK_TLS_KEY_FILE))).toEqual([
      "ConfigMap knhk/knhk-config sets no KNHK_TLS_KEY_FILE: the API would serve plain HTTP",
    ]);
    expect(await stackViolations(appServesHttps, mutate(clean, "app-green", (p) => delete p.spec.template.spec.containers[0].readinessProbe.httpGet.scheme))).toEqual([
      'Deployment knhk/knhk-green container knhk: readinessProbe uses "HTTP", not HTTPS',
    ]);
    expect(await stackViolations(appServesHttps, mutate(clean, "app-blue", (p) => (p.spec.template.spec.volumes = [{ name: "api-tls", emptyDir: {} }])))).toEqual([
      "Deployment knhk/knhk-blue container knhk: mounts no Secret at /etc/knhk/tls, where KNHK_TLS_CERT_FILE points",
    ]);
  });
});

describe("statefulset-storage-encrypted", () => {
  test("clean staging and prod pass; dev and local are not applicable", async () => {
    expect(await stackViolations(statefulSetStorageEncrypted, clean)).toEqual([]);
    expect(await stackViolations(statefulSetStorageEncrypted, cleanStack("staging"))).toEqual([]);
    for (const stack of ["dev", "local"]) expect((await check(statefulSetStorageEncrypted, cleanStack(stack))).notApplicable).toMatch(/does not require encrypted volumes/);
  });

  test("a class that does not encrypt, one without the stack's key, one the stack does not declare, and none at all", async () => {
    const where = 'StatefulSet knhk/postgres: volumeClaimTemplate "pgdata"';
    expect(await stackViolations(statefulSetStorageEncrypted, mutate(clean, "volumes-class", (p) => (p.parameters.encrypted = "false")))).toEqual([
      `${where}: StorageClass fast-ssd does not encrypt its volumes (parameters.encrypted is "false"; must be "true")`,
    ]);
    expect(await stackViolations(statefulSetStorageEncrypted, mutate(clean, "volumes-class", (p) => delete p.parameters.encrypted))).toEqual([
      `${where}: StorageClass fast-ssd does not encrypt its volumes (parameters.encrypted is null; must be "true")`,
    ]);
    expect(await stackViolations(statefulSetStorageEncrypted, mutate(clean, "volumes-class", (p) => delete p.parameters.kmsKeyId))).toEqual([
      `${where}: StorageClass fast-ssd encrypts with the account's default key, not a key of the stack's (parameters.kmsKeyId is unset)`,
    ]);
    expect(await stackViolations(statefulSetStorageEncrypted, clean.filter((r) => r.name !== "volumes-class"))).toEqual([
      `${where} uses storage class "fast-ssd", which this stack does not declare, so its encryption cannot be checked (declared: none)`,
    ]);
    expect(await stackViolations(statefulSetStorageEncrypted, mutate(clean, "db-statefulset", (p) => delete p.spec.volumeClaimTemplates[0].spec.storageClassName))).toEqual([
      `${where} sets no storageClassName: the cluster's default class is not known to encrypt`,
    ]);
  });

  test("the environments are configurable", async () => {
    const dev = mutate(cleanStack("dev"), "volumes-class", (p) => (p.parameters.encrypted = "false"));
    expect(await stackViolations(statefulSetStorageEncrypted, dev, { config: { encryptedEnvironments: ["dev"] } })).toHaveLength(1);
  });
});

describe("ledger-object-lock", () => {
  test("clean prod passes; dev is not applicable", async () => {
    expect(await stackViolations(ledgerObjectLock, clean)).toEqual([]);
    expect((await check(ledgerObjectLock, cleanStack("dev"))).notApplicable).toMatch(/not a production environment/);
  });

  test("GOVERNANCE, short retention, no lock, no ledger", async () => {
    const governance = mutate(clean, "archive-ledger-lock", (p) => (p.rule.defaultRetention = { mode: "GOVERNANCE", days: 1 }));
    expect(await stackViolations(ledgerObjectLock, governance)).toEqual([
      'bucket knhk-prod-ledger (archive-ledger): Object Lock default retention mode is "GOVERNANCE"; must be COMPLIANCE',
      "bucket knhk-prod-ledger (archive-ledger): Object Lock default retention is 1 days; at least 7 years (2555 days) required",
    ]);
    const sixYears = mutate(clean, "archive-ledger-lock", (p) => (p.rule.defaultRetention.years = 6));
    expect(await stackViolations(ledgerObjectLock, sixYears)).toHaveLength(1);
    const days = mutate(clean, "archive-ledger-lock", (p) => (p.rule.defaultRetention = { mode: "COMPLIANCE", days: 2555 }));
    expect(await stackViolations(ledgerObjectLock, days)).toEqual([]);
    const unlocked = mutate(clean.filter((r) => r.name !== "archive-ledger-lock"), "archive-ledger", (p) => (p.objectLockEnabled = false));
    expect(await stackViolations(ledgerObjectLock, unlocked)).toEqual([
      "bucket knhk-prod-ledger (archive-ledger) is created without Object Lock (objectLockEnabled: true)",
      "bucket knhk-prod-ledger (archive-ledger) has no BucketObjectLockConfiguration",
    ]);
    const noLedger = clean.filter((r) => !r.name.startsWith("archive-ledger"));
    expect(await stackViolations(ledgerObjectLock, noLedger)).toEqual(["production stack prod has S3 buckets but no ledger bucket (name matching /ledger/)"]);
  });
});

describe("kubernetes-objects-in-components (stack policy)", () => {
  test("objects under components pass; an object on the stack root or under a non-knhk parent fails", async () => {
    expect(await stackViolations(kubernetesObjectsInComponents, clean)).toEqual([]);
    const root = clean[0];
    const stray = resource("prod", "kubernetes:core/v1:ConfigMap", "stray", { metadata: { name: "stray", namespace: NS } }, root);
    const group = resource("prod", "kubernetes:yaml/v2:ConfigGroup", "group", {}, root);
    const grouped = resource("prod", "kubernetes:core/v1:Secret", "grouped", { metadata: { name: "grouped", namespace: NS } }, group);
    const v = await stackViolations(kubernetesObjectsInComponents, [...clean, stray, group, grouped]);
    expect(v).toEqual([
      "ConfigMap knhk/stray belongs to no knhk:* component (parent chain: kubernetes:core/v1:ConfigMap <- pulumi:pulumi:Stack)",
      "Secret knhk/grouped belongs to no knhk:* component (parent chain: kubernetes:core/v1:Secret <- kubernetes:yaml/v2:ConfigGroup <- pulumi:pulumi:Stack)",
    ]);
  });
});
