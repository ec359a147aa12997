/**
 * `knhk:aws`: the compliance archive (KMS key, ledger/data/backup/access-log buckets, IRSA roles).
 * Off in the `local` stack. Retention follows the guide: receipts and audit logs 7 years immutable,
 * observations 90 days then Glacier, snapshots 1 year, telemetry 30 days.
 */
import { z } from "zod";

const days = z.number().int().positive();

const objectLockRetention = z
  .object({
    mode: z.enum(["COMPLIANCE", "GOVERNANCE"]),
    days: days.optional(),
    years: z.number().int().positive().max(100).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.days === undefined) === (r.years === undefined)) {
      ctx.addIssue({ code: "custom", message: "set exactly one of days or years" });
    }
  });
export type ObjectLockRetention = z.infer<typeof objectLockRetention>;

export const awsSection = z
  .object({
    enabled: z.boolean().default(false),
    /** Globally unique bucket names are `<bucketPrefix>-ledger`, `-data`, `-backup`, `-access-logs`. */
    bucketPrefix: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$/, "must be 3-42 characters of a-z, 0-9 and '-'")
      .default("knhk"),
    ledgerRetention: objectLockRetention.default({ mode: "COMPLIANCE", years: 7 }),
    lifecycle: z
      .object({
        ledgerGlacierAfterDays: days.default(90),
        observationsGlacierAfterDays: days.default(90),
        snapshotsExpireAfterDays: days.default(365),
        telemetryExpireAfterDays: days.default(30),
        abortMultipartAfterDays: days.default(7),
        backupNoncurrentExpireAfterDays: days.default(35),
        accessLogsExpireAfterDays: days.default(400),
      })
      .strict()
      .prefault({}),
    kmsDeletionWindowDays: z.number().int().min(7).max(30).default(30),
    /** IRSA: the cluster's OIDC provider (ARN) and issuer host (without https://). */
    oidcProviderArn: z
      .string()
      .regex(/^arn:aws:iam::\d{12}:oidc-provider\/\S+$/, "must be an IAM OIDC provider ARN")
      .default("arn:aws:iam::000000000000:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/KNHK"),
    oidcIssuer: z
      .string()
      .regex(/^[a-z0-9.-]+(\/\S+)?$/, "must be the issuer host/path without https://")
      .default("oidc.eks.eu-central-1.amazonaws.com/id/KNHK"),
  })
  .strict();
export type AwsConfig = z.infer<typeof awsSection>;
