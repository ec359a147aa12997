/**
 * The clean stacks pass the pack, and seeded misconfigurations of the real render (or of the
 * stack config, re-rendered) are each caught by the named policy. Also drives the
 * `npm run policy` CLI end to end (exit codes, report format).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { renderStack, type RenderedResource } from "../../infra/testing/render";
import { mandatoryViolations } from "../../policy/lib/harness";
import { checkStack } from "../../scripts/policy";
import { renderTestStack, testStackConfigFile } from "../support/stack-identifiers";

const run = promisify(execFile);
const STACKS = ["local", "dev", "staging", "prod"] as const;
type StackName = (typeof STACKS)[number];

const rendered = new Map<StackName, RenderedResource[]>();
let workDir: string;

beforeAll(async () => {
  for (const stack of STACKS) rendered.set(stack, (await renderTestStack(stack)).resources);
  workDir = mkdtempSync(join(tmpdir(), "knhk-policy-"));
}, 240_000);

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** A copy of `resources` with the inputs of the resource named `name` changed by `change`. */
function edit(resources: readonly RenderedResource[], name: string, change: (inputs: any, resource: RenderedResource) => void): RenderedResource[] {
  const target = resources.find((r) => r.name === name);
  if (!target) throw new Error(`the render has no resource named ${name} (names: ${resources.map((r) => r.name).join(", ")})`);
  return resources.map((r) => {
    if (r !== target) return r;
    const inputs = structuredClone(r.inputs);
    change(inputs, r);
    return { ...r, inputs };
  });
}

function without(resources: readonly RenderedResource[], name: string): RenderedResource[] {
  if (!resources.some((r) => r.name === name)) throw new Error(`the render has no resource named ${name}`);
  return resources.filter((r) => r.name !== name);
}

/** The first container of a workload's pod template (CronJobs included). */
function podSpec(inputs: any): any {
  return inputs.spec.jobTemplate ? inputs.spec.jobTemplate.spec.template.spec : inputs.spec.template.spec;
}

function firstOfType(resources: readonly RenderedResource[], type: string, where: (r: RenderedResource) => boolean = () => true): RenderedResource {
  const found = resources.find((r) => r.type === type && where(r));
  if (!found) throw new Error(`the render has no ${type}`);
  return found;
}

/** Edits the alert rule named `alert` wherever a PrometheusRule holds it. */
function editAlert(resources: readonly RenderedResource[], alert: string, change: (rule: any) => void): RenderedResource[] {
  const holder = resources.find((r) => r.type.endsWith(":PrometheusRule") && JSON.stringify(r.inputs).includes(`"alert":"${alert}"`));
  if (!holder) throw new Error(`the render has no alert ${alert}`);
  return edit(resources, holder.name, (inputs) => {
    for (const group of inputs.spec.groups) for (const rule of group.rules) if (rule.alert === alert) change(rule);
  });
}

interface Mutation {
  readonly policy: string;
  readonly stack: StackName;
  readonly what: string;
  /** Text the violation message must contain (names the place). */
  readonly expect: string;
  readonly resources?: (base: readonly RenderedResource[]) => RenderedResource[];
  readonly config?: (config: Record<string, any>) => void;
}

