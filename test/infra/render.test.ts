/**
 * The offline render (`npm run render`): output format, schema validity of every Kubernetes
 * object in every stack, secret redaction, and bad stack config stopping the program before any
 * resource is declared.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { StackConfigError } from "../../infra/config";
import { hasBuiltInSchema, validateK8sObject } from "../../infra/testing/k8s-schema";
import {
  K8sObject,
  manifestFileName,
  mergeConfig,
  redactSecrets,
  RenderedResource,
  RenderResult,
  renderStack,
  REPO_ROOT,
  SECRET_PLACEHOLDER,
  writeRender,
} from "../../infra/testing/render";
import { renderTestStack, testIdentifiers, testStackConfigFile, writeTestIdentifiers } from "../support/stack-identifiers";

const run = promisify(execFile);
const STACKS = ["local", "dev", "staging", "prod"];

describe("every rendered Kubernetes object validates against the Kubernetes schema", () => {
  it.each(STACKS)("%s", async (stack) => {
    const { k8sObjects } = await renderTestStack(stack);
    const builtIn = k8sObjects.filter(hasBuiltInSchema);
    expect(builtIn.length).toBeGreaterThan(50);
    expect(builtIn.flatMap(validateK8sObject)).toEqual([]);
    // Objects without a built-in schema are prometheus-operator CRDs (validated by the monitoring suite).
    const others = k8sObjects.filter((o) => !hasBuiltInSchema(o)).map((o) => o.apiVersion.split("/")[0]);
    expect(others.every((g) => g === "monitoring.coreos.com")).toBe(true);
  }, 60_000);

  it("the validation is not vacuous", () => {
    const bad = { apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "x" }, spec: { replicas: "3", serviceName: "x", selector: {}, template: {} } } as unknown as K8sObject;
    expect(validateK8sObject(bad).join()).toMatch(/replicas must be integer/);
  });
});

describe("bad stack config", () => {
  it.each([
    ["knhk:app", { replicas: "three" }, /knhk:app\.replicas = "three"/],
    ["knhk:patroni", { storage: { className: "fast-ssd", size: "-100Gi" } }, /knhk:patroni\.storage\.size = "-100Gi"/],
    ["knhk:redis", { maxmemoryPolicy: "sometimes" }, /knhk:redis\.maxmemoryPolicy = "sometimes"/],
    ["knhk:namespace", { name: "KNHK" }, /knhk:namespace\.name = "KNHK": must be a DNS-1123 label/],
    ["knhk:app", { versions: { blue: "latest", green: "1.0.0" } }, /knhk:app\.versions\.blue = "latest": must be pinned/],
    ["knhk:app", { replicass: 3 }, /knhk:app\.replicass: unknown key/],
  ])("%s %j stops the program before any resource is declared", async (key, value, message) => {
    const config = { ...testStackConfigFile("prod"), [key]: value };
    const declared: RenderedResource[] = [];
    const rendering = renderTestStack("prod", { config, collect: declared });
    await expect(rendering).rejects.toBeInstanceOf(StackConfigError);
    await expect(rendering).rejects.toThrow(message);
    expect(declared.map((d) => d.type)).toEqual(["pulumi:pulumi:Stack"]);
  }, 60_000);
});

describe("deployed stacks without their identifiers, with placeholders or an impossible budget", () => {
  const stopsBeforeDeclaring = async (stack: string, options: Parameters<typeof renderStack>[1], message: RegExp) => {
    const declared: RenderedResource[] = [];
    const rendering = renderStack(stack, { ...options, collect: declared });
    await expect(rendering).rejects.toBeInstanceOf(StackConfigError);
    await expect(rendering).rejects.toThrow(message);
    expect(declared.map((d) => d.type)).toEqual(["pulumi:pulumi:Stack"]);
  };

  it.each(["dev", "staging", "prod"])("%s as committed: stops naming every identifier it needs", async (stack) => {
    await stopsBeforeDeclaring(stack, {}, /knhk:monitoring\.receivers\.ticketUrl = \(missing\)[\s\S]*knhk:aws\.oidcProviderArn = \(missing\)[\s\S]*knhk:aws\.oidcIssuer = \(missing\)[\s\S]*knhk:app\.oidc\.issuers = \[\]: at least one OIDC issuer is required/);
  }, 60_000);

  it("staging with the former placeholder provider", async () => {
    const overlay = mergeConfig(testIdentifiers("staging"), { "knhk:aws": { oidcProviderArn: "arn:aws:iam::000000000000:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/KNHK", oidcIssuer: "oidc.eks.eu-central-1.amazonaws.com/id/KNHK" } });
    await stopsBeforeDeclaring("staging", { overlay }, /knhk:aws\.oidcProviderArn = .*account 000000000000 is a placeholder/);
  }, 60_000);

  it("prod with its former pool of 50", async () => {
    const overlay = mergeConfig(testIdentifiers("prod"), { "knhk:app": { settings: { DB_POOL_MAX_CONNECTIONS: 50 } } });
    await stopsBeforeDeclaring("prod", { overlay }, /knhk:app\.settings\.DB_POOL_MAX_CONNECTIONS = 50: connection budget exceeded: 50 per pod × 10 \(autoscaling\.maxReplicas\) × 2 colours = 1000, \+ reserve 35 .* > max_connections 200/);
  }, 60_000);

  it("staging without an OIDC issuer", async () => {
    const overlay = mergeConfig(testIdentifiers("staging"), { "knhk:app": { oidc: { issuers: [] } } });
    await stopsBeforeDeclaring("staging", { overlay }, /^invalid config for stack "staging":\n  - knhk:app\.oidc\.issuers = \[\]: at least one OIDC issuer is required in stack "staging"/);
  }, 60_000);
});

describe("render output", () => {
  let result: RenderResult;
  let out: string;

  beforeAll(async () => {
    result = await renderTestStack("prod");
    out = mkdtempSync(join(tmpdir(), "knhk-render-"));
    writeRender(result, out);
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("resources.json lists every resource as {type, name, urn, parent, inputs}", () => {
    const resources = JSON.parse(readFileSync(join(out, "resources.json"), "utf8")) as RenderedResource[];
    expect(resources).toHaveLength(result.resources.length);
    for (const res of resources) expect(Object.keys(res).sort()).toEqual(["inputs", "name", "parent", "type", "urn"]);
    const sts = resources.find((x) => x.type === "kubernetes:apps/v1:StatefulSet" && x.name === "postgres-statefulset")!;
    expect(sts.urn).toBe("urn:pulumi:prod::knhk::knhk:database:PatroniCluster$kubernetes:apps/v1:StatefulSet::postgres-statefulset");
    const component = resources.find((x) => x.type === "knhk:database:PatroniCluster" && x.name === "postgres")!;
    expect(sts.parent).toBe(component.urn);
    expect(resources.some((x) => x.type === "knhk:database:PatroniCluster")).toBe(true);
  });

  it("k8s/ holds one YAML file per object, named <kind>-<namespace>-<name>.yaml", () => {
    const files = readdirSync(join(out, "k8s"));
    expect(files).toHaveLength(result.k8sObjects.length);
    expect(files).toEqual(expect.arrayContaining(["namespace-knhk.yaml", "statefulset-knhk-postgres.yaml", "deployment-knhk-knhk-blue.yaml", "service-knhk-postgres-primary.yaml"]));
    const sts = parse(readFileSync(join(out, "k8s", "statefulset-knhk-postgres.yaml"), "utf8"));
    expect(sts).toMatchObject({ apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "postgres", namespace: "knhk" }, spec: { replicas: 3 } });
  });

  it("file names: cluster-scoped objects have no namespace part", () => {
    expect(manifestFileName({ apiVersion: "v1", kind: "Namespace", metadata: { name: "knhk" } })).toBe("namespace-knhk.yaml");
    expect(manifestFileName({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "b" } })).toBe("configmap-b-a.yaml");
  });

  it("secrets are replaced by [secret] (at any depth)", () => {
    const sig = "4dabf18193072939515e22adb298388d";
    const secret = { [sig]: "1b47061264138c4ac30d75fd1eb44270", value: "hunter2" };
    expect(redactSecrets({ a: secret, b: [1, { c: secret }], d: "plain" })).toEqual({ a: SECRET_PLACEHOLDER, b: [1, { c: SECRET_PLACEHOLDER }], d: "plain" });
  });
});

describe("npm run render (the CLI)", () => {
  let out: string;
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), "knhk-render-cli-"));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("prod: writes resources.json and the manifests the acceptance criteria list", async () => {
    const overlay = writeTestIdentifiers(out, "prod");
    const { stdout } = await run("npm", ["run", "--silent", "render", "--", "--stack", "prod", "--out", out, "--overlay", overlay], { cwd: REPO_ROOT, timeout: 120_000 });
    expect(stdout).toMatch(/stack prod: \d+ resources/);
    expect(existsSync(join(out, "resources.json"))).toBe(true);
    const load = (f: string) => parse(readFileSync(join(out, "k8s", f), "utf8"));
    expect(load("namespace-knhk.yaml").metadata.name).toBe("knhk");
    expect(load("statefulset-knhk-postgres.yaml").spec.replicas).toBe(3);
    for (const svc of ["postgres", "postgres-primary", "postgres-replicas", "knhk-service"]) expect(load(`service-knhk-${svc}.yaml`).kind).toBe("Service");
    expect(load("statefulset-knhk-redis.yaml").spec.replicas).toBe(2);
    expect(load("statefulset-knhk-redis-sentinel.yaml").spec.replicas).toBe(3);
    for (const d of ["knhk-blue", "knhk-green"]) expect(load(`deployment-knhk-${d}.yaml`).kind).toBe("Deployment");
    expect(load("horizontalpodautoscaler-knhk-knhk-blue.yaml").spec).toMatchObject({ minReplicas: 3, maxReplicas: 10 });
    const files = readdirSync(join(out, "k8s"));
    expect(files.filter((f) => f.startsWith("poddisruptionbudget-")).length).toBeGreaterThanOrEqual(4);
    expect(files.filter((f) => f.startsWith("networkpolicy-")).length).toBeGreaterThanOrEqual(2);
  }, 150_000);

  it("prod without the identifiers stops naming every missing key", async () => {
    await expect(run("npm", ["run", "--silent", "render", "--", "--stack", "prod", "--out", out], { cwd: REPO_ROOT, timeout: 120_000 })).rejects.toMatchObject({
      stderr: expect.stringMatching(/knhk:aws\.oidcProviderArn = \(missing\)[\s\S]*knhk:aws\.oidcIssuer = \(missing\)[\s\S]*knhk:app\.oidc\.issuers = \[\]/),
    });
  }, 150_000);

  it("an unknown stack fails with the list of stacks", async () => {
    await expect(run("npm", ["run", "--silent", "render", "--", "--stack", "qa", "--out", out], { cwd: REPO_ROOT, timeout: 120_000 })).rejects.toMatchObject({
      stderr: expect.stringMatching(/no stack file .*Pulumi\.qa\.yaml \(stacks: dev, local, prod, staging\)/),
    });
  }, 150_000);
});
