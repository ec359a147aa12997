import { stackPolicy } from "../lib/define";
import { asArray, asRecord, dig } from "../lib/model";
import { checkBuckets, configsFor, isAccessLogTarget, S3_TYPES } from "../lib/s3";

const KMS_ALGORITHMS = new Set(["aws:kms", "aws:kms:dsse"]);

/**
 * Problems of one encryption configuration's rules (SSE-KMS with a key and bucket keys). A bucket
 * that receives S3 server access logs may use SSE-S3 (AES256) instead: S3 cannot deliver access
 * logs into a bucket whose default encryption is SSE-KMS.
 */
function encryptionProblems(rules: unknown, logTarget: boolean): string[] {
  const list = asArray(rules);
  if (list.length === 0) return ["has no encryption rule"];
  const problems: string[] = [];
  for (const rule of list) {
    const byDefault = asRecord(dig(rule, "applyServerSideEncryptionByDefault")) ?? {};
    const algorithm = byDefault.sseAlgorithm;
    if (logTarget && algorithm === "AES256") continue;
    if (typeof algorithm !== "string" || !KMS_ALGORITHMS.has(algorithm)) {
      problems.push(`encrypts with ${JSON.stringify(algorithm ?? null)}, not SSE-KMS (aws:kms)`);
    } else if (!byDefault.kmsMasterKeyId) {
      problems.push("uses aws:kms without a customer managed key (kmsMasterKeyId)");
    }
    if (asRecord(rule)?.bucketKeyEnabled !== true) problems.push("does not enable S3 bucket keys (bucketKeyEnabled)");
  }
  return problems;
}

/** Stack policy: every bucket has default encryption SSE-KMS with a customer managed key and bucket keys. */
export const s3BucketKmsEncryption = stackPolicy({
  name: "s3-bucket-kms-encryption",
  description: "Every S3 bucket is encrypted by default with SSE-KMS (customer managed key, bucket keys); access-log target buckets may use SSE-S3.",
  enforcementLevel: "mandatory",
  check: (resources) =>
    checkBuckets(resources, (bucket) => {
      const configs = configsFor(resources, bucket, S3_TYPES.encryption);
      const inline = bucket.props.serverSideEncryptionConfiguration;
      if (configs.length === 0 && !inline) return [" has no server-side encryption configuration"];
      const logTarget = isAccessLogTarget(resources, bucket);
      return [
        ...configs.flatMap((c) => encryptionProblems(c.props.rules, logTarget)),
        ...(inline ? encryptionProblems(dig(inline, "rule") ? [dig(inline, "rule")] : dig(inline, "rules"), logTarget) : []),
      ].map((problem) => ` ${problem}`);
    }),
});
