import { resourcePolicy } from "../lib/define";
import { checkContainers } from "../lib/kubernetes";
import { asRecord, dig } from "../lib/model";

/** Every container (init containers too) sets CPU and memory requests and limits. */
export const containerResources = resourcePolicy({
  name: "container-resources",
  description: "Every container sets CPU and memory requests and limits.",
  enforcementLevel: "mandatory",
  check: (resource) =>
    checkContainers(resource, ({ container }) => {
      const problems: string[] = [];
      for (const kind of ["requests", "limits"] as const) {
        const values = asRecord(dig(container, "resources", kind)) ?? {};
        for (const quantity of ["cpu", "memory"]) {
          const v = values[quantity];
          if (v === undefined || v === null || v === "" || v === 0 || v === "0") {
            problems.push(`has no resources.${kind}.${quantity}`);
          }
        }
      }
      return problems;
    }),
});
