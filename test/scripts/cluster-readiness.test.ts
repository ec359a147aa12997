/** Readiness as the cluster summary reports it, from objects as the API server returns them. */
import { formatSummary, readinessOf, summarize, type ListedObject } from "../../scripts/lib/cluster/readiness";

const deployment = (replicas: number | undefined, status: Record<string, number>, generation = 1): ListedObject =>
  ({ kind: "Deployment", metadata: { name: "web", generation }, spec: replicas === undefined ? {} : { replicas }, status } as ListedObject);

describe("readinessOf", () => {
  test("a workload is ready when the controller saw the latest spec and every replica is updated and ready", () => {
    expect(readinessOf(deployment(3, { observedGeneration: 1, readyReplicas: 3, updatedReplicas: 3 }))).toMatchObject({ ready: 3, desired: 3 });
    expect(readinessOf(deployment(3, { observedGeneration: 1, readyReplicas: 3, updatedReplicas: 1 }))).toMatchObject({ ready: 1, desired: 3 });
    expect(readinessOf(deployment(3, { observedGeneration: 1, readyReplicas: 3, updatedReplicas: 3 }, 2))).toMatchObject({ ready: 0, desired: 3 });
    expect(readinessOf(deployment(undefined, {}))).toMatchObject({ ready: 0, desired: 1 });
  });

  test("a Deployment whose pods admission refuses reports the controller's reason", () => {
    const refused = deployment(1, { observedGeneration: 1, readyReplicas: 1, updatedReplicas: 0 });
    const withCondition = {
      ...refused,
      status: { ...refused.status, conditions: [
        { type: "Available", status: "True", message: "Deployment has minimum availability." },
        { type: "ReplicaFailure", status: "True", message: 'pods "web-1" is forbidden: violates PodSecurity "restricted:latest"' },
      ] },
    } as ListedObject;
    expect(readinessOf(withCondition)).toEqual({ kind: "Deployment", name: "web", ready: 0, desired: 1, failure: 'pods "web-1" is forbidden: violates PodSecurity "restricted:latest"' });
    expect(formatSummary("ns", summarize([withCondition]), [readinessOf(withCondition)!])).toContain(
      'not ready: Deployment/web 0/1: pods "web-1" is forbidden: violates PodSecurity',
    );
    expect(readinessOf(refused)).not.toHaveProperty("failure");
  });

  test("PDBs, claims and pods", () => {
    expect(readinessOf({ kind: "PodDisruptionBudget", metadata: { name: "p" }, status: { expectedPods: 2, currentHealthy: 1 } })).toMatchObject({ ready: 1, desired: 2 });
    expect(readinessOf({ kind: "PersistentVolumeClaim", metadata: { name: "c" }, status: { phase: "Pending" } })).toMatchObject({ ready: 0, desired: 1 });
    expect(readinessOf({ kind: "PersistentVolumeClaim", metadata: { name: "c" }, status: { phase: "Bound" } })).toMatchObject({ ready: 1, desired: 1 });
    const pod = (phase: string, ready: string): ListedObject => ({ kind: "Pod", metadata: { name: "x" }, status: { phase, conditions: [{ type: "Ready", status: ready }] } });
    expect(readinessOf(pod("Running", "True"))).toMatchObject({ ready: 1 });
    expect(readinessOf(pod("Running", "False"))).toMatchObject({ ready: 0 });
    expect(readinessOf(pod("Pending", "True"))).toMatchObject({ ready: 0 });
    expect(readinessOf({ kind: "ConfigMap", metadata: { name: "c" } })).toBeUndefined();
  });
});

describe("summarize / formatSummary", () => {
  test("one row per kind; kinds without readiness show a dash; not-ready objects are named", () => {
    const objects = [
      deployment(2, { observedGeneration: 1, readyReplicas: 2, updatedReplicas: 2 }),
      { ...deployment(2, { observedGeneration: 1, readyReplicas: 0, updatedReplicas: 2 }), metadata: { name: "api", generation: 1 } } as ListedObject,
      { kind: "ConfigMap", metadata: { name: "c" } },
    ];
    const rows = summarize(objects);
    expect(rows).toEqual([{ kind: "ConfigMap", objects: 1 }, { kind: "Deployment", objects: 2, readyObjects: 1 }]);
    const text = formatSummary("ns", rows, [readinessOf(objects[1])!]);
    expect(text).toContain("namespace ns: 3 objects");
    expect(text).toMatch(/ConfigMap\s+1\s+-/);
    expect(text).toMatch(/Deployment\s+2\s+1\/2/);
    expect(text).toContain("not ready: Deployment/api 0/2");
  });
});
