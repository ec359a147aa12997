/**
 * Documents of the compliance archive (pure), in the S3 / IAM API's own shapes, so the very same
 * objects are sent to a real S3 API in tests and mapped 1:1 onto the Pulumi resources.
 */

export type ObjectLockMode = "COMPLIANCE" | "GOVERNANCE";

export interface RetentionPolicy {
  readonly mode: ObjectLockMode;
  readonly days?: number;
  readonly years?: number;
}

export interface LifecycleDays {
  readonly ledgerGlacierAfterDays: number;
  readonly observationsGlacierAfterDays: number;
  readonly snapshotsExpireAfterDays: number;
  readonly telemetryExpireAfterDays: number;
  readonly abortMultipartAfterDays: number;
  readonly backupNoncurrentExpireAfterDays: number;
  readonly accessLogsExpireAfterDays: number;
}

/** S3 API LifecycleRule (PutBucketLifecycleConfiguration). */
export interface LifecycleRule {
  readonly ID: string;
  readonly Status: "Enabled";
  readonly Filter: { readonly Prefix: string };
  readonly Transitions?: readonly { readonly Days: number; readonly StorageClass: "GLACIER" }[];
  readonly Expiration?: { readonly Days: number };
  readonly NoncurrentVersionTransitions?: readonly { readonly NoncurrentDays: number; readonly StorageClass: "GLACIER" }[];
  readonly NoncurrentVersionExpiration?: { readonly NoncurrentDays: number };
  readonly AbortIncompleteMultipartUpload?: { readonly DaysAfterInitiation: number };
}

/** Prefixes of the ledger bucket: the immutable records. */
export const LEDGER_PREFIXES = ["receipts/", "audit/"] as const;
/** Prefixes of the data bucket. */
export const DATA_PREFIXES = { observations: "observations/", snapshots: "snapshots/", telemetry: "telemetry/" } as const;

/** Retention length in days (a year counted as 366 days so a lock never ends early). */
export function retentionDays(r: RetentionPolicy): number {
  if ((r.days === undefined) === (r.years === undefined)) throw new Error("retention: set exactly one of days or years");
  return r.days ?? r.years! * 366;
}

/** S3 API ObjectLockConfiguration (PutObjectLockConfiguration). */
export function objectLockConfiguration(r: RetentionPolicy) {
  retentionDays(r);
  return {
    ObjectLockEnabled: "Enabled" as const,
    Rule: { DefaultRetention: { Mode: r.mode, ...(r.years !== undefined ? { Years: r.years } : { Days: r.days! }) } },
  };
}

export function ledgerLifecycleRules(d: LifecycleDays, retention: RetentionPolicy): LifecycleRule[] {
  // A noncurrent version only exists once a newer one replaced it; keep it the full retention too.
  const keep = retentionDays(retention);
  return [
    ...LEDGER_PREFIXES.map((prefix) => ({
      ID: `${prefix.slice(0, -1)}-to-glacier`,
      Status: "Enabled" as const,
      Filter: { Prefix: prefix },
      Transitions: [{ Days: d.ledgerGlacierAfterDays, StorageClass: "GLACIER" as const }],
      NoncurrentVersionTransitions: [{ NoncurrentDays: d.ledgerGlacierAfterDays, StorageClass: "GLACIER" as const }],
      NoncurrentVersionExpiration: { NoncurrentDays: keep },
    })),
    abortMultipart(d),
  ];
}

export function dataLifecycleRules(d: LifecycleDays): LifecycleRule[] {
  return [
    {
      ID: "observations-to-glacier",
      Status: "Enabled",
      Filter: { Prefix: DATA_PREFIXES.observations },
      Transitions: [{ Days: d.observationsGlacierAfterDays, StorageClass: "GLACIER" }],
    },
    { ID: "snapshots-expire", Status: "Enabled", Filter: { Prefix: DATA_PREFIXES.snapshots }, Expiration: { Days: d.snapshotsExpireAfterDays } },
    { ID: "telemetry-expire", Status: "Enabled", Filter: { Prefix: DATA_PREFIXES.telemetry }, Expiration: { Days: d.telemetryExpireAfterDays } },
    abortMultipart(d),
  ];
}

export function backupLifecycleRules(d: LifecycleDays): LifecycleRule[] {
  return [
    {
      ID: "noncurrent-expire",
      Status: "Enabled",
      Filter: { Prefix: "" },
      NoncurrentVersionExpiration: { NoncurrentDays: d.backupNoncurrentExpireAfterDays },
    },
    abortMultipart(d),
  ];
}

export function accessLogLifecycleRules(d: LifecycleDays): LifecycleRule[] {
  return [{ ID: "access-logs-expire", Status: "Enabled", Filter: { Prefix: "" }, Expiration: { Days: d.accessLogsExpireAfterDays } }, abortMultipart(d)];
}

