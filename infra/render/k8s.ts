/**
 * Pure Kubernetes building blocks shared by the components: standard labels, the restricted
 * security contexts, probes. Plain objects typed structurally (no @pulumi import).
 */

export const PART_OF = "knhk";
export const MANAGED_BY = "pulumi";

/** Recommended labels (`app.kubernetes.io/*`); `name` + `component` identify a workload. */
export function labels(name: string, component: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/managed-by": MANAGED_BY,
    ...extra,
  };
}

/** The subset of `labels()` that is stable and therefore usable as a selector. */
export function selectorLabels(name: string, component: string, extra: Record<string, string> = {}): Record<string, string> {
  return { "app.kubernetes.io/name": name, "app.kubernetes.io/component": component, ...extra };
}

/** Pod-level security context for Pod Security `restricted`. */
export function restrictedPodSecurityContext(uid: number, gid: number = uid) {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    fsGroup: gid,
    fsGroupChangePolicy: "OnRootMismatch",
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Container-level security context for Pod Security `restricted`, read-only root filesystem. */
export function restrictedContainerSecurityContext(uid: number, gid: number = uid) {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

export interface ProbeTiming {
  readonly initialDelaySeconds: number;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly failureThreshold: number;
}

export function httpProbe(path: string, port: number | string, t: ProbeTiming, scheme: "HTTP" | "HTTPS" = "HTTP") {
  return { httpGet: { path, port, scheme }, ...t };
}

export function tcpProbe(port: number | string, t: ProbeTiming) {
  return { tcpSocket: { port }, ...t };
}

export function execProbe(command: string[], t: ProbeTiming) {
  return { exec: { command }, ...t };
}

/** Prometheus scrape annotations (for scrapers that use them; the operator uses PodMonitors). */
export function prometheusAnnotations(port: number, path = "/metrics"): Record<string, string> {
  return { "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": path };
}

/** Spread replicas over nodes (required) and zones (preferred). */
export function antiAffinity(selector: Record<string, string>) {
  return {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: selector }, topologyKey: "kubernetes.io/hostname" },
      ],
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: { labelSelector: { matchLabels: selector }, topologyKey: "topology.kubernetes.io/zone" },
        },
      ],
    },
  };
}

/** Writable scratch directories for containers with a read-only root filesystem. */
export function emptyDirVolume(name: string, sizeLimit: string, medium?: "Memory") {
  return { name, emptyDir: medium ? { medium, sizeLimit } : { sizeLimit } };
}
