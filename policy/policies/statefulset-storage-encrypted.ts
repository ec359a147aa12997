import { ENCRYPTED_PARAMETER } from "../../infra/render/volume-encryption";
import { stackPolicy } from "../lib/define";
import { DEFAULT_REPLICATED_ENVIRONMENTS, environmentIn, environmentSchema } from "../lib/environments";
import { describeObject, metadataName, TYPES } from "../lib/kubernetes";
import { asArray, asRecord, dig, notApplicable, type Violation } from "../lib/model";

/**
 * Stack policy (staging, prod): every StatefulSet volume is encrypted at rest with a key of the
 * stack's. Its claim names a StorageClass the stack itself declares, and that class says
 * `encrypted: "true"` with a `kmsKeyId`. A class the stack does not declare (the cluster's
 * default, a hand-made one) cannot be checked, so it is refused too.
 */
export const statefulSetStorageEncrypted = stackPolicy({
  name: "statefulset-storage-encrypted",
  description: "In staging and prod every StatefulSet volume uses a StorageClass of the stack that encrypts with a KMS key.",
  enforcementLevel: "mandatory",
  configSchema: { properties: { ...environmentSchema("encryptedEnvironments", DEFAULT_REPLICATED_ENVIRONMENTS) } },
  check: (resources, ctx) => {
    if (!environmentIn(ctx, "encryptedEnvironments", DEFAULT_REPLICATED_ENVIRONMENTS)) {
      return notApplicable(`environment ${ctx.environment} does not require encrypted volumes`);
    }
    const statefulSets = resources.filter((r) => r.type === TYPES.statefulSet);
    if (statefulSets.length === 0) return notApplicable("the stack declares no StatefulSet");
    const classes = new Map(resources.filter((r) => r.type === TYPES.storageClass).map((r) => [metadataName(r), r]));
    const violations: Violation[] = [];
    for (const set of statefulSets) {
      asArray(dig(set.props, "spec", "volumeClaimTemplates")).forEach((t, i) => {
        const template = asRecord(t) ?? {};
        const where = `${describeObject(set)}: volumeClaimTemplate "${String(dig(template, "metadata", "name") ?? `#${i}`)}"`;
        const name = dig(template, "spec", "storageClassName");
        if (typeof name !== "string" || name === "") {
          violations.push({ urn: set.urn, message: `${where} sets no storageClassName: the cluster's default class is not known to encrypt` });
          return;
        }
        const declared = classes.get(name);
        if (!declared) {
          violations.push({ urn: set.urn, message: `${where} uses storage class "${name}", which this stack does not declare, so its encryption cannot be checked (declared: ${[...classes.keys()].join(", ") || "none"})` });
          return;
        }
        const parameters = asRecord(declared.props.parameters) ?? {};
        if (parameters[ENCRYPTED_PARAMETER.key] !== ENCRYPTED_PARAMETER.value) {
          violations.push({ urn: declared.urn, message: `${where}: StorageClass ${name} does not encrypt its volumes (parameters.${ENCRYPTED_PARAMETER.key} is ${JSON.stringify(parameters[ENCRYPTED_PARAMETER.key] ?? null)}; must be "${ENCRYPTED_PARAMETER.value}")` });
        } else if (typeof parameters.kmsKeyId !== "string" || parameters.kmsKeyId === "") {
          violations.push({ urn: declared.urn, message: `${where}: StorageClass ${name} encrypts with the account's default key, not a key of the stack's (parameters.kmsKeyId is unset)` });
        }
      });
    }
    return violations;
  },
});
