/** Reading Kubernetes objects from Pulumi resource inputs: kinds, pod specs, containers, selectors. */
import { asArray, asRecord, dig, type PolicyInputResource } from "./model";

export const K8S_PREFIX = "kubernetes:";

export const TYPES = {
  deployment: "kubernetes:apps/v1:Deployment",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  daemonSet: "kubernetes:apps/v1:DaemonSet",
  replicaSet: "kubernetes:apps/v1:ReplicaSet",
  job: "kubernetes:batch/v1:Job",
  cronJob: "kubernetes:batch/v1:CronJob",
  pod: "kubernetes:core/v1:Pod",
  service: "kubernetes:core/v1:Service",
  configMap: "kubernetes:core/v1:ConfigMap",
  secret: "kubernetes:core/v1:Secret",
  namespace: "kubernetes:core/v1:Namespace",
  networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  pdb: "kubernetes:policy/v1:PodDisruptionBudget",
  hpa: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
  prometheusRule: "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
  storageClass: "kubernetes:storage.k8s.io/v1:StorageClass",
} as const;

/** A Kubernetes object (not the provider, not a `kubernetes:yaml` grouping component). */
export function isKubernetesObject(type: string): boolean {
  return type.startsWith(K8S_PREFIX) && !type.startsWith("kubernetes:yaml");
}

/** Workloads whose pods run until stopped, so their containers need probes. */
const LONG_RUNNING = new Set<string>([TYPES.deployment, TYPES.statefulSet, TYPES.daemonSet, TYPES.replicaSet, TYPES.pod]);

export function isLongRunning(type: string): boolean {
  return LONG_RUNNING.has(type);
}

/** The pod spec inside a workload, or undefined for kinds without one. */
export function podSpecOf(resource: PolicyInputResource): Record<string, unknown> | undefined {
  const p = resource.props;
  switch (resource.type) {
    case TYPES.deployment:
    case TYPES.statefulSet:
    case TYPES.daemonSet:
    case TYPES.replicaSet:
    case TYPES.job:
      return asRecord(dig(p, "spec", "template", "spec"));
    case TYPES.cronJob:
      return asRecord(dig(p, "spec", "jobTemplate", "spec", "template", "spec"));
    case TYPES.pod:
      return asRecord(p.spec);
    default:
      return undefined;
  }
}

export interface ContainerRef {
  readonly container: Record<string, unknown>;
  readonly name: string;
  readonly init: boolean;
  /** `containers[0]` / `initContainers[1]`: where it sits in the pod spec. */
  readonly path: string;
}

export function containersOf(podSpec: Record<string, unknown>): ContainerRef[] {
  const refs: ContainerRef[] = [];
  for (const [field, init] of [["initContainers", true], ["containers", false]] as const) {
    asArray(podSpec[field]).forEach((c, i) => {
      const container = asRecord(c) ?? {};
      refs.push({ container, name: String(container.name ?? `#${i}`), init, path: `${field}[${i}]` });
    });
  }
  return refs;
}

/** `Deployment knhk/knhk-blue`: how messages name a Kubernetes object. */
export function describeObject(resource: PolicyInputResource): string {
  const kind = resource.type.split(":").pop() ?? resource.type;
  const name = dig(resource.props, "metadata", "name") ?? resource.name;
  const namespace = dig(resource.props, "metadata", "namespace");
  return `${kind} ${namespace ? `${String(namespace)}/` : ""}${String(name)}`;
}

export function metadataName(resource: PolicyInputResource): string {
  return String(dig(resource.props, "metadata", "name") ?? resource.name);
}

export function namespaceOf(resource: PolicyInputResource): string | undefined {
  const ns = dig(resource.props, "metadata", "namespace");
  return typeof ns === "string" ? ns : undefined;
}

/** Labels of the pods a workload creates. */
export function podTemplateLabels(resource: PolicyInputResource): Record<string, string> {
  const labels = asRecord(dig(resource.props, "spec", "template", "metadata", "labels")) ?? {};
  return Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
}

/**
 * Whether a label selector (`{matchLabels, matchExpressions}`) selects `labels`. An empty selector
 * selects everything (the NetworkPolicy/PDB meaning).
 */
export function selectorMatches(selector: unknown, labels: Record<string, string>): boolean {
  const sel = asRecord(selector) ?? {};
  const matchLabels = asRecord(sel.matchLabels) ?? {};
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== String(v)) return false;
  for (const expr of asArray(sel.matchExpressions)) {
    const e = asRecord(expr) ?? {};
    const key = String(e.key);
    const values = asArray(e.values).map(String);
    const has = key in labels;
    switch (e.operator) {
      case "In": if (!has || !values.includes(labels[key])) return false; break;
      case "NotIn": if (has && values.includes(labels[key])) return false; break;
      case "Exists": if (!has) return false; break;
      case "DoesNotExist": if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

/** A Service's `spec.selector` is a plain label map. */
export function serviceSelects(service: PolicyInputResource, labels: Record<string, string>): boolean {
  const selector = asRecord(dig(service.props, "spec", "selector"));
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === String(v));
}

/**
 * Runs a per-container check over a workload: each message is prefixed with the object and
 * container. Kinds without pods are not applicable.
 */
export function checkContainers(
  resource: PolicyInputResource,
  check: (ref: ContainerRef, podSpec: Record<string, unknown>) => string[],
  options: { longRunningOnly?: boolean; skipInit?: boolean } = {},
): { message: string }[] | { notApplicable: string } {
  const podSpec = podSpecOf(resource);
  if (!podSpec) return { notApplicable: `${resource.type} has no pod template` };
  if (options.longRunningOnly && !isLongRunning(resource.type)) {
    return { notApplicable: `${resource.type} runs to completion` };
  }
  const violations: { message: string }[] = [];
  for (const ref of containersOf(podSpec)) {
    if (options.skipInit && ref.init) continue;
    for (const problem of check(ref, podSpec)) {
      violations.push({ message: `${describeObject(resource)}: container "${ref.name}" (${ref.path}) ${problem}` });
    }
  }
  return violations;
}