const MUTATIONS: Mutation[] = [
  { policy: "container-resources", stack: "prod", what: "app container without a memory limit", expect: "has no resources.limits.memory",
    resources: (b) => edit(b, "knhk-blue", (i) => delete podSpec(i).containers[0].resources.limits.memory) },
  { policy: "container-resources", stack: "staging", what: "Redis sidecar without requests", expect: "has no resources.requests.cpu",
    resources: (b) => edit(b, "redis-statefulset", (i) => delete podSpec(i).containers[podSpec(i).containers.length - 1].resources.requests) },
  { policy: "container-probes", stack: "prod", what: "Patroni container without readiness probe", expect: "has no readinessProbe",
    resources: (b) => edit(b, "postgres-statefulset", (i) => delete podSpec(i).containers[0].readinessProbe) },
  { policy: "container-probes", stack: "dev", what: "green app without liveness probe", expect: "has no livenessProbe",
    resources: (b) => edit(b, "knhk-green", (i) => delete podSpec(i).containers[0].livenessProbe) },
  { policy: "container-probes", stack: "prod", what: "sentinel probe without a handler", expect: "without a handler",
    resources: (b) => edit(b, "redis-sentinel-statefulset", (i) => (podSpec(i).containers[0].readinessProbe = { periodSeconds: 5 })) },
  { policy: "container-run-as-non-root", stack: "prod", what: "app container as uid 0", expect: "runs as uid 0",
    resources: (b) => edit(b, "knhk-blue", (i) => (podSpec(i).containers[0].securityContext.runAsUser = 0)) },
  { policy: "container-run-as-non-root", stack: "staging", what: "sentinel without runAsNonRoot anywhere", expect: "does not set securityContext.runAsNonRoot",
    resources: (b) => edit(b, "redis-sentinel-statefulset", (i) => {
      delete podSpec(i).securityContext;
      for (const c of podSpec(i).containers) delete c.securityContext.runAsNonRoot;
    }) },
  { policy: "container-read-only-root-filesystem", stack: "prod", what: "backup CronJob with a writable root fs", expect: "readOnlyRootFilesystem",
    resources: (b) => edit(b, "postgres-backup-full", (i) => (podSpec(i).containers[0].securityContext.readOnlyRootFilesystem = false)) },
  { policy: "container-drop-capabilities", stack: "prod", what: "Patroni adds NET_ADMIN", expect: "adds capabilities NET_ADMIN",
    resources: (b) => edit(b, "postgres-statefulset", (i) => (podSpec(i).containers[0].securityContext.capabilities.add = ["NET_ADMIN"])) },
  { policy: "container-drop-capabilities", stack: "local", what: "app allows privilege escalation", expect: "allowPrivilegeEscalation: false",
    resources: (b) => edit(b, "knhk-blue", (i) => (podSpec(i).containers[0].securityContext.allowPrivilegeEscalation = true)) },
  { policy: "image-pinned", stack: "prod", what: "app image on latest", expect: "'latest' is not allowed",
    resources: (b) => edit(b, "knhk-blue", (i) => (podSpec(i).containers[0].image = "ghcr.io/knhk/knhk:latest")) },
  { policy: "image-pinned", stack: "staging", what: "untagged Redis image", expect: "must be pinned by tag or digest",
    resources: (b) => edit(b, "redis-statefulset", (i) => (podSpec(i).containers[0].image = "docker.io/library/redis")) },
  { policy: "no-plaintext-secrets", stack: "prod", what: "password in the app ConfigMap", expect: "data.DATABASE_PASSWORD is named like a secret",
    resources: (b) => edit(b, "knhk-config", (i) => (i.data.DATABASE_PASSWORD = "hunter2")) },
  { policy: "no-plaintext-secrets", stack: "dev", what: "Redis password as a literal env value", expect: "env REDIS_PASSWORD",
    resources: (b) => edit(b, "knhk-green", (i) => (podSpec(i).containers[0].env = [...(podSpec(i).containers[0].env ?? []), { name: "REDIS_PASSWORD", value: "s3cret" }])) },
  { policy: "no-plaintext-secrets", stack: "prod", what: "superuser password written into patroni.yml", expect: 'sets "password" to a literal value',
    resources: (b) => edit(b, "postgres-patroni-config", (i) => (i.data["patroni.yml"] = i.data["patroni.yml"].replace("username: postgres\n", "username: postgres\n      password: s3cret\n"))) },
  { policy: "statefulset-storage-class", stack: "prod", what: "Patroni volume on the default class", expect: 'uses storage class "standard"',
    resources: (b) => edit(b, "postgres-statefulset", (i) => (i.spec.volumeClaimTemplates[0].spec.storageClassName = "standard")) },
  { policy: "statefulset-storage-class", stack: "staging", what: "Redis volume without a class", expect: "sets no storageClassName",
    resources: (b) => edit(b, "redis-statefulset", (i) => delete i.spec.volumeClaimTemplates[0].spec.storageClassName) },
  { policy: "app-serves-https", stack: "prod", what: "the API certificate dropped from the ConfigMap", expect: "sets no KNHK_TLS_CERT_FILE",
    resources: (b) => edit(b, "knhk-config", (i) => delete i.data.KNHK_TLS_CERT_FILE) },
  { policy: "app-serves-https", stack: "staging", what: "the green readiness probe over HTTP", expect: 'readinessProbe uses "HTTP", not HTTPS',
    resources: (b) => edit(b, "knhk-green", (i) => (podSpec(i).containers[0].readinessProbe.httpGet.scheme = "HTTP")) },
  { policy: "statefulset-storage-encrypted", stack: "prod", what: "the volume class stops encrypting", expect: 'StorageClass knhk-encrypted does not encrypt its volumes (parameters.encrypted is "false"',
    resources: (b) => edit(b, "knhk-volumes-class", (i) => (i.parameters.encrypted = "false")) },
  { policy: "statefulset-storage-encrypted", stack: "staging", what: "the volume class without the stack's key", expect: "parameters.kmsKeyId is unset",
    resources: (b) => edit(b, "knhk-volumes-class", (i) => delete i.parameters.kmsKeyId) },
  { policy: "statefulset-storage-encrypted", stack: "prod", what: "Redis volume on a class the stack does not declare", expect: 'uses storage class "gp2", which this stack does not declare',
    resources: (b) => edit(b, "redis-statefulset", (i) => (i.spec.volumeClaimTemplates[0].spec.storageClassName = "gp2")) },
  { policy: "service-type-internal", stack: "prod", what: "app Service as LoadBalancer", expect: "is of type LoadBalancer",
    resources: (b) => edit(b, "knhk-service", (i) => (i.spec.type = "LoadBalancer")) },
  { policy: "service-type-internal", stack: "dev", what: "Redis Service as NodePort", expect: "is of type NodePort",
    resources: (b) => edit(b, "redis-service", (i) => (i.spec.type = "NodePort")) },
  { policy: "prod-app-high-availability", stack: "prod", what: "stack config: 2 app replicas in prod", expect: "runs 2 replica(s) in production",
    config: (c) => {
      c["knhk:app"].replicas = 2;
      c["knhk:app"].autoscaling.minReplicas = 2;
    } },
  { policy: "prod-app-high-availability", stack: "prod", what: "no PDB for the active colour", expect: "has no PodDisruptionBudget",
    resources: (b) => without(b, "knhk-blue-pdb") },
  { policy: "prod-app-high-availability", stack: "prod", what: "no HPA for the active colour", expect: "has no HorizontalPodAutoscaler",
    resources: (b) => without(b, "knhk-blue-hpa") },
  { policy: "patroni-synchronous-replication", stack: "staging", what: "stack config: a single Patroni member in staging", expect: "runs 1 Patroni member(s)",
    config: (c) => (c["knhk:patroni"] = { ...(c["knhk:patroni"] ?? {}), members: 1 }) },
  { policy: "patroni-synchronous-replication", stack: "prod", what: "synchronous_mode_strict off", expect: "synchronous_mode_strict is false",
    resources: (b) => edit(b, "postgres-patroni-config", (i) => (i.data["patroni.yml"] = i.data["patroni.yml"].replace("synchronous_mode_strict: true", "synchronous_mode_strict: false"))) },
  { policy: "namespace-default-deny", stack: "prod", what: "default-deny NetworkPolicy removed", expect: "namespace knhk has no default-deny NetworkPolicy for Ingress and Egress",
    resources: (b) => without(b, "knhk-default-deny") },
  { policy: "namespace-default-deny", stack: "local", what: "default deny for Ingress only", expect: "for Egress",
    resources: (b) => edit(b, "knhk-default-deny", (i) => (i.spec.policyTypes = ["Ingress"])) },
  { policy: "kubernetes-objects-in-components", stack: "prod", what: "ConfigMap moved to the stack root", expect: "belongs to no knhk:* component",
    resources: (b) => {
      const root = firstOfType(b, "pulumi:pulumi:Stack");
      return b.map((r) => (r.name === "knhk-config" ? { ...r, parent: root.urn } : r));
    } },
  { policy: "alert-severity-and-runbook", stack: "prod", what: "P0 alert without a runbook", expect: "alert KnhkReceiptChainBroken (group",
    resources: (b) => editAlert(b, "KnhkReceiptChainBroken", (rule) => delete rule.annotations.runbook_url) },
  { policy: "alert-severity-and-runbook", stack: "staging", what: "alert without a severity label", expect: "has no severity label",
    resources: (b) => editAlert(b, "KnhkServiceDown", (rule) => delete rule.labels.severity) },
  { policy: "s3-bucket-kms-encryption", stack: "prod", what: "data bucket on SSE-S3 instead of SSE-KMS", expect: 'bucket knhk-prod-data (knhk-archive-data) encrypts with "AES256"',
    resources: (b) => edit(b, "knhk-archive-data-encryption", (i) => (i.rules[0].applyServerSideEncryptionByDefault = { sseAlgorithm: "AES256" })) },
  { policy: "s3-bucket-public-access-block", stack: "prod", what: "ledger bucket allows public policies", expect: "does not set blockPublicPolicy to true",
    resources: (b) => edit(b, "knhk-archive-ledger-public-access-block", (i) => (i.blockPublicPolicy = false)) },
  { policy: "s3-bucket-tls-only", stack: "prod", what: "backup bucket policy removed", expect: "bucket knhk-prod-backup (knhk-archive-backup) has no bucket policy",
    resources: (b) => without(b, "knhk-archive-backup-policy") },
  { policy: "ledger-object-lock", stack: "prod", what: "ledger in GOVERNANCE mode", expect: 'retention mode is "GOVERNANCE"; must be COMPLIANCE',
    resources: (b) => edit(b, "knhk-archive-ledger-object-lock", (i) => (i.rule.defaultRetention.mode = "GOVERNANCE")) },
  { policy: "ledger-object-lock", stack: "prod", what: "ledger retention of 5 years", expect: "default retention is 1825 days; at least 7 years",
    resources: (b) => edit(b, "knhk-archive-ledger-object-lock", (i) => (i.rule.defaultRetention = { mode: "COMPLIANCE", years: 5 })) },
  { policy: "vault-policy-least-privilege", stack: "prod", what: "service policy grants sudo", expect: 'Vault policy knhk-service: path "sys/policies/acl/*" grants sudo',
    resources: (b) => edit(b, "knhk-vault-service-policy", (i) => (i.policy += '\npath "sys/policies/acl/*" {\n  capabilities = ["read", "sudo"]\n}\n')) },
  { policy: "vault-policy-least-privilege", stack: "staging", what: "operator policy on a wildcard root path", expect: 'path "*" is a wildcard root path granting read, list',
    resources: (b) => edit(b, "knhk-vault-operator-policy", (i) => (i.policy += '\npath "*" {\n  capabilities = ["read", "list"]\n}\n')) },
  { policy: "no-placeholder-identifiers", stack: "prod", what: "IRSA role trusting the former default provider", expect: "aws:iam/role:Role knhk-archive-backup-role: assumeRolePolicy.Statement[0].Principal.Federated: arn:aws:iam::000000000000:oidc-provider/",
    resources: (b) => edit(b, "knhk-archive-backup-role", (i) => (i.assumeRolePolicy = i.assumeRolePolicy.replace(/arn:aws:iam::\d{12}:/g, "arn:aws:iam::000000000000:"))) },
  { policy: "no-placeholder-identifiers", stack: "staging", what: "IRSA conditions on a KNHK placeholder issuer", expect: 'condition on issuer oidc.eks.eu-central-1.amazonaws.com/id/KNHK: "KNHK" is a placeholder',
    resources: (b) => edit(b, "knhk-archive-service-role", (i) => (i.assumeRolePolicy = i.assumeRolePolicy.replace(/\/id\/[A-Z0-9]+:/g, "/id/KNHK:"))) },
  { policy: "no-placeholder-identifiers", stack: "dev", what: "access logging expects the documentation account", expect: "expectedBucketOwner: account 123456789012 is a placeholder",
    resources: (b) => edit(b, "knhk-archive-data-logging", (i) => (i.expectedBucketOwner = "123456789012")) },
  { policy: "zero-downtime-rollout", stack: "prod", what: "app rollout may drop a pod (advisory)", expect: "maxUnavailable 1",
    resources: (b) => edit(b, "knhk-blue", (i) => (i.spec.strategy.rollingUpdate.maxUnavailable = 1)) },
];

