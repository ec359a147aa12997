import { resourcePolicy } from "../lib/define";
import { checkContainers } from "../lib/kubernetes";
import { asRecord } from "../lib/model";

/**
 * Every container runs as a non-root user: `runAsNonRoot: true` on the container or inherited
 * from the pod, and no `runAsUser: 0` at either level.
 */
export const containerRunAsNonRoot = resourcePolicy({
  name: "container-run-as-non-root",
  description: "Every container runs with runAsNonRoot: true and never as uid 0.",
  enforcementLevel: "mandatory",
  check: (resource) =>
    checkContainers(resource, ({ container }, podSpec) => {
      const pod = asRecord(podSpec.securityContext) ?? {};
      const own = asRecord(container.securityContext) ?? {};
      const nonRoot = own.runAsNonRoot ?? pod.runAsNonRoot;
      const user = own.runAsUser ?? pod.runAsUser;
      const problems: string[] = [];
      if (nonRoot !== true) problems.push("does not set securityContext.runAsNonRoot: true (container or pod)");
      if (user === 0 || user === "0") problems.push("runs as uid 0 (securityContext.runAsUser)");
      return problems;
    }),
});
