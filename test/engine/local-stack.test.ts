/**
 * The `local` stack in the real Pulumi engine (scripts/engine.sh), rendering to a folder instead
 * of its cluster (`knhk:kubernetes.renderDir`, the documented way to get the engine's YAML):
 * `pulumi up` renders the same Kubernetes objects as the mock render, previews report no change
 * or exactly the changed resources, and the engine's state keeps every Kubernetes object under a
 * component. test/cluster/ deploys the same stack to a live API server.
 */
import { mockRender, preview, resourceKey, updateStackConfig, useRenderDir, Workspace } from "./engine";
import { byKey, canonical, readObjects } from "./manifests";

const ENGINE_TIMEOUT = 15 * 60_000;
const STACK = "local";

interface StateResource {
  readonly urn: string;
  readonly type: string;
  readonly custom?: boolean;
  readonly parent?: string;
}

describe("the local stack in the real Pulumi engine", () => {
  let ws: Workspace;

  beforeAll(async () => {
    ws = await Workspace.withStack(STACK);
    useRenderDir(ws, STACK, ".out/local/manifests");
  }, ENGINE_TIMEOUT);

  afterAll(() => ws?.remove());

  test(
    "pulumi up on a fresh state writes the manifests of the mock render",
    async () => {
      await ws.pulumiOk(["up", "--stack", STACK, "--yes", "--skip-preview"]);

      const engine = byKey(readObjects(ws.path(".out", "local", "manifests")).map(canonical));
      const mock = byKey(readObjects((await mockRender(ws, STACK, "before")).k8sDir).map(canonical));

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
      const { steps, changeSummary } = await preview(ws, STACK);
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
      const before = await mockRender(ws, STACK, "before-change");
      updateStackConfig(ws, STACK, "app", ["autoscaling", "maxReplicas"], (old) => Number(old) + 1);
      const after = await mockRender(ws, STACK, "after-change");

      const inputsBefore = new Map(before.resources.map((r) => [resourceKey(r.urn), JSON.stringify(r.inputs)]));
      const expected = after.resources
        .filter((r) => inputsBefore.get(resourceKey(r.urn)) !== JSON.stringify(r.inputs))
        .map((r) => `update ${resourceKey(r.urn)}`)
        .sort();
      expect(expected.length).toBeGreaterThan(0);

      const { steps, changeSummary } = await preview(ws, STACK);
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