describe("the clean stacks", () => {
  test.each(STACKS)("%s: no mandatory violation", async (stack) => {
    const result = await checkStack(rendered.get(stack)!);
    expect(mandatoryViolations(result)).toEqual([]);
  });
});

describe("mutation suite", () => {
  test("has at least 25 seeded misconfigurations", () => {
    expect(MUTATIONS.length).toBeGreaterThanOrEqual(25);
  });

  test.each(MUTATIONS.map((m) => [`${m.policy} <- ${m.stack}: ${m.what}`, m] as const))("%s", async (_title, mutation) => {
    let resources: RenderedResource[];
    if (mutation.config) {
      const config = structuredClone(testStackConfigFile(mutation.stack)) as Record<string, any>;
      mutation.config(config);
      resources = (await renderStack(mutation.stack, { config })).resources;
    } else {
      resources = mutation.resources!(rendered.get(mutation.stack)!);
    }
    const result = await checkStack(resources);
    const caught = result.violations.filter((v) => v.policy === mutation.policy);
    expect(caught.map((v) => v.message).join("\n")).toContain(mutation.expect);
    // The base stack was clean for this policy, so the mutation is what the policy caught.
    const before = await checkStack(rendered.get(mutation.stack)!);
    expect(before.violations.filter((v) => v.policy === mutation.policy)).toEqual([]);
  });
});

