import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig } from "../config";
import {
  accessLogBucketPolicy,
  accessLogLifecycleRules,
  backupLifecycleRules,
  dataLifecycleRules,
  irsaTrustPolicy,
  ledgerLifecycleRules,
  objectLockConfiguration,
  pgbackrestPolicy,
  serviceArchivePolicy,
  tlsOnlyBucketPolicy,
  type LifecycleRule,
} from "../render/archive";

export interface ComplianceArchiveArgs {
  readonly config: AwsConfig;
  /** Kubernetes namespace and service accounts that assume the IRSA roles. */
  readonly namespace: string;
  readonly serviceServiceAccount: string;
  /** Service accounts of the scheduled archive run (`knhk archive run`), which writes with the service's archive role. Default: none. */
  readonly archiveServiceAccounts?: readonly string[];
  /** Service accounts running pgBackRest (the Patroni pods' archive-push and the backup Jobs). */
  readonly backupServiceAccounts: readonly string[];
  readonly tags?: Readonly<Record<string, string>>;
}

type BucketRole = "ledger" | "data" | "backup" | "access-logs";

interface SecureBucketArgs {
  readonly role: BucketRole;
  readonly objectLock: boolean;
  readonly versioned: boolean;
  /** SSE-KMS with this key; absent means SSE-S3 (only for the access-log bucket, see below). */
  readonly kmsKeyArn?: pulumi.Input<string>;
  readonly lifecycle: LifecycleRule[];
  readonly logTo?: aws.s3.Bucket;
}

/** Maps an S3 API lifecycle rule (infra/render/archive.ts) onto the provider's input shape. */
export function toProviderLifecycleRule(rule: LifecycleRule): aws.types.input.s3.BucketLifecycleConfigurationRule {
  return {
    id: rule.ID,
    status: rule.Status,
    filter: { prefix: rule.Filter.Prefix },
    transitions: rule.Transitions?.map((t) => ({ days: t.Days, storageClass: t.StorageClass })),
    expiration: rule.Expiration ? { days: rule.Expiration.Days } : undefined,
    noncurrentVersionTransitions: rule.NoncurrentVersionTransitions?.map((t) => ({ noncurrentDays: t.NoncurrentDays, storageClass: t.StorageClass })),
    noncurrentVersionExpiration: rule.NoncurrentVersionExpiration ? { noncurrentDays: rule.NoncurrentVersionExpiration.NoncurrentDays } : undefined,
    abortIncompleteMultipartUpload: rule.AbortIncompleteMultipartUpload
      ? { daysAfterInitiation: rule.AbortIncompleteMultipartUpload.DaysAfterInitiation }
      : undefined,
  };
}

/**
 * The compliance archive: a KMS key with rotation; a ledger bucket (Object Lock, receipts/ and
 * audit/, 7 years COMPLIANCE in prod); a data bucket (observations to Glacier at 90 days, snapshots
 * 1 year, telemetry 30 days); a versioned pgBackRest bucket without Object Lock (pgBackRest rewrites
 * its info files); an access-log bucket. Every bucket: public access block, bucket-owner-enforced
 * ownership, TLS-only policy, encryption. IRSA roles: the service writes to the ledger and data
 * prefixes only; pgBackRest reaches the backup bucket only.
 *
 * S3 server access logs can only be delivered to a bucket with SSE-S3 default encryption, so the
 * access-log bucket is the one bucket encrypted with SSE-S3 instead of the KMS key; it does not log
 * to itself.
 */
export class ComplianceArchive extends pulumi.ComponentResource {
  public readonly kmsKeyArn: pulumi.Output<string>;
  public readonly ledgerBucket: pulumi.Output<string>;
  public readonly dataBucket: pulumi.Output<string>;
  public readonly backupBucket: pulumi.Output<string>;
  public readonly accessLogBucket: pulumi.Output<string>;
  public readonly serviceRoleArn: pulumi.Output<string>;
  public readonly backupRoleArn: pulumi.Output<string>;

