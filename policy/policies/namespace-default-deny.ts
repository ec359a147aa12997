import { stackPolicy } from "../lib/define";
import { metadataName, namespaceOf, podSpecOf, TYPES } from "../lib/kubernetes";
import { asArray, asRecord, dig, notApplicable, type PolicyInputResource, type Violation } from "../lib/model";

/** A NetworkPolicy that selects every pod and allows nothing in the directions it names. */
export function deniedDirections(policy: PolicyInputResource): Set<string> {
  const spec = asRecord(policy.props.spec) ?? {};
  const selector = asRecord(spec.podSelector) ?? {};
  const selectsAll =
    Object.keys(asRecord(selector.matchLabels) ?? {}).length === 0 && asArray(selector.matchExpressions).length === 0;
  const denied = new Set<string>();
  if (!selectsAll) return denied;
  const types = asArray(spec.policyTypes).map(String);
  // Without policyTypes, Kubernetes infers Ingress (and Egress only when egress rules exist).
  const effective = types.length > 0 ? types : ["Ingress", ...(spec.egress !== undefined ? ["Egress"] : [])];
  if (effective.includes("Ingress") && asArray(spec.ingress).length === 0) denied.add("Ingress");
  if (effective.includes("Egress") && asArray(spec.egress).length === 0) denied.add("Egress");
  return denied;
}

/**
 * Stack policy: every namespace the stack creates or runs pods in has a default-deny
 * NetworkPolicy for both Ingress and Egress (empty podSelector, no rules); explicit allows sit
 * beside it.
 */
export const namespaceDefaultDeny = stackPolicy({
  name: "namespace-default-deny",
  description: "Every namespace with KNHK pods has a default-deny NetworkPolicy (Ingress and Egress).",
  enforcementLevel: "mandatory",
  check: (resources) => {
    const namespaces = new Map<string, string | undefined>();
    for (const r of resources) {
      if (r.type === TYPES.namespace) namespaces.set(metadataName(r), r.urn);
      const ns = namespaceOf(r);
      if (ns && podSpecOf(r) && !namespaces.has(ns)) namespaces.set(ns, r.urn);
    }
    if (namespaces.size === 0) return notApplicable("the stack declares no namespace and no pods");
    const violations: Violation[] = [];
    for (const [ns, urn] of namespaces) {
      const denied = new Set<string>();
      for (const p of resources) {
        if (p.type !== TYPES.networkPolicy || dig(p.props, "metadata", "namespace") !== ns) continue;
        for (const d of deniedDirections(p)) denied.add(d);
      }
      const missing = ["Ingress", "Egress"].filter((d) => !denied.has(d));
      if (missing.length > 0) {
        violations.push({ urn, message: `namespace ${ns} has no default-deny NetworkPolicy for ${missing.join(" and ")} (podSelector {}, policyTypes ${missing.join("/")}, no rules)` });
      }
    }
    return violations;
  },
});
