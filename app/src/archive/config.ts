/**
 * Settings of `knhk archive`, read from the environment by the variables' own names so a bad value
 * is reported as `invalid archive configuration: VARIABLE: reason`.
 */
import { z } from "zod";

export class ArchiveConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly reason: string,
  ) {
    super(`invalid archive configuration: ${variable}: ${reason}`);
    this.name = "ArchiveConfigError";
  }
}

export type RetentionMode = "COMPLIANCE" | "GOVERNANCE";

export interface ArchiveConfig {
  readonly ledgerBucket: string;
  readonly dataBucket: string;
  readonly retentionMode: RetentionMode;
  /** Object Lock retention of every ledger object, counted from its last record's timestamp. */
  readonly retentionDays: number;
  /** Observations are archived once their created_at is older than this. */
  readonly observationArchiveAfterDays: number;
  /** SSE-KMS key (id, ARN or alias); absent means the bucket's default encryption. */
  readonly kmsKeyId?: string;
  readonly region: string;
  /** Custom endpoint (an S3 emulator in tests); path-style addressing when set. */
  readonly endpoint?: string;
  /** Static credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; absent means the SDK's default chain (IRSA web identity, ...). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
}

/** 7 years of 366 days: infra/render/archive.ts retentionDays({ years: 7 }). */
export const DEFAULT_RETENTION_DAYS = 2562;
export const DEFAULT_OBSERVATION_ARCHIVE_AFTER_DAYS = 90;

const text = z
  .string()
  .trim()
  .transform((v) => (v === "" ? undefined : v))
  .optional();

const wholeDays = (fallback: number, max: number) =>
  text.pipe(
    z
      .string()
      .regex(/^\d+$/, "must be a whole number of days")
      .transform(Number)
      .pipe(z.number().int().min(1, "must be at least 1").max(max, `must be at most ${max}`))
      .optional(),
  ).transform((v) => v ?? fallback);

// S3 bucket naming rules (lower case, digits, dots, hyphens; 3-63 characters; no IP-address form).
const bucket = text.pipe(
  z
    .string({ error: "required" })
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name (3-63 characters: a-z 0-9 . -)")
    .refine((v) => !/^\d+\.\d+\.\d+\.\d+$/.test(v) && !v.includes(".."), "must be an S3 bucket name, not an IP address or with '..'"),
);

const schema = z.object({
  KNHK_ARCHIVE_LEDGER_BUCKET: bucket,
  KNHK_ARCHIVE_DATA_BUCKET: bucket,
  KNHK_ARCHIVE_RETENTION_MODE: text.pipe(z.enum(["COMPLIANCE", "GOVERNANCE"], { error: "must be COMPLIANCE or GOVERNANCE" }).optional()),
  KNHK_ARCHIVE_RETENTION_DAYS: wholeDays(DEFAULT_RETENTION_DAYS, 36_500),
  KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS: wholeDays(DEFAULT_OBSERVATION_ARCHIVE_AFTER_DAYS, 36_500),
  KNHK_ARCHIVE_KMS_KEY_ID: text.pipe(
    z.string().regex(/^[A-Za-z0-9:/_.-]{1,2048}$/, "must be a KMS key id, key ARN or alias/NAME").optional(),
  ),
  AWS_REGION: text.pipe(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as eu-central-1").optional()),
  AWS_DEFAULT_REGION: text.pipe(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as eu-central-1").optional()),
  AWS_ENDPOINT_URL_S3: text.pipe(z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional()),
  AWS_ACCESS_KEY_ID: text,
  AWS_SECRET_ACCESS_KEY: text,
  AWS_SESSION_TOKEN: text,
});

/** The variables a deployment sets (infra/render/ledger-jobs.ts renders the archive CronJob's env from these names). */
export const ARCHIVE_ENV = {
  ledgerBucket: "KNHK_ARCHIVE_LEDGER_BUCKET",
  dataBucket: "KNHK_ARCHIVE_DATA_BUCKET",
  retentionMode: "KNHK_ARCHIVE_RETENTION_MODE",
  retentionDays: "KNHK_ARCHIVE_RETENTION_DAYS",
  observationArchiveAfterDays: "KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS",
  kmsKeyId: "KNHK_ARCHIVE_KMS_KEY_ID",
  region: "AWS_REGION",
} as const satisfies Record<string, keyof z.input<typeof schema>>;

export function loadArchiveConfig(env: NodeJS.ProcessEnv): ArchiveConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArchiveConfigError(String(issue.path[0] ?? "environment"), issue.message);
  }
  const v = parsed.data;
  const region = v.AWS_REGION ?? v.AWS_DEFAULT_REGION;
  if (!region) throw new ArchiveConfigError("AWS_REGION", "required (or AWS_DEFAULT_REGION)");
  if ((v.AWS_ACCESS_KEY_ID === undefined) !== (v.AWS_SECRET_ACCESS_KEY === undefined)) {
    const missing = v.AWS_ACCESS_KEY_ID === undefined ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY";
    throw new ArchiveConfigError(missing, "required when the other half of the static credentials is set");
  }
  if (v.KNHK_ARCHIVE_LEDGER_BUCKET === v.KNHK_ARCHIVE_DATA_BUCKET) {
    throw new ArchiveConfigError("KNHK_ARCHIVE_DATA_BUCKET", "must differ from KNHK_ARCHIVE_LEDGER_BUCKET (the ledger bucket is Object Locked)");
  }
  return {
    ledgerBucket: v.KNHK_ARCHIVE_LEDGER_BUCKET,
    dataBucket: v.KNHK_ARCHIVE_DATA_BUCKET,
    retentionMode: v.KNHK_ARCHIVE_RETENTION_MODE ?? "COMPLIANCE",
    retentionDays: v.KNHK_ARCHIVE_RETENTION_DAYS,
    observationArchiveAfterDays: v.KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS,
    kmsKeyId: v.KNHK_ARCHIVE_KMS_KEY_ID,
    region,
    endpoint: v.AWS_ENDPOINT_URL_S3,
    credentials:
      v.AWS_ACCESS_KEY_ID && v.AWS_SECRET_ACCESS_KEY
        ? { accessKeyId: v.AWS_ACCESS_KEY_ID, secretAccessKey: v.AWS_SECRET_ACCESS_KEY, ...(v.AWS_SESSION_TOKEN ? { sessionToken: v.AWS_SESSION_TOKEN } : {}) }
        : undefined,
  };
}
