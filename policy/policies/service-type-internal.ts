import { resourcePolicy } from "../lib/define";
import { describeObject, metadataName, namespaceOf, TYPES } from "../lib/kubernetes";
import { asArray, dig, notApplicable } from "../lib/model";

const EXTERNAL_TYPES = new Set(["LoadBalancer", "NodePort"]);

/**
 * Services stay inside the cluster: no LoadBalancer or NodePort, except the Services listed
 * (`namespace/name`) in the policy config `allowedExternalServices`. Traffic enters through the
 * ingress controller.
 */
export const serviceTypeInternal = resourcePolicy({
  name: "service-type-internal",
  description: "Services are not LoadBalancer or NodePort unless allowed by policy config (allowedExternalServices).",
  enforcementLevel: "mandatory",
  configSchema: {
    properties: { allowedExternalServices: { type: "array", items: { type: "string" }, default: [] } },
  },
  check: (resource, ctx) => {
    if (resource.type !== TYPES.service) return notApplicable("not a Service");
    const type = dig(resource.props, "spec", "type");
    if (typeof type !== "string" || !EXTERNAL_TYPES.has(type)) return [];
    const id = `${namespaceOf(resource) ?? "default"}/${metadataName(resource)}`;
    const allowed = asArray(ctx.config.allowedExternalServices).map(String);
    if (allowed.includes(id)) return [];
    return [{ message: `${describeObject(resource)} is of type ${type}; only ClusterIP/headless Services are allowed unless "${id}" is listed in allowedExternalServices` }];
  },
});