function abortMultipart(d: LifecycleDays): LifecycleRule {
  return { ID: "abort-incomplete-multipart", Status: "Enabled", Filter: { Prefix: "" }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: d.abortMultipartAfterDays } };
}

export interface PolicyStatement {
  readonly Sid: string;
  readonly Effect: "Allow" | "Deny";
  readonly Principal?: unknown;
  readonly Action: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly Condition?: Record<string, Record<string, unknown>>;
}
export interface PolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: readonly PolicyStatement[];
}

/** Bucket policy: refuse any request that is not over TLS 1.2+. */
export function tlsOnlyBucketPolicy(bucketArn: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: [bucketArn, `${bucketArn}/*`],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
      {
        Sid: "DenyOutdatedTls",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: [bucketArn, `${bucketArn}/*`],
        Condition: { NumericLessThan: { "s3:TlsVersion": 1.2 } },
      },
    ],
  };
}

/** Bucket policy of the access-log bucket: TLS only, and S3's logging service may write logs. */
export function accessLogBucketPolicy(bucketArn: string, sourceBucketArns: readonly string[], accountId: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      ...tlsOnlyBucketPolicy(bucketArn).Statement,
      {
        Sid: "S3ServerAccessLogsPolicy",
        Effect: "Allow",
        Principal: { Service: "logging.s3.amazonaws.com" },
        Action: "s3:PutObject",
        Resource: `${bucketArn}/*`,
        Condition: { ArnLike: { "aws:SourceArn": [...sourceBucketArns] }, StringEquals: { "aws:SourceAccount": accountId } },
      },
    ],
  };
}

/** Trust policy for IAM roles for service accounts (EKS IRSA): any of `serviceAccounts` may assume it. */
export function irsaTrustPolicy(oidcProviderArn: string, oidcIssuer: string, namespace: string, serviceAccounts: readonly string[]): PolicyDocument {
  if (serviceAccounts.length === 0) throw new Error("irsaTrustPolicy: at least one service account");
  const subjects = serviceAccounts.map((sa) => `system:serviceaccount:${namespace}:${sa}`);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AssumeFromServiceAccount",
        Effect: "Allow",
        Principal: { Federated: oidcProviderArn },
        Action: "sts:AssumeRoleWithWebIdentity",
        Condition: {
          StringEquals: {
            [`${oidcIssuer}:sub`]: subjects.length === 1 ? subjects[0] : subjects,
            [`${oidcIssuer}:aud`]: "sts.amazonaws.com",
          },
        },
      },
    ],
  };
}

/**
 * The service writes new objects into the ledger prefixes and data prefixes, with retention, and may
 * read back only those prefixes; it can neither delete, change lock or lifecycle configuration nor
 * bypass governance mode. (COMPLIANCE retention cannot be shortened by anyone.)
 */
export function serviceArchivePolicy(ledgerArn: string, dataArn: string, kmsKeyArn: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "WriteLedger",
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:PutObjectRetention"],
        Resource: LEDGER_PREFIXES.map((p) => `${ledgerArn}/${p}*`),
      },
      {
        Sid: "WriteData",
        Effect: "Allow",
        Action: ["s3:PutObject"],
        Resource: Object.values(DATA_PREFIXES).map((p) => `${dataArn}/${p}*`),
      },
      // The archive run HEADs a key before uploading it (idempotent reruns); HeadObject needs
      // s3:GetObject, limited to the prefixes the service writes.
      {
        Sid: "CheckExisting",
        Effect: "Allow",
        Action: ["s3:GetObject"],
        Resource: [...LEDGER_PREFIXES.map((p) => `${ledgerArn}/${p}*`), ...Object.values(DATA_PREFIXES).map((p) => `${dataArn}/${p}*`)],
      },
      { Sid: "ListArchive", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [ledgerArn, dataArn] },
      { Sid: "EncryptWithArchiveKey", Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Encrypt"], Resource: kmsKeyArn },
      {
        Sid: "NeverDeleteOrBypass",
        Effect: "Deny",
        Action: ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration"],
        Resource: [ledgerArn, `${ledgerArn}/*`, dataArn, `${dataArn}/*`],
      },
    ],
  };
}

/** pgBackRest: full access to its own backup bucket, nothing else. */
export function pgbackrestPolicy(backupArn: string, kmsKeyArn: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "ListBackupBucket", Effect: "Allow", Action: ["s3:ListBucket", "s3:GetBucketLocation"], Resource: backupArn },
      { Sid: "ReadWriteBackups", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: `${backupArn}/*` },
      { Sid: "UseArchiveKey", Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"], Resource: kmsKeyArn },
    ],
  };
}
