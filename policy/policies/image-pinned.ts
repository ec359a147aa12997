import { imageProblem } from "../../infra/config/common";
import { resourcePolicy } from "../lib/define";
import { checkContainers } from "../lib/kubernetes";

/**
 * Every image is pinned by tag or digest, never `latest` or untagged. Uses the program's own
 * definition of a pin, so config validation and the policy cannot drift apart.
 */
export const imagePinned = resourcePolicy({
  name: "image-pinned",
  description: "Container images are pinned by tag or digest; no `latest`, no untagged image.",
  enforcementLevel: "mandatory",
  check: (resource) =>
    checkContainers(resource, ({ container }) => {
      const image = container.image;
      if (typeof image !== "string" || image === "") return ["has no image"];
      const problem = imageProblem(image);
      return problem ? [`image "${image}" ${problem}`] : [];
    }),
});
