import { resourcePolicy } from "../lib/define";
import { checkContainers } from "../lib/kubernetes";
import { dig } from "../lib/model";

/** Every container mounts its root filesystem read-only (writable paths come from volumes). */
export const containerReadOnlyRootFilesystem = resourcePolicy({
  name: "container-read-only-root-filesystem",
  description: "Every container sets securityContext.readOnlyRootFilesystem: true.",
  enforcementLevel: "mandatory",
  check: (resource) =>
    checkContainers(resource, ({ container }) =>
      dig(container, "securityContext", "readOnlyRootFilesystem") === true
        ? []
        : ["does not set securityContext.readOnlyRootFilesystem: true"],
    ),
});
