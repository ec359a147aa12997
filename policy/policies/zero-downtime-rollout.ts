import { resourcePolicy } from "../lib/define";
import { describeObject, TYPES } from "../lib/kubernetes";
import { dig, notApplicable } from "../lib/model";

/**
 * Advisory: Deployments roll out without losing capacity (RollingUpdate, maxUnavailable 0,
 * maxSurge >= 1). Blue-green covers version changes; this covers config-only rollouts.
 */
export const zeroDowntimeRollout = resourcePolicy({
  name: "zero-downtime-rollout",
  description: "Deployments use RollingUpdate with maxUnavailable 0 and maxSurge >= 1.",
  enforcementLevel: "advisory",
  check: (resource) => {
    if (resource.type !== TYPES.deployment) return notApplicable("not a Deployment");
    const strategy = dig(resource.props, "spec", "strategy");
    const type = dig(strategy, "type") ?? "RollingUpdate";
    const where = describeObject(resource);
    if (type !== "RollingUpdate") return [{ message: `${where} uses strategy ${String(type)}; use RollingUpdate` }];
    const maxUnavailable = dig(strategy, "rollingUpdate", "maxUnavailable");
    const maxSurge = dig(strategy, "rollingUpdate", "maxSurge");
    const problems: string[] = [];
    if (maxUnavailable !== 0 && maxUnavailable !== "0%" && maxUnavailable !== "0") {
      problems.push(`${where} sets rollingUpdate.maxUnavailable ${JSON.stringify(maxUnavailable ?? "25% (default)")}; use 0`);
    }
    if (maxSurge === 0 || maxSurge === "0" || maxSurge === "0%") problems.push(`${where} sets rollingUpdate.maxSurge 0; use >= 1`);
    return problems.map((message) => ({ message }));
  },
});
