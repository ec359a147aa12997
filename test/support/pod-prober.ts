/**
 * The kubelet's readiness prober for pods kwok simulates while a test runs their containers as
 * local processes: every `periodMs` each pod's probe runs, and after `failureThreshold` failures
 * in a row (or `successThreshold` successes) the pod's Ready condition is written to the API
 * server, which is what the EndpointSlice controller reads. `pause(pod)` is a dead kubelet (node
 * death): the status stays as last written.
 */
import type { KubeApi } from "./kube-api";

export interface ProbeSettings {
  readonly periodMs: number;
  readonly failureThreshold: number;
  readonly successThreshold: number;
}

export interface PodProber {
  pause(pod: string): void;
  resume(pod: string): void;
  stop(): Promise<void>;
}

export async function setPodReady(api: KubeApi, namespace: string, pod: string, ready: boolean): Promise<void> {
  const now = new Date().toISOString();
  const status = ready ? "True" : "False";
  await api.patchPodStatus(namespace, pod, {
    conditions: [
      { type: "Ready", status, lastTransitionTime: now, lastProbeTime: null, reason: ready ? "" : "ReadinessProbeFailed", message: "" },
      { type: "ContainersReady", status, lastTransitionTime: now, lastProbeTime: null, reason: ready ? "" : "ReadinessProbeFailed", message: "" },
    ],
  });
}

export function startPodProber(
  api: KubeApi,
  namespace: string,
  probes: Readonly<Record<string, () => Promise<boolean>>>,
  settings: ProbeSettings,
): PodProber {
  const paused = new Set<string>();
  const written = new Map<string, boolean>();
  const streak = new Map<string, { ok: boolean; count: number }>();
  let stopped = false;

  const probeOnce = async (pod: string) => {
    if (paused.has(pod)) return;
    const ok = await probes[pod]().catch(() => false);
    const s = streak.get(pod);
    const next = s && s.ok === ok ? { ok, count: s.count + 1 } : { ok, count: 1 };
    streak.set(pod, next);
    const threshold = ok ? settings.successThreshold : settings.failureThreshold;
    if (next.count >= threshold && written.get(pod) !== ok && !paused.has(pod)) {
      await setPodReady(api, namespace, pod, ok);
      written.set(pod, ok);
    }
  };
  const loops = Object.keys(probes).map(async (pod) => {
    while (!stopped) {
      const started = Date.now();
      await probeOnce(pod).catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.max(0, settings.periodMs - (Date.now() - started))));
    }
  });

  return {
    pause: (pod) => void paused.add(pod),
    resume(pod) {
      paused.delete(pod);
      streak.delete(pod);
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}
