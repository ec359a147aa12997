import { resourcePolicy } from "../lib/define";
import { describeObject, TYPES } from "../lib/kubernetes";
import { asArray, asRecord, dig, notApplicable, type Violation } from "../lib/model";

/**
 * Every StatefulSet volume claim names one of the stack's configured storage classes explicitly
 * (no claim falls back to the cluster default class).
 */
export const statefulSetStorageClass = resourcePolicy({
  name: "statefulset-storage-class",
  description: "Every StatefulSet volumeClaimTemplate uses the storage class configured for the stack.",
  enforcementLevel: "mandatory",
  configSchema: {
    properties: { storageClasses: { type: "array", items: { type: "string" } } },
  },
  check: (resource, ctx) => {
    if (resource.type !== TYPES.statefulSet) return notApplicable("not a StatefulSet");
    const templates = asArray(dig(resource.props, "spec", "volumeClaimTemplates"));
    if (templates.length === 0) return notApplicable("the StatefulSet has no volumeClaimTemplates");
    const allowed = ctx.stackSettings?.storageClasses;
    if (!allowed || allowed.length === 0) {
      return [{ message: `${describeObject(resource)}: cannot check storage classes: no configured storage class for stack "${ctx.stack}" (no Pulumi.${ctx.stack}.yaml and no storageClasses policy config)` }];
    }
    const violations: Violation[] = [];
    templates.forEach((t, i) => {
      const template = asRecord(t) ?? {};
      const claim = String(dig(template, "metadata", "name") ?? `#${i}`);
      const cls = dig(template, "spec", "storageClassName");
      if (typeof cls !== "string" || cls === "") {
        violations.push({ message: `${describeObject(resource)}: volumeClaimTemplate "${claim}" sets no storageClassName (configured: ${allowed.join(", ")})` });
      } else if (!allowed.includes(cls)) {
        violations.push({ message: `${describeObject(resource)}: volumeClaimTemplate "${claim}" uses storage class "${cls}", configured: ${allowed.join(", ")}` });
      }
    });
    return violations;
  },
});
