import { stackPolicy } from "../lib/define";
import { checkBuckets, configsFor, S3_TYPES } from "../lib/s3";

const SETTINGS = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"] as const;

/** Stack policy: every bucket has a public access block with all four settings on. */
export const s3BucketPublicAccessBlock = stackPolicy({
  name: "s3-bucket-public-access-block",
  description: "Every S3 bucket has a public access block with all four settings true.",
  enforcementLevel: "mandatory",
  check: (resources) =>
    checkBuckets(resources, (bucket) => {
      const blocks = configsFor(resources, bucket, S3_TYPES.publicAccessBlock);
      if (blocks.length === 0) return [" has no public access block"];
      const off = SETTINGS.filter((s) => !blocks.some((b) => b.props[s] === true));
      return off.length > 0 ? [`: public access block does not set ${off.join(", ")} to true`] : [];
    }),
});
