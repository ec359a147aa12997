/**
 * The `local` stack deployed by the real Pulumi engine to a live API server (scripts/cluster.sh:
 * kube-apiserver, controller-manager, scheduler, etcd; nodes and pod lifecycles simulated by kwok):
 * every object is admitted, validated and reconciled for real, Pulumi's await logic sees each
 * workload become ready, previews diff against the live state, admission refuses what a real
 * cluster refuses, and the policy pack runs in the same engine.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { mockRender, preview, resourceKey, updateStackConfig, Workspace, type PulumiResult } from "../engine/engine";
import { readObjects, canonical, objectKey } from "../engine/manifests";
import { readinessOf, type ListedObject } from "../../scripts/lib/cluster/readiness";
import { COLOR_LABEL } from "../../infra/components/knhk-service";
import { freePort, waitFor } from "../support/ports";
import { startCluster, type TestCluster } from "./cluster";
import { startSmokeTarget } from "./smoke-target";
import { quantity, subsetMismatches } from "./subset";

const TIMEOUT = 20 * 60_000;
const STACK = "local";
const NS = "knhk";

let cluster: TestCluster | undefined;
let ws: Workspace;

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not set up`);
  return value;
}

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await need(cluster, "cluster").kubectl([...args, "-o", "json"])) as T;
}

type LiveObject = ListedObject & { readonly metadata: ListedObject["metadata"] & { readonly annotations?: Record<string, string> } } & Record<string, unknown>;

async function live(kind: string, name: string, namespace?: string): Promise<LiveObject> {
  return getJson(["get", kind, name, ...(namespace ? ["-n", namespace] : [])]);
}

function output(result: PulumiResult): string {
  return `${result.stdout}\n${result.stderr}`;
}

function deploy(): Promise<PulumiResult> {
  return ws.run("bash", ["scripts/deploy-local.sh", need(cluster, "cluster").kubeconfig]);
}

/** The workspace's program with `source` loaded before anything else: a test-only change of what it declares. */
function injectIntoProgram(source: string): () => void {
  const index = ws.path("infra", "index.ts");
  const original = fs.readFileSync(index, "utf8");
  fs.writeFileSync(ws.path("infra", "test-injection.ts"), source);
  fs.writeFileSync(index, `import "./test-injection";\n${original}`);
  return () => {
    fs.writeFileSync(index, original);
    fs.rmSync(ws.path("infra", "test-injection.ts"));
  };
}

beforeAll(async () => {
  cluster = await startCluster();
  console.log(`cluster started in ${cluster.startSeconds.toFixed(1)} s`);
  ws = await Workspace.withStack(STACK);
  ws.prependPath(cluster.binDir);
}, TIMEOUT);

afterAll(async () => {
  ws?.remove();
  await cluster?.stop();
}, TIMEOUT);

