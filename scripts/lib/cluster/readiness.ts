/**
 * Readiness of the objects in a namespace, as the API server reports them: for each kind, how
 * many objects there are and, for the kinds that have one, how many are ready out of desired.
 * Pure: the caller lists the objects (kubectl get -o json, or a Kubernetes client).
 */

export interface ListedObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec?: Record<string, unknown>;
  readonly status?: Record<string, unknown>;
}

export interface Readiness {
  readonly kind: string;
  readonly name: string;
  /** Ready units (replicas, healthy pods, a bound claim...) and the units wanted. */
  readonly ready: number;
  readonly desired: number;
  /** Why the controller cannot make progress, as it reports it (e.g. admission refusing the pods). */
  readonly failure?: string;
}

export interface KindSummary {
  readonly kind: string;
  readonly objects: number;
  /** Objects whose ready units reach their desired units, for kinds that report readiness. */
  readonly readyObjects?: number;
}

const num = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0);

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly message?: string;
}

function conditions(status: Record<string, unknown>): Condition[] {
  return Array.isArray(status.conditions) ? (status.conditions as Condition[]) : [];
}

/** The message of a true ReplicaFailure condition: the controller could not create pods. */
function replicaFailure(status: Record<string, unknown>): { failure?: string } {
  const failed = conditions(status).find((c) => c.type === "ReplicaFailure" && c.status === "True");
  return failed?.message ? { failure: failed.message } : {};
}

/** ready/desired of one object, or undefined for kinds without a readiness notion. */
export function readinessOf(object: ListedObject): Readiness | undefined {
  const { kind } = object;
  const spec = object.spec ?? {};
  const status = object.status ?? {};
  const base = { kind, name: object.metadata.name };
  switch (kind) {
    case "Deployment":
    case "StatefulSet": {
      const desired = spec.replicas === undefined ? 1 : num(spec.replicas);
      // Ready only counts when the controller has seen the latest spec and every replica is updated.
      const current = num(status.observedGeneration) >= num((object.metadata as { generation?: number }).generation);
      const updated = num(status.updatedReplicas);
      return { ...base, desired, ready: current ? Math.min(num(status.readyReplicas), updated) : 0, ...replicaFailure(status) };
    }
    case "ReplicaSet":
      return { ...base, desired: num(spec.replicas), ready: num(status.readyReplicas), ...replicaFailure(status) };
    case "PodDisruptionBudget":
      return { ...base, desired: num(status.expectedPods), ready: num(status.currentHealthy) };
    case "PersistentVolumeClaim":
      return { ...base, desired: 1, ready: status.phase === "Bound" ? 1 : 0 };
    case "Pod": {
      const ready = conditions(status).some((c) => c.type === "Ready" && c.status === "True");
      return { ...base, desired: 1, ready: status.phase === "Running" && ready ? 1 : 0 };
    }
    default:
      return undefined;
  }
}

/** One row per kind, sorted by kind. */
export function summarize(objects: readonly ListedObject[]): KindSummary[] {
  const byKind = new Map<string, ListedObject[]>();
  for (const object of objects) byKind.set(object.kind, [...(byKind.get(object.kind) ?? []), object]);
  return [...byKind]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, list]) => {
      const readiness = list.map(readinessOf).filter((r): r is Readiness => r !== undefined);
      return readiness.length === 0
        ? { kind, objects: list.length }
        : { kind, objects: list.length, readyObjects: readiness.filter((r) => r.ready >= r.desired).length };
    });
}

/** The summary as a fixed-width table. */
export function formatSummary(namespace: string, rows: readonly KindSummary[], notReady: readonly Readiness[]): string {
  const lines = [`namespace ${namespace}: ${rows.reduce((n, r) => n + r.objects, 0)} objects`, "  kind                        objects  ready"];
  for (const row of rows) {
    const ready = row.readyObjects === undefined ? "-" : `${row.readyObjects}/${row.objects}`;
    lines.push(`  ${row.kind.padEnd(28)}${String(row.objects).padStart(7)}  ${ready}`);
  }
  for (const r of notReady) lines.push(`  not ready: ${r.kind}/${r.name} ${r.ready}/${r.desired}${r.failure ? `: ${r.failure}` : ""}`);
  return lines.join("\n");
}
