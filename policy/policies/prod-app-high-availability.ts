import { stackPolicy } from "../lib/define";
import { DEFAULT_PRODUCTION_ENVIRONMENTS, environmentIn, environmentSchema } from "../lib/environments";
import { describeObject, metadataName, namespaceOf, podTemplateLabels, selectorMatches, serviceSelects, TYPES } from "../lib/kubernetes";
import { dig, notApplicable, type PolicyInputResource, type Violation } from "../lib/model";

const DEFAULT_APP_SERVICE = "knhk-service";
const DEFAULT_MIN_REPLICAS = 3;

/** Whether a PDB keeps at least one pod up (minAvailable > 0 or maxUnavailable < replicas). */
function pdbProtects(pdb: PolicyInputResource, replicas: number): boolean {
  const minAvailable = dig(pdb.props, "spec", "minAvailable");
  const maxUnavailable = dig(pdb.props, "spec", "maxUnavailable");
  const percent = (v: unknown) => (typeof v === "string" && v.endsWith("%") ? Number(v.slice(0, -1)) : undefined);
  if (minAvailable !== undefined) {
    const p = percent(minAvailable);
    return p !== undefined ? p > 0 : Number(minAvailable) >= 1;
  }
  if (maxUnavailable !== undefined) {
    const p = percent(maxUnavailable);
    return p !== undefined ? p < 100 : Number(maxUnavailable) < replicas;
  }
  return false;
}

/**
 * Stack policy (production environments): the Deployments behind the app Service run at least
 * 3 replicas, have an HPA with minReplicas >= 3 and a PDB that keeps pods up during disruptions.
 */
export const prodAppHighAvailability = stackPolicy({
  name: "prod-app-high-availability",
  description: "In production the active app Deployment has >= 3 replicas, an HPA with minReplicas >= 3 and a PDB.",
  enforcementLevel: "mandatory",
  configSchema: {
    properties: {
      ...environmentSchema("productionEnvironments", DEFAULT_PRODUCTION_ENVIRONMENTS),
      appService: { type: "string", default: DEFAULT_APP_SERVICE },
      minReplicas: { type: "integer", default: DEFAULT_MIN_REPLICAS },
    },
  },
  check: (resources, ctx) => {
    if (!environmentIn(ctx, "productionEnvironments", DEFAULT_PRODUCTION_ENVIRONMENTS)) {
      return notApplicable(`environment ${ctx.environment} is not a production environment`);
    }
    const serviceName = typeof ctx.config.appService === "string" ? ctx.config.appService : DEFAULT_APP_SERVICE;
    const minReplicas = typeof ctx.config.minReplicas === "number" ? ctx.config.minReplicas : DEFAULT_MIN_REPLICAS;
    const service = resources.find((r) => r.type === TYPES.service && metadataName(r) === serviceName);
    if (!service) return [{ message: `production stack ${ctx.stack} declares no Service ${serviceName} for the app` }];
    const ns = namespaceOf(service);
    const inNs = (r: PolicyInputResource) => namespaceOf(r) === ns;
    const active = resources.filter((r) => r.type === TYPES.deployment && inNs(r) && serviceSelects(service, podTemplateLabels(r)));
    if (active.length === 0) return [{ urn: service.urn, message: `Service ${serviceName} selects no Deployment` }];

    const violations: Violation[] = [];
    for (const deployment of active) {
      const name = metadataName(deployment);
      const where = describeObject(deployment);
      const replicas = dig(deployment.props, "spec", "replicas");
      const hpa = resources.find(
        (r) => r.type === TYPES.hpa && inNs(r) && dig(r.props, "spec", "scaleTargetRef", "kind") === "Deployment" && dig(r.props, "spec", "scaleTargetRef", "name") === name,
      );
      const hpaMin = hpa ? Number(dig(hpa.props, "spec", "minReplicas") ?? 1) : undefined;
      // Without spec.replicas the HPA owns the count; its minimum then bounds it.
      const effectiveReplicas = typeof replicas === "number" ? replicas : hpaMin ?? 1;
      if (effectiveReplicas < minReplicas) {
        violations.push({ urn: deployment.urn, message: `${where} runs ${effectiveReplicas} replica(s) in production; at least ${minReplicas} required` });
      }
      if (!hpa) {
        violations.push({ urn: deployment.urn, message: `${where} has no HorizontalPodAutoscaler` });
      } else if (hpaMin! < minReplicas) {
        violations.push({ urn: hpa.urn, message: `${describeObject(hpa)} for ${name} has minReplicas ${hpaMin}; at least ${minReplicas} required` });
      }
      const labels = podTemplateLabels(deployment);
      const pdbs = resources.filter((r) => r.type === TYPES.pdb && inNs(r) && selectorMatches(dig(r.props, "spec", "selector"), labels) && dig(r.props, "spec", "selector") !== undefined);
      if (pdbs.length === 0) {
        violations.push({ urn: deployment.urn, message: `${where} has no PodDisruptionBudget selecting its pods` });
      } else if (!pdbs.some((p) => pdbProtects(p, effectiveReplicas))) {
        violations.push({ urn: pdbs[0].urn, message: `${describeObject(pdbs[0])} allows every pod of ${name} to be evicted` });
      }
    }
    return violations;
  },
});