  constructor(name: string, args: ComplianceArchiveArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:archive:ComplianceArchive", name, args, opts);
    const cfg = args.config;
    const tags = { "app.kubernetes.io/part-of": "knhk", ...args.tags };
    const child = { parent: this };
    const account = aws.getCallerIdentityOutput({}, child);

    const key = new aws.kms.Key(
      `${name}-key`,
      {
        description: "KNHK compliance archive (S3 SSE-KMS)",
        enableKeyRotation: true,
        deletionWindowInDays: cfg.kmsDeletionWindowDays,
        tags,
      },
      child,
    );
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/${cfg.bucketPrefix}-archive`, targetKeyId: key.keyId }, child);

    const accessLogs = this.secureBucket(name, cfg, tags, account, {
      role: "access-logs",
      objectLock: false,
      versioned: false,
      lifecycle: accessLogLifecycleRules(cfg.lifecycle),
    });
    const ledger = this.secureBucket(name, cfg, tags, account, {
      role: "ledger",
      objectLock: true,
      versioned: true,
      kmsKeyArn: key.arn,
      lifecycle: ledgerLifecycleRules(cfg.lifecycle, cfg.ledgerRetention),
      logTo: accessLogs,
    });
    const lock = objectLockConfiguration(cfg.ledgerRetention);
    new aws.s3.BucketObjectLockConfiguration(
      `${name}-ledger-object-lock`,
      {
        bucket: ledger.id,
        objectLockEnabled: lock.ObjectLockEnabled,
        rule: {
          defaultRetention: {
            mode: lock.Rule.DefaultRetention.Mode,
            days: "Days" in lock.Rule.DefaultRetention ? lock.Rule.DefaultRetention.Days : undefined,
            years: "Years" in lock.Rule.DefaultRetention ? lock.Rule.DefaultRetention.Years : undefined,
          },
        },
      },
      { parent: this, protect: lock.Rule.DefaultRetention.Mode === "COMPLIANCE" },
    );
    const data = this.secureBucket(name, cfg, tags, account, {
      role: "data",
      objectLock: false,
      versioned: true,
      kmsKeyArn: key.arn,
      lifecycle: dataLifecycleRules(cfg.lifecycle),
      logTo: accessLogs,
    });
    const backup = this.secureBucket(name, cfg, tags, account, {
      role: "backup",
      objectLock: false,
      versioned: true,
      kmsKeyArn: key.arn,
      lifecycle: backupLifecycleRules(cfg.lifecycle),
      logTo: accessLogs,
    });
    new aws.s3.BucketPolicy(
      `${name}-access-logs-policy`,
      {
        bucket: accessLogs.id,
        policy: pulumi
          .all([accessLogs.arn, ledger.arn, data.arn, backup.arn, account.accountId])
          .apply(([logs, l, d, b, acct]) => JSON.stringify(accessLogBucketPolicy(logs, [l, d, b], acct))),
      },
      child,
    );

    const serviceRole = new aws.iam.Role(
      `${name}-service-role`,
      {
        description: "KNHK service: writes receipts, audit entries and data exports (IRSA)",
        assumeRolePolicy: JSON.stringify(irsaTrustPolicy(cfg.oidcProviderArn, cfg.oidcIssuer, args.namespace, [args.serviceServiceAccount, ...(args.archiveServiceAccounts ?? [])])),
        tags,
      },
      child,
    );
    new aws.iam.RolePolicy(
      `${name}-service-policy`,
      {
        role: serviceRole.id,
        policy: pulumi.all([ledger.arn, data.arn, key.arn]).apply(([l, d, k]) => JSON.stringify(serviceArchivePolicy(l, d, k))),
      },
      child,
    );
    const backupRole = new aws.iam.Role(
      `${name}-backup-role`,
      {
        description: "pgBackRest: the backup bucket only (IRSA)",
        assumeRolePolicy: JSON.stringify(irsaTrustPolicy(cfg.oidcProviderArn, cfg.oidcIssuer, args.namespace, args.backupServiceAccounts)),
        tags,
      },
      child,
    );
    new aws.iam.RolePolicy(
      `${name}-backup-policy`,
      { role: backupRole.id, policy: pulumi.all([backup.arn, key.arn]).apply(([b, k]) => JSON.stringify(pgbackrestPolicy(b, k))) },
      child,
    );

    this.kmsKeyArn = key.arn;
    this.ledgerBucket = ledger.bucket;
    this.dataBucket = data.bucket;
    this.backupBucket = backup.bucket;
    this.accessLogBucket = accessLogs.bucket;
    this.serviceRoleArn = serviceRole.arn;
    this.backupRoleArn = backupRole.arn;
    this.registerOutputs({
      kmsKeyArn: this.kmsKeyArn,
      ledgerBucket: this.ledgerBucket,
      dataBucket: this.dataBucket,
      backupBucket: this.backupBucket,
      accessLogBucket: this.accessLogBucket,
      serviceRoleArn: this.serviceRoleArn,
      backupRoleArn: this.backupRoleArn,
    });
  }

  private secureBucket(
    name: string,
    cfg: AwsConfig,
    tags: Record<string, string>,
    account: pulumi.Output<aws.GetCallerIdentityResult>,
    b: SecureBucketArgs,
  ): aws.s3.Bucket {
    const part = `${name}-${b.role}`;
    const child = { parent: this };
    const bucket = new aws.s3.Bucket(
      part,
      {
        bucket: `${cfg.bucketPrefix}-${b.role}`,
        objectLockEnabled: b.objectLock,
        forceDestroy: false,
        tags: { ...tags, "knhk/bucket-role": b.role },
      },
      { parent: this, protect: b.objectLock },
    );
    new aws.s3.BucketPublicAccessBlock(
      `${part}-public-access-block`,
      { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      child,
    );
    new aws.s3.BucketOwnershipControls(`${part}-ownership`, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, child);
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${part}-encryption`,
      {
        bucket: bucket.id,
        rules: [
          b.kmsKeyArn
            ? { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: b.kmsKeyArn }, bucketKeyEnabled: true }
            : { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } },
        ],
      },
      child,
    );
    const versioning = b.versioned
      ? new aws.s3.BucketVersioning(`${part}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, child)
      : undefined;
    new aws.s3.BucketLifecycleConfiguration(
      `${part}-lifecycle`,
      { bucket: bucket.id, rules: b.lifecycle.map(toProviderLifecycleRule) },
      { parent: this, dependsOn: versioning ? [versioning] : [] },
    );
    if (b.role !== "access-logs") {
      new aws.s3.BucketPolicy(
        `${part}-policy`,
        { bucket: bucket.id, policy: bucket.arn.apply((arn) => JSON.stringify(tlsOnlyBucketPolicy(arn))) },
        child,
      );
    }
    if (b.logTo) {
      new aws.s3.BucketLogging(
        `${part}-logging`,
        { bucket: bucket.id, targetBucket: b.logTo.id, targetPrefix: `${b.role}/`, expectedBucketOwner: account.accountId },
        child,
      );
    }
    return bucket;
  }
}
