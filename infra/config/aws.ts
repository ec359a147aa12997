/**
 * `knhk:aws`: the compliance archive (KMS key, ledger/data/backup/access-log buckets, IRSA roles).
 * Off in the `local` stack. Retention follows the guide: receipts and audit logs 7 years immutable,
 * observations 90 days then Glacier, snapshots 1 year, telemetry 30 days.
 */
import { z } from "zod";
import { ENCRYPTED_STORAGE_CLASS } from "../render/volume-encryption";
import { dnsLabel } from "./common";
import { arnAccount, placeholderAccountProblem, placeholderIssuerProblem } from "./identifiers";

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

const lifecycle = z
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
  .prefault({});

/** A string the deploying team must supply: no default, a clear message when it is missing. */
const required = (what: string) =>
  z.string({ error: (issue) => (issue.input === undefined ? `required when knhk:aws.enabled is true: ${what} (no default: it is account-specific)` : "must be a string") });

const OIDC_PROVIDER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/\S+$/;

/** The issuer host/path an OIDC provider ARN names. */
function providerOf(arn: string): string {
  return arn.slice(arn.indexOf("oidc-provider/") + "oidc-provider/".length);
}

/** IRSA: the cluster's IAM OIDC provider (ARN), e.g. arn:aws:iam::<account>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>. */
const oidcProviderArn = (base: z.ZodString) =>
  base.regex(OIDC_PROVIDER_ARN, { message: "must be an IAM OIDC provider ARN (arn:aws:iam::<account>:oidc-provider/<issuer>)", abort: true }).superRefine((arn, ctx) => {
    const account = arnAccount(arn);
    const problems = [account && placeholderAccountProblem(account), placeholderIssuerProblem(providerOf(arn))].filter((p): p is string => !!p);
    if (problems.length > 0) ctx.addIssue({ code: "custom", input: arn, message: problems.join("; ") });
  });

/** The same provider's issuer host/path without https:// (the prefix of the trust policy's condition keys). */
const oidcIssuer = (base: z.ZodString) =>
  base.regex(/^[a-z0-9.-]+(\/\S+)?$/, { message: "must be the issuer host/path without https://", abort: true }).superRefine((issuer, ctx) => {
    const problem = placeholderIssuerProblem(issuer);
    if (problem) ctx.addIssue({ code: "custom", input: issuer, message: problem });
  });

const common = {
  /** Globally unique bucket names are `<bucketPrefix>-ledger`, `-data`, `-backup`, `-access-logs`. */
  bucketPrefix: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$/, "must be 3-42 characters of a-z, 0-9 and '-'")
    .default("knhk"),
  ledgerRetention: objectLockRetention.default({ mode: "COMPLIANCE", years: 7 }),
  lifecycle,
  kmsDeletionWindowDays: z.number().int().min(7).max(30).default(30),
  /**
   * The StorageClass the stack declares for its volumes (PostgreSQL, Redis): EBS through the CSI
   * driver, encrypted with the stack's own volume key. knhk:patroni and knhk:redis must use it.
   */
  volumes: z
    .object({
      /** Cluster-wide name of the class. Default `knhk-encrypted`. */
      storageClassName: dnsLabel.default(ENCRYPTED_STORAGE_CLASS),
      /** EBS volume type. Default gp3. */
      volumeType: z.enum(["gp3", "io2", "io1", "gp2"]).default("gp3"),
    })
    .strict()
    .prefault({}),
};

/** The issuer must be the provider the ARN names, else the trust policy's conditions never match a token. */
function sameProvider(a: { oidcProviderArn?: string; oidcIssuer?: string }, ctx: z.RefinementCtx): void {
  if (a.oidcProviderArn === undefined || a.oidcIssuer === undefined) return;
  const provider = providerOf(a.oidcProviderArn);
  if (provider !== a.oidcIssuer) {
    ctx.addIssue({ code: "custom", path: ["oidcIssuer"], input: a.oidcIssuer, message: `must be the issuer oidcProviderArn names (${provider})` });
  }
}

/**
 * Off: nothing is created and the identifiers may be absent. On: the account-specific identifiers
 * are required and refused when they are known placeholders (account 000000000000, `/id/KNHK`, ...).
 */
export const awsSection = z.discriminatedUnion("enabled", [
  z
    .object({
      enabled: z.literal(false).default(false),
      ...common,
      oidcProviderArn: oidcProviderArn(z.string()).optional(),
      oidcIssuer: oidcIssuer(z.string()).optional(),
    })
    .strict()
    .superRefine(sameProvider),
  z
    .object({
      enabled: z.literal(true),
      ...common,
      oidcProviderArn: oidcProviderArn(required("the IAM OIDC provider ARN of the cluster (IRSA)")),
      oidcIssuer: oidcIssuer(required("the cluster's OIDC issuer host/path, without https://")),
    })
    .strict()
    .superRefine(sameProvider),
]);
export type AwsSectionConfig = z.infer<typeof awsSection>;
/** The section of a stack that has the archive (what ComplianceArchive receives). */
export type AwsConfig = Extract<AwsSectionConfig, { enabled: true }>;
