import { resourcePolicy } from "../lib/define";
import { checkContainers } from "../lib/kubernetes";
import { asArray, asRecord, dig } from "../lib/model";

/** Containers drop ALL capabilities, add none, cannot escalate privileges and are not privileged. */
export const containerDropCapabilities = resourcePolicy({
  name: "container-drop-capabilities",
  description: "Every container drops ALL capabilities, adds none, and sets allowPrivilegeEscalation: false.",
  enforcementLevel: "mandatory",
  check: (resource) =>
    checkContainers(resource, ({ container }) => {
      const sc = asRecord(container.securityContext) ?? {};
      const problems: string[] = [];
      const drop = asArray(dig(sc, "capabilities", "drop")).map(String);
      if (!drop.includes("ALL")) problems.push("does not drop ALL capabilities (securityContext.capabilities.drop)");
      const add = asArray(dig(sc, "capabilities", "add")).map(String);
      if (add.length > 0) problems.push(`adds capabilities ${add.join(", ")}`);
      if (sc.allowPrivilegeEscalation !== false) problems.push("does not set securityContext.allowPrivilegeEscalation: false");
      if (sc.privileged === true) problems.push("is privileged");
      return problems;
    }),
});
