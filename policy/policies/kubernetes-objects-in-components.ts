import { stackPolicy } from "../lib/define";
import { describeObject, isKubernetesObject } from "../lib/kubernetes";
import { notApplicable, parseUrn, STACK_TYPE, type PolicyInputResource, type Violation } from "../lib/model";

const DEFAULT_COMPONENT_PREFIX = "knhk:";

/**
 * Stack policy: every Kubernetes object belongs to a component: some ancestor in its parent
 * chain is a `knhk:*` ComponentResource, so no object hangs directly off the stack root.
 */
export const kubernetesObjectsInComponents = stackPolicy({
  name: "kubernetes-objects-in-components",
  description: "Every Kubernetes object belongs to a knhk component (its parent chain does not end at the stack root).",
  enforcementLevel: "mandatory",
  configSchema: { properties: { componentTypePrefix: { type: "string", default: DEFAULT_COMPONENT_PREFIX } } },
  check: (resources, ctx) => {
    const prefix = typeof ctx.config.componentTypePrefix === "string" ? ctx.config.componentTypePrefix : DEFAULT_COMPONENT_PREFIX;
    const objects = resources.filter((r) => isKubernetesObject(r.type));
    if (objects.length === 0) return notApplicable("the stack declares no Kubernetes objects");
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const violations: Violation[] = [];
    for (const object of objects) {
      const chain = ancestorTypes(object, byUrn);
      if (!chain.some((t) => t.startsWith(prefix))) {
        const path = [object.type, ...chain].join(" <- ");
        violations.push({ urn: object.urn, message: `${describeObject(object)} belongs to no ${prefix}* component (parent chain: ${path})` });
      }
    }
    return violations;
  },
});

/** Types of a resource's ancestors, nearest first, ending at the stack (or where the chain leaves the list). */
function ancestorTypes(resource: PolicyInputResource, byUrn: ReadonlyMap<string, PolicyInputResource>): string[] {
  const types: string[] = [];
  const seen = new Set<string>();
  for (let parentUrn = resource.parent; parentUrn && !seen.has(parentUrn); ) {
    seen.add(parentUrn);
    const parent = byUrn.get(parentUrn);
    const type = parent?.type ?? parseUrn(parentUrn).typeChain.at(-1) ?? "?";
    types.push(type);
    if (type === STACK_TYPE || !parent) break;
    parentUrn = parent.parent;
  }
  if (types.length === 0) types.push("(no parent)");
  return types;
}
