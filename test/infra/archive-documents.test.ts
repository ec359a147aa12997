import {
  dataLifecycleRules,
  ledgerLifecycleRules,
  objectLockConfiguration,
  retentionDays,
  serviceArchivePolicy,
  tlsOnlyBucketPolicy,
  type LifecycleDays,
} from "../../infra/render/archive";

const days: LifecycleDays = {
  ledgerGlacierAfterDays: 90,
  observationsGlacierAfterDays: 90,
  snapshotsExpireAfterDays: 365,
  telemetryExpireAfterDays: 30,
  abortMultipartAfterDays: 7,
  backupNoncurrentExpireAfterDays: 35,
  accessLogsExpireAfterDays: 400,
};

describe("compliance archive documents", () => {
  it("object lock: COMPLIANCE 7 years in years, GOVERNANCE 1 day in days", () => {
    expect(objectLockConfiguration({ mode: "COMPLIANCE", years: 7 })).toEqual({
      ObjectLockEnabled: "Enabled",
      Rule: { DefaultRetention: { Mode: "COMPLIANCE", Years: 7 } },
    });
    expect(objectLockConfiguration({ mode: "GOVERNANCE", days: 1 }).Rule.DefaultRetention).toEqual({ Mode: "GOVERNANCE", Days: 1 });
    expect(() => objectLockConfiguration({ mode: "COMPLIANCE" })).toThrow(/exactly one of days or years/);
    expect(() => retentionDays({ mode: "COMPLIANCE", days: 1, years: 1 })).toThrow(/exactly one/);
    expect(retentionDays({ mode: "COMPLIANCE", years: 7 })).toBe(7 * 366);
  });

  it("ledger: receipts/ and audit/ go to Glacier at 90 days, noncurrent versions kept the full retention", () => {
    const rules = ledgerLifecycleRules(days, { mode: "COMPLIANCE", years: 7 });
    for (const prefix of ["receipts/", "audit/"]) {
      const rule = rules.find((r) => r.Filter.Prefix === prefix)!;
      expect(rule.Transitions).toEqual([{ Days: 90, StorageClass: "GLACIER" }]);
      expect(rule.NoncurrentVersionExpiration).toEqual({ NoncurrentDays: 2562 });
      expect(rule.Expiration).toBeUndefined();
    }
    expect(rules.find((r) => r.AbortIncompleteMultipartUpload)?.AbortIncompleteMultipartUpload).toEqual({ DaysAfterInitiation: 7 });
  });

  it("data: observations to Glacier at 90, snapshots expire at 365, telemetry at 30, multipart aborted at 7", () => {
    const byPrefix = Object.fromEntries(dataLifecycleRules(days).map((r) => [r.Filter.Prefix || r.ID, r]));
    expect(byPrefix["observations/"].Transitions).toEqual([{ Days: 90, StorageClass: "GLACIER" }]);
    expect(byPrefix["snapshots/"].Expiration).toEqual({ Days: 365 });
    expect(byPrefix["telemetry/"].Expiration).toEqual({ Days: 30 });
    expect(byPrefix["abort-incomplete-multipart"].AbortIncompleteMultipartUpload).toEqual({ DaysAfterInitiation: 7 });
  });

  it("TLS-only policy denies insecure transport on the bucket and its objects", () => {
    const doc = tlsOnlyBucketPolicy("arn:aws:s3:::b");
    const deny = doc.Statement.find((s) => s.Sid === "DenyInsecureTransport")!;
    expect(deny.Effect).toBe("Deny");
    expect(deny.Resource).toEqual(["arn:aws:s3:::b", "arn:aws:s3:::b/*"]);
    expect(deny.Condition).toEqual({ Bool: { "aws:SecureTransport": "false" } });
  });

  it("the service may only put into the ledger and data prefixes and is denied deletes and bypass", () => {
    const doc = serviceArchivePolicy("arn:aws:s3:::l", "arn:aws:s3:::d", "arn:aws:kms:k");
    const allows = doc.Statement.filter((s) => s.Effect === "Allow");
    const actions = allows.flatMap((s) => [s.Action].flat());
    expect(actions).not.toContain("s3:DeleteObject");
    expect(actions).not.toContain("s3:DeleteObjectVersion");
    const reads = allows.filter((s) => [s.Action].flat().includes("s3:GetObject")).flatMap((s) => [s.Resource].flat());
    expect(reads).toEqual([
      "arn:aws:s3:::l/receipts/*",
      "arn:aws:s3:::l/audit/*",
      "arn:aws:s3:::d/observations/*",
      "arn:aws:s3:::d/snapshots/*",
      "arn:aws:s3:::d/telemetry/*",
    ]);
    expect(allows.find((s) => s.Sid === "WriteLedger")!.Resource).toEqual(["arn:aws:s3:::l/receipts/*", "arn:aws:s3:::l/audit/*"]);
    const deny = doc.Statement.find((s) => s.Effect === "Deny")!;
    expect(deny.Action).toEqual(expect.arrayContaining(["s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"]));
  });
});
