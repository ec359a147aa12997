import { stackPolicy } from "../lib/define";
import { DEFAULT_PRODUCTION_ENVIRONMENTS, environmentIn, environmentSchema } from "../lib/environments";
import { asRecord, dig, notApplicable, type Violation } from "../lib/model";
import { bucketsOf, configsFor, describeBucket, S3_TYPES } from "../lib/s3";

const DEFAULT_LEDGER_PATTERN = "ledger";
const DEFAULT_MIN_YEARS = 7;

/** Retention in days, counting a year as 365 days (S3 does the same for `years`). */
export function retentionDays(retention: Record<string, unknown>): number {
  const years = Number(retention.years ?? 0);
  const days = Number(retention.days ?? 0);
  return years * 365 + days;
}

/**
 * Stack policy (production): the ledger bucket (receipts and audit log) has Object Lock enabled
 * and a default retention in COMPLIANCE mode of at least 7 years, so nobody, root included, can
 * delete or overwrite a record before then.
 */
export const ledgerObjectLock = stackPolicy({
  name: "ledger-object-lock",
  description: "In production the ledger bucket has Object Lock COMPLIANCE with a default retention of >= 7 years.",
  enforcementLevel: "mandatory",
  configSchema: {
    properties: {
      ...environmentSchema("productionEnvironments", DEFAULT_PRODUCTION_ENVIRONMENTS),
      ledgerBucketPattern: { type: "string", default: DEFAULT_LEDGER_PATTERN },
      minYears: { type: "integer", default: DEFAULT_MIN_YEARS },
    },
  },
  check: (resources, ctx) => {
    if (!environmentIn(ctx, "productionEnvironments", DEFAULT_PRODUCTION_ENVIRONMENTS)) {
      return notApplicable(`environment ${ctx.environment} is not a production environment`);
    }
    const buckets = bucketsOf(resources);
    if (buckets.length === 0) return notApplicable("the stack declares no S3 bucket");
    const pattern = new RegExp(typeof ctx.config.ledgerBucketPattern === "string" ? ctx.config.ledgerBucketPattern : DEFAULT_LEDGER_PATTERN);
    const minYears = typeof ctx.config.minYears === "number" ? ctx.config.minYears : DEFAULT_MIN_YEARS;
    const ledgers = buckets.filter((b) => pattern.test(b.name) || pattern.test(String(b.props.bucket ?? "")));
    if (ledgers.length === 0) return [{ message: `production stack ${ctx.stack} has S3 buckets but no ledger bucket (name matching /${pattern.source}/)` }];

    const violations: Violation[] = [];
    for (const bucket of ledgers) {
      const where = describeBucket(bucket);
      if (bucket.props.objectLockEnabled !== true) {
        violations.push({ urn: bucket.urn, message: `${where} is created without Object Lock (objectLockEnabled: true)` });
      }
      const locks = configsFor(resources, bucket, S3_TYPES.objectLock);
      if (locks.length === 0) {
        violations.push({ urn: bucket.urn, message: `${where} has no BucketObjectLockConfiguration` });
        continue;
      }
      for (const lock of locks) {
        const retention = asRecord(dig(lock.props, "rule", "defaultRetention")) ?? {};
        if (retention.mode !== "COMPLIANCE") {
          violations.push({ urn: lock.urn, message: `${where}: Object Lock default retention mode is ${JSON.stringify(retention.mode ?? null)}; must be COMPLIANCE` });
        }
        const days = retentionDays(retention);
        if (days < minYears * 365) {
          violations.push({ urn: lock.urn, message: `${where}: Object Lock default retention is ${days} days; at least ${minYears} years (${minYears * 365} days) required` });
        }
        const enabled = lock.props.objectLockEnabled;
        if (enabled !== undefined && enabled !== "Enabled") {
          violations.push({ urn: lock.urn, message: `${where}: Object Lock configuration has objectLockEnabled ${JSON.stringify(enabled)}` });
        }
      }
    }
    return violations;
  },
});