describe("the local stack on a live API server", () => {
  test(
    "pulumi up on a fresh cluster: every object of the mock render exists as declared and every workload is ready",
    async () => {
      const started = Date.now();
      const result = await deploy();
      expect({ code: result.code, output: result.code === 0 ? "" : output(result) }).toEqual({ code: 0, output: "" });
      console.log(`deploy-local (pulumi up with await logic) took ${((Date.now() - started) / 1000).toFixed(1)} s\n${result.stdout}`);

      const declared = readObjects((await mockRender(ws, STACK, "deployed")).k8sDir).map(canonical);
      expect(declared.length).toBeGreaterThan(50);
      const problems: string[] = [];
      const liveByKey = await liveObjects(declared);
      for (const object of declared) {
        const found = liveByKey.get(objectKey(object));
        if (!found) {
          problems.push(`${objectKey(object)}: missing on the API server`);
          continue;
        }
        problems.push(...subsetMismatches(object, found).map((m) => `${objectKey(object)} ${m}`));
      }
      expect(problems).toEqual([]);

      const workloads = (await getJson<{ items: ListedObject[] }>(["get", "deployments,statefulsets", "-n", NS])).items;
      expect(workloads.length).toBe(declared.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet").length);
      expect(workloads.map(readinessOf).filter((r) => !r || r.ready !== r.desired || r.desired === 0)).toEqual([]);

      const pdbs = (await getJson<{ items: ListedObject[] }>(["get", "poddisruptionbudgets", "-n", NS])).items;
      expect(pdbs.length).toBe(declared.filter((o) => o.kind === "PodDisruptionBudget").length);
      for (const pdb of pdbs) {
        const status = pdb.status as { expectedPods?: number; currentHealthy?: number };
        expect({ pdb: pdb.metadata.name, expectedPods: status.expectedPods! > 0, healthy: status.currentHealthy }).toEqual({
          pdb: pdb.metadata.name,
          expectedPods: true,
          healthy: status.expectedPods,
        });
      }

      const quotas = (await getJson<{ items: { status: { hard: Record<string, string>; used: Record<string, string> } }[] }>([
        "get", "resourcequotas", "-n", NS,
      ])).items;
      expect(quotas.length).toBe(1);
      const pods = (await getJson<{ items: ListedObject[] }>(["get", "pods", "-n", NS])).items;
      expect(pods.length).toBeGreaterThan(0);
      const { hard, used } = quotas[0].status;
      expect(Object.keys(used).sort()).toEqual(Object.keys(hard).sort());
      expect(Number(used.pods)).toBe(pods.length);
      const over = Object.keys(hard).filter((k) => !(quantityOf(used[k]) < quantityOf(hard[k])));
      expect({ over, used, hard }).toEqual({ over: [], used, hard });
    },
    TIMEOUT,
  );

  test(
    "a second deploy changes nothing, and a preview right after reports no changes",
    async () => {
      const again = await deploy();
      expect(again.code).toBe(0);
      expect(output(again)).not.toMatch(/\b(created|updated|replaced|deleted)\b/);
      const { changeSummary, steps } = await preview(ws, STACK);
      expect(steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn}`)).toEqual([]);
      expect(Object.keys(changeSummary)).toEqual(["same"]);
    },
    TIMEOUT,
  );

  test(
    "a new image version previews as an update of exactly that colour's Deployment, and up rolls it out",
    async () => {
      const before = await live("deployment", "knhk-green", NS);
      updateStackConfig(ws, STACK, "app", ["versions", "green"], () => "0.2.0");
      const { steps } = await preview(ws, STACK);
      const changed = steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${resourceKey(s.urn)}`);
      // Of the objects in the cluster, exactly that Deployment; the component itself records its new arguments.
      expect(changed.filter((c) => c.includes(" kubernetes:"))).toEqual(["update kubernetes:apps/v1:Deployment::knhk-green"]);
      expect(changed.filter((c) => !c.includes(" kubernetes:"))).toEqual(["update knhk:app:KnhkService::knhk"]);

      await ws.pulumiOk(["up", "--stack", STACK, "--yes", "--skip-preview"]);
      const after = await live("deployment", "knhk-green", NS);
      const images = (d: Record<string, unknown>) =>
        ((d.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers).map((c) => c.image);
      expect(images(after).some((i) => i.endsWith(":0.2.0"))).toBe(true);
      const sets = (await getJson<{ items: (ListedObject & { metadata: { ownerReferences?: { name: string }[]; annotations?: Record<string, string> } })[] }>([
        "get", "replicasets", "-n", NS,
      ])).items.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.name === "knhk-green"));
      const revision = (rs: { metadata: { annotations?: Record<string, string> } }) => Number(rs.metadata.annotations?.["deployment.kubernetes.io/revision"]);
      const newest = sets.reduce((a, b) => (revision(a) > revision(b) ? a : b));
      expect(revision(newest)).toBe(Number(before.metadata.annotations?.["deployment.kubernetes.io/revision"]) + 1);
      const desired = (after.spec as { replicas: number }).replicas;
      expect(readinessOf(newest)).toMatchObject({ ready: desired, desired });
      for (const old of sets.filter((rs) => rs !== newest)) expect({ rs: old.metadata.name, replicas: (old.spec as { replicas: number }).replicas }).toEqual({ rs: old.metadata.name, replicas: 0 });
    },
    TIMEOUT,
  );

  test(
    "a change of an immutable StatefulSet field previews as a replace, and up replaces it keeping its pods running",
    async () => {
      const podsBefore = await podUids("app.kubernetes.io/name=postgres");
      updateStackConfig(ws, STACK, "patroni", ["storage", "size"], () => "6Gi");
      const { steps } = await preview(ws, STACK);
      const statefulSet = steps.filter((s) => resourceKey(s.urn) === "kubernetes:apps/v1:StatefulSet::postgres-statefulset");
      expect(statefulSet.map((s) => s.op)).toContain("replace");
      expect(statefulSet.map((s) => s.op)).not.toContain("update");

      await ws.pulumiOk(["up", "--stack", STACK, "--yes", "--skip-preview"]);
      const replaced = await live("statefulset", "postgres", NS);
      const template = (replaced.spec as { volumeClaimTemplates: { spec: { resources: { requests: { storage: string } } } }[] }).volumeClaimTemplates;
      expect(template[0].spec.resources.requests.storage).toBe("6Gi");
      expect(readinessOf(replaced)).toMatchObject({ ready: 2, desired: 2 });
      // The old StatefulSet was deleted with its pods orphaned: the new one adopted the same pods.
      expect(await podUids("app.kubernetes.io/name=postgres")).toEqual(podsBefore);
    },
    TIMEOUT,
  );

  test(
    "the policy pack runs in the engine against the cluster: clean, and failing naming a broken mandatory policy",
    async () => {
      const clean = await ws.pulumi(["preview", "--stack", STACK, "--policy-pack", "policy"]);
      expect({ code: clean.code, policies: output(clean).includes("Policies:") }).toEqual({ code: 0, policies: true });
      expect(output(clean)).not.toMatch(/mandatory/);

      const config = ws.path("policy-config.json");
      fs.writeFileSync(config, JSON.stringify({ "prod-app-high-availability": { productionEnvironments: [STACK] } }));
      const broken = await ws.pulumi(["preview", "--stack", STACK, "--policy-pack", "policy", "--policy-pack-config", config]);
      expect(broken.code).not.toBe(0);
      expect(output(broken)).toContain("prod-app-high-availability");
      expect(output(broken)).toMatch(/mandatory/);
    },
    TIMEOUT,
  );

  test(
    "admission is real: Pod Security, the CRD schema and the LimitRange refuse what breaks them, each named with its reason",
    async () => {
      const restore = injectIntoProgram(ADMISSION_INJECTION);
      let result: PulumiResult;
      try {
        result = await ws.pulumi(["up", "--stack", STACK, "--yes", "--skip-preview", "--continue-on-error"]);
      } finally {
        restore();
      }
      const text = output(result);
      expect(result.code).not.toBe(0);
      // The CRD schema's refusal comes back from the API server to pulumi up, naming the resource.
      expect(text).toMatch(/PrometheusRule \(knhk-monitoring-rules-knhk-slo\):[\s\S]*for: Invalid value: "five minutes"/);
      // Refused pods reach Pulumi only as a rollout that times out, and its Deployment await can even
      // report an update complete from the previous rollout's condition (seen here on knhk-blue). The
      // controllers know: the cluster summary (run by deploy-local.sh after every up, failing it when
      // anything is not ready) names each refusal with the admission plugin's reason.
      const psa = /not ready: Deployment\/knhk-green .*violates PodSecurity "restricted:latest": runAsNonRoot != true/;
      const limitRange = /not ready: Deployment\/knhk-blue .*forbidden: maximum cpu usage per Container is 4, but limit is 64/;
      let summary: PulumiResult | undefined;
      // The controllers record a refusal a moment after they try to create the pods.
      await waitFor("both refusals in the cluster summary", async () => {
        summary = await ws.run(ws.path("node_modules", ".bin", "tsx"), [
          "scripts/cluster-summary.ts", "--kubeconfig", need(cluster, "cluster").kubeconfig, "--namespace", NS,
        ]);
        return psa.test(summary.stdout) && limitRange.test(summary.stdout);
      }, 120_000, 2_000).catch(() => undefined);
      expect(summary?.code).toBe(1);
      expect(summary?.stdout).toMatch(psa);
      expect(summary?.stdout).toMatch(limitRange);

      // Back to the declared state.
      const fixed = await ws.pulumi(["up", "--stack", STACK, "--yes", "--skip-preview"]);
      expect({ code: fixed.code, output: fixed.code === 0 ? "" : output(fixed) }).toEqual({ code: 0, output: "" });
    },
    TIMEOUT,
  );

  test(
    "blue-green for real: deploy switches knhk-service only after the new colour is ready, a failing smoke step keeps the old colour, rollback returns",
    async () => {
      const c = need(cluster, "cluster");
      const target = await startSmokeTarget("knhk-green-local-0");
      const sampler = sampleSwitch();
      try {
        const env = { KUBECONFIG: c.kubeconfig, ...target.auditEnv, ...target.tokens };
        const tsx = ws.path("node_modules", ".bin", "tsx");
        const flags = (apiUrl: string) => [
          "--stack", STACK, "--namespace", NS, "--kubectl", path.join(c.binDir, "kubectl"), "--actor", "cluster-test",
          "--url-template", apiUrl, "--metrics-url-template", target.metricsUrl,
        ];
        const deployFlags = ["--prometheus-url", target.prometheusUrl, "--watch-seconds", "6", "--interval-seconds", "2", "--rollout-timeout-seconds", "300"];
        expect(await selectedColour()).toBe("blue");

        sampler.start();
        const deployed = await ws.run(tsx, ["scripts/blue-green-deploy.ts", ...flags(target.apiUrl), ...deployFlags, "--version", "0.3.0"], env);
        const samples = await sampler.stop();
        expect({ code: deployed.code, output: deployed.code === 0 ? "" : output(deployed) }).toEqual({ code: 0, output: "" });
        expect(await selectedColour()).toBe("green");
        const green = await live("deployment", "knhk-green", NS);
        expect(imageTags(green)).toContain("0.3.0");
        expect(green.metadata.annotations).toMatchObject({
          "knhk.io/version": "0.3.0", "knhk.io/deployed-by": "cluster-test", "knhk.io/previous-color": "blue",
        });
        // Every moment the Service selected green, green was fully rolled out on the new version.
        const switched = samples.filter((x) => x.selected === "green");
        expect(switched.length).toBeGreaterThan(0);
        expect(switched.filter((x) => !(x.greenReady && x.greenTag === "0.3.0"))).toEqual([]);
        expect(await target.psql("SELECT outcome FROM audit_log WHERE action = 'deploy' ORDER BY id")).toMatch(/^\s*success\s*$/m);

        // A smoke step that fails (nothing answers the URL): traffic stays on green, blue gets its version back.
        const dead = `http://127.0.0.1:${await freePort()}`;
        const failed = await ws.run(tsx, ["scripts/blue-green-deploy.ts", ...flags(dead), ...deployFlags, "--version", "0.4.0"], env);
        expect(failed.code).toBe(1);
        expect(failed.stdout).toContain('"stage":"smoke-test"');
        expect(await selectedColour()).toBe("green");
        expect(imageTags(await live("deployment", "knhk-blue", NS))).toContain("0.1.0");

        const rolled = await ws.run(tsx, ["scripts/rollback.ts", ...flags(target.apiUrl), "--yes", "--reason", "cluster test"], env);
        expect({ code: rolled.code, output: rolled.code === 0 ? "" : output(rolled) }).toEqual({ code: 0, output: "" });
        expect(await selectedColour()).toBe("blue");
        expect(imageTags(await live("deployment", "knhk-blue", NS))).toContain("0.1.0");
      } finally {
        await sampler.stop();
        await target.stop();
      }
    },
    TIMEOUT,
  );

  test(
    "cluster.sh down stops every process it started, up after down brings back the same cluster, down --wipe removes it",
    async () => {
      const c = need(cluster, "cluster");
      const before = c.pids();
      expect(Object.keys(before).sort()).toEqual(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]);
      await c.restart();
      expect(Object.values(c.pids()).some((pid) => Object.values(before).includes(pid))).toBe(false);
      // The state survived: the deployed objects are still there.
      expect(readinessOf(await live("statefulset", "postgres", NS))).toMatchObject({ desired: 2 });
      cluster = undefined;
      await c.stop();
      expect(fs.existsSync(c.stateDir)).toBe(false);
    },
    TIMEOUT,
  );
});

