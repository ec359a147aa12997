/** S3 buckets and the per-bucket configuration resources that refer to them (aws v7 and V2 aliases). */
import { notApplicable, type PolicyInputResource, type Verdict } from "./model";

export const BUCKET_TYPES = new Set(["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"]);

export const S3_TYPES = {
  encryption: ["aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"],
  publicAccessBlock: ["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"],
  policy: ["aws:s3/bucketPolicy:BucketPolicy"],
  objectLock: ["aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2"],
  logging: ["aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2"],
} as const;

export function bucketsOf(resources: readonly PolicyInputResource[]): PolicyInputResource[] {
  return resources.filter((r) => BUCKET_TYPES.has(r.type));
}

/** `bucket "knhk-prod-ledger" (ledger)`: how messages name a bucket. */
export function describeBucket(bucket: PolicyInputResource): string {
  const physical = bucket.props.bucket;
  return typeof physical === "string" ? `bucket ${physical} (${bucket.name})` : `bucket ${bucket.name}`;
}

/**
 * Whether `config` (a resource with a `bucket` input) configures `bucket`. Inside the engine the
 * property dependency says so even when the id is still unknown; in the offline render the
 * input holds the bucket's name or its mocked id (the logical name).
 */
export function configures(config: PolicyInputResource, bucket: PolicyInputResource, property = "bucket"): boolean {
  if (config.propertyDependencies?.[property]?.includes(bucket.urn)) return true;
  const ref = config.props[property];
  if (typeof ref !== "string" || ref === "") return false;
  return ref === bucket.props.bucket || ref === bucket.name || ref === `${bucket.name}_id` || ref === `${bucket.name}-id`;
}

/** Buckets that receive S3 server access logs (some BucketLogging names them as targetBucket). */
export function isAccessLogTarget(resources: readonly PolicyInputResource[], bucket: PolicyInputResource): boolean {
  return resources.some((r) => (S3_TYPES.logging as readonly string[]).includes(r.type) && configures(r, bucket, "targetBucket"));
}

/** The configuration resources of the given kinds that belong to `bucket`. */
export function configsFor(resources: readonly PolicyInputResource[], bucket: PolicyInputResource, types: readonly string[]): PolicyInputResource[] {
  return resources.filter((r) => types.includes(r.type) && configures(r, bucket));
}

/**
 * Runs a per-bucket check over every bucket of the stack; each problem becomes a violation on
 * that bucket, prefixed with its description. No bucket at all: not applicable.
 */
export function checkBuckets(resources: readonly PolicyInputResource[], check: (bucket: PolicyInputResource) => string[]): Verdict {
  const buckets = bucketsOf(resources);
  if (buckets.length === 0) return notApplicable("the stack declares no S3 bucket");
  return buckets.flatMap((bucket) => check(bucket).map((problem) => ({ urn: bucket.urn, message: `${describeBucket(bucket)}${problem}` })));
}
