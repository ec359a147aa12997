/**
 * The `local` stack in the real Pulumi engine (scripts/engine.sh): `pulumi up` renders the same
 * Kubernetes objects as the mock render, previews report no change or exactly the changed
 * resources, and the engine's state keeps every Kubernetes object under a component.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { Workspace } from "./engine";
import { byKey, canonical, readObjects } from "./manifests";

const ENGINE_TIMEOUT = 15 * 60_000;
const STACK = "local";

interface StateResource {
  readonly urn: string;
  readonly type: string;
  readonly custom?: boolean;
  readonly parent?: string;
}

interface PreviewStep {
  readonly op: string;
  readonly urn: string;
  /** Changed property paths, e.g. { "spec.maxReplicas": { kind: "update" } }. */
  readonly detailedDiff?: Record<string, unknown> | null;
}

interface RenderedResource {
  readonly type: string;
  readonly urn: string;
  readonly inputs: Record<string, unknown>;
}

/**
 * `type::name` of a URN. The mock monitor spells parent types into URNs differently from the
 * engine (it includes the stack's type), so resources are matched on their own type and name.
 */
function resourceKey(urn: string): string {
  const [, , qualifiedType, name] = urn.split("::");
  return `${qualifiedType.split("$").pop()}::${name}`;
}

/** `npm run render` in the workspace: the program under mocks, with the workspace's stack config. */
async function mockRender(ws: Workspace, name: string): Promise<{ resources: RenderedResource[]; k8sDir: string }> {
  const out = ws.path(".out", `mock-${name}`);
  const tsx = ws.path("node_modules", ".bin", "tsx");
  const result = await ws.run(tsx, ["scripts/render.ts", "--stack", STACK, "--out", out]);
  if (result.code !== 0) throw new Error(`mock render failed:\n${result.stdout}\n${result.stderr}`);
  const resources = JSON.parse(fs.readFileSync(path.join(out, "resources.json"), "utf8")) as RenderedResource[];
  return { resources, k8sDir: path.join(out, "k8s") };
}

interface Preview {
  readonly steps: PreviewStep[];
  /** Count of resources per operation, e.g. { same: 40, update: 2 }. */
  readonly changeSummary: Record<string, number>;
}

async function preview(ws: Workspace): Promise<Preview> {
  const result = await ws.pulumiOk(["preview", "--stack", STACK, "--json"]);
  return JSON.parse(result.stdout) as Preview;
}

/** Changes `knhk:<section>` path `keys` in the workspace's Pulumi.local.yaml, keeping the rest of the file. */
function updateStackConfig(ws: Workspace, section: string, keys: string[], update: (old: unknown) => unknown): void {
  const file = ws.path(`Pulumi.${STACK}.yaml`);
  const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
  const at = ["config", `knhk:${section}`, ...keys];
  doc.setIn(at, update(doc.getIn(at)));
  fs.writeFileSync(file, doc.toString());
}

describe("the local stack in the real Pulumi engine", () => {
  let ws: Workspace;

  beforeAll(async () => {
    ws = await Workspace.withStack(STACK);
  }, ENGINE_TIMEOUT);

  afterAll(() => ws?.remove());

  test(
    "pulumi up on a fresh state writes the manifests of the mock render",
    async () => {
      await ws.pulumiOk(["up", "--stack", STACK, "--yes", "--skip-preview"]);

      const engine = byKey(readObjects(ws.path(".out", "local", "manifests")).map(canonical));
      const mock = byKey(readObjects((await mockRender(ws, "before")).k8sDir).map(canonical));

      expect(engine.size).toBeGreaterThan(0);
      expect([...engine.keys()].sort()).toEqual([...mock.keys()].sort());
      for (const [key, object] of mock) {
        expect({ key, object: engine.get(key) }).toEqual({ key, object });
      }
    },
    ENGINE_TIMEOUT,
  );

  test(
    "a preview right after the update reports no changes",
    async () => {
      const { steps, changeSummary } = await preview(ws);
      expect(Object.keys(changeSummary)).toEqual(["same"]);
      expect(changeSummary.same).toBeGreaterThan(0);
      expect(steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn}`)).toEqual([]);
    },
    ENGINE_TIMEOUT,
  );

  test(
    "the engine state lists every Kubernetes object under its component",
    async () => {
      const exported = await ws.pulumiOk(["stack", "export", "--stack", STACK]);
      const resources = (JSON.parse(exported.stdout) as { deployment: { resources: StateResource[] } }).deployment
        .resources;
      const byUrn = new Map(resources.map((r) => [r.urn, r]));
      const k8sObjects = resources.filter((r) => r.type.startsWith("kubernetes:") && r.custom);

      expect(k8sObjects.length).toBe(readObjects(ws.path(".out", "local", "manifests")).length);
      const misplaced = k8sObjects.filter((r) => {
        const parent = r.parent ? byUrn.get(r.parent) : undefined;
        return !parent || parent.custom || !parent.type.startsWith("knhk:");
      });
      expect(misplaced.map((r) => `${r.urn} (parent ${r.parent ?? "none"})`)).toEqual([]);
    },
    ENGINE_TIMEOUT,
  );

  test(
    "after a config change the preview reports exactly the resources whose inputs change",
    async () => {
      const before = await mockRender(ws, "before-change");
      updateStackConfig(ws, "app", ["autoscaling", "maxReplicas"], (old) => Number(old) + 1);
      const after = await mockRender(ws, "after-change");

      const inputsBefore = new Map(before.resources.map((r) => [resourceKey(r.urn), JSON.stringify(r.inputs)]));
      const expected = after.resources
        .filter((r) => inputsBefore.get(resourceKey(r.urn)) !== JSON.stringify(r.inputs))
        .map((r) => `update ${resourceKey(r.urn)}`)
        .sort();
      expect(expected.length).toBeGreaterThan(0);

      const { steps, changeSummary } = await preview(ws);
      expect(changeSummary.update).toBe(expected.length);
      const changed = steps.filter((s) => s.op !== "same");
      expect(changed.map((s) => `${s.op} ${resourceKey(s.urn)}`).sort()).toEqual(expected);
      // The Kubernetes objects among them differ in exactly the changed field.
      const k8sChanges = changed.filter((s) => resourceKey(s.urn).startsWith("kubernetes:"));
      expect(k8sChanges.length).toBeGreaterThan(0);
      for (const step of k8sChanges) {
        expect({ urn: step.urn, diff: Object.keys(step.detailedDiff ?? {}) }).toEqual({ urn: step.urn, diff: ["spec.maxReplicas"] });
      }
    },
    ENGINE_TIMEOUT,
  );
});
