import { resourcePolicy } from "../lib/define";
import { checkContainers } from "../lib/kubernetes";
import { asRecord } from "../lib/model";

const PROBES = ["livenessProbe", "readinessProbe"] as const;
const HANDLERS = ["httpGet", "tcpSocket", "exec", "grpc"];

/** Containers of long-running workloads have liveness and readiness probes with a handler. */
export const containerProbes = resourcePolicy({
  name: "container-probes",
  description: "Containers of Deployments, StatefulSets and DaemonSets have liveness and readiness probes.",
  enforcementLevel: "mandatory",
  check: (resource) =>
    checkContainers(
      resource,
      ({ container }) =>
        PROBES.flatMap((probe) => {
          const spec = asRecord(container[probe]);
          if (!spec) return [`has no ${probe}`];
          return HANDLERS.some((h) => asRecord(spec[h])) ? [] : [`has a ${probe} without a handler (${HANDLERS.join("/")})`];
        }),
      { longRunningOnly: true, skipInit: true },
    ),
});