/** The live objects of the kinds and namespaces of `declared`, one list call per kind, by objectKey. */
async function liveObjects(declared: readonly { kind: string; metadata: { namespace?: string } }[]): Promise<Map<string, LiveObject>> {
  const lists = new Map<string, { kind: string; namespace?: string }>();
  for (const o of declared) lists.set(`${o.kind} ${o.metadata.namespace ?? ""}`, { kind: o.kind, namespace: o.metadata.namespace });
  const found = new Map<string, LiveObject>();
  for (const { kind, namespace } of lists.values()) {
    const list = await getJson<{ items: LiveObject[] }>(["get", kind, ...(namespace ? ["-n", namespace] : [])]);
    for (const item of list.items) found.set(objectKey({ ...item, kind }), item);
  }
  return found;
}

async function podUids(selector: string): Promise<string[]> {
  const pods = await getJson<{ items: { metadata: { uid: string } }[] }>(["get", "pods", "-n", NS, "-l", selector]);
  return pods.items.map((p) => p.metadata.uid).sort();
}

async function selectedColour(): Promise<string | undefined> {
  const service = await live("service", "knhk-service", NS);
  return (service.spec as { selector?: Record<string, string> }).selector?.[COLOR_LABEL];
}

function imageTags(deployment: Record<string, unknown>): string[] {
  const pod = (deployment.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec;
  return pod.containers.map((c) => c.image.split(":").pop() ?? "");
}

interface SwitchSample {
  readonly selected?: string;
  readonly greenReady: boolean;
  readonly greenTag?: string;
  /** Why green counted as not ready, when it did: the Deployment's generation and status counts. */
  readonly greenStatus?: string;
}

/**
 * Samples, as often as the API server answers, which colour the Service selects and green's rollout.
 * The API server also bumps a Deployment's generation when only its annotations change (the
 * deploy script annotates green after the switch), and the controller observes that a moment
 * later: a sample whose spec is the one last observed rolled out is counted on its status counts.
 */
function sampleSwitch(): { start(): void; stop(): Promise<SwitchSample[]> } {
  const samples: SwitchSample[] = [];
  let running = false;
  let loop: Promise<void> | undefined;
  let lastObservedSpec: string | undefined;
  return {
    start() {
      running = true;
      loop = (async () => {
        while (running) {
          const selected = await selectedColour().catch(() => undefined);
          const green = await live("deployment", "knhk-green", NS).catch(() => undefined);
          const generation = (green?.metadata as { generation?: number } | undefined)?.generation;
          const observed = (green?.status as { observedGeneration?: number } | undefined)?.observedGeneration;
          const spec = green ? JSON.stringify(green.spec) : undefined;
          if (green && observed !== undefined && observed === generation) lastObservedSpec = spec;
          const metadataOnly = green !== undefined && spec === lastObservedSpec;
          const r = green ? readinessOf(metadataOnly ? { ...green, status: { ...(green.status ?? {}), observedGeneration: generation } } : green) : undefined;
          const greenReady = !!r && r.ready === r.desired;
          const st = (green?.status ?? {}) as Record<string, unknown>;
          const greenStatus = green && !greenReady
            ? `generation ${(green.metadata as { generation?: number }).generation} observed ${st.observedGeneration}, replicas ${st.replicas} updated ${st.updatedReplicas} ready ${st.readyReplicas} available ${st.availableReplicas}, desired ${r?.desired}`
            : undefined;
          samples.push({ selected, greenReady, greenTag: green ? imageTags(green)[0] : undefined, ...(greenStatus ? { greenStatus } : {}) });
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
    },
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

function quantityOf(value: string): number {
  const q = quantity(value);
  if (q === undefined) throw new Error(`not a quantity: ${value}`);
  return q;
}

/**
 * Test-only changes of the declared objects, through a Pulumi resource transform registered
 * before the program declares anything: the green pod template loses runAsNonRoot, one alert rule
 * gets a malformed `for`, the blue container asks for more CPU than the LimitRange allows. The
 * Deployments get a short await timeout so the refusal is reported quickly; `--continue-on-error`
 * lets every injected failure be reported by the same update.
 */
const ADMISSION_INJECTION = `
import * as pulumi from "@pulumi/pulumi";

const shortAwait = (args: any) => {
  args.metadata = { ...args.metadata, annotations: { ...(args.metadata?.annotations ?? {}), "pulumi.com/timeoutSeconds": "60" } };
};

pulumi.runtime.registerResourceTransform(async ({ type, name, props, opts }) => {
  const p: any = props;
  if (type === "kubernetes:apps/v1:Deployment" && name === "knhk-green") {
    shortAwait(p);
    const pod = p.spec.template.spec;
    pod.securityContext = { ...pod.securityContext, runAsNonRoot: undefined };
    for (const c of pod.containers) c.securityContext = { ...c.securityContext, runAsNonRoot: undefined };
    return { props: p, opts };
  }
  if (type === "kubernetes:apps/v1:Deployment" && name === "knhk-blue") {
    shortAwait(p);
    const c = p.spec.template.spec.containers[0];
    c.resources = { ...c.resources, limits: { ...c.resources.limits, cpu: "64" } };
    return { props: p, opts };
  }
  if (type === "kubernetes:monitoring.coreos.com/v1:PrometheusRule" && name === "knhk-monitoring-rules-knhk-slo") {
    const rule = p.spec.groups[0].rules.find((r: any) => r.alert);
    if (rule) rule.for = "five minutes";
    return { props: p, opts };
  }
  return undefined;
});
`;