describe("npm run policy (CLI)", () => {
  const cli = (args: string[]) =>
    run("npx", ["tsx", "scripts/policy.ts", ...args], { cwd: join(__dirname, "..", ".."), env: { ...process.env, FORCE_COLOR: "0" } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  test("a clean stack exits 0 with a summary", async () => {
    const file = join(workDir, "clean.json");
    writeFileSync(file, JSON.stringify(rendered.get("prod")));
    const r = await cli(["--stack", "prod", "--resources", file]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/policy: stack prod: \d+ resources, \d+ policies .* 0 mandatory and 0 advisory violation\(s\)/);
  }, 60_000);

  test("a mandatory violation exits 1 and names resource, policy and message; advisory alone exits 0", async () => {
    const bad = join(workDir, "bad.json");
    writeFileSync(bad, JSON.stringify(edit(rendered.get("prod")!, "knhk-blue", (i) => (podSpec(i).containers[0].image = "ghcr.io/knhk/knhk:latest"))));
    const r = await cli(["--stack", "prod", "--resources", bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("[mandatory] image-pinned\n  resource: kubernetes:apps/v1:Deployment knhk-blue\n  Deployment knhk/knhk-blue: container");
    const advisory = join(workDir, "advisory.json");
    writeFileSync(advisory, JSON.stringify(edit(rendered.get("prod")!, "knhk-blue", (i) => (i.spec.strategy.rollingUpdate.maxUnavailable = 1))));
    const a = await cli(["--stack", "prod", "--resources", advisory]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain("[advisory] zero-downtime-rollout");
    const usage = await cli([]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("usage: npm run policy -- --stack <stack>");
  }, 120_000);
});
