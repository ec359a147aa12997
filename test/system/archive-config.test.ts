/**
 * The archive's settings, keys and retention arithmetic (no servers), and that its prefixes and
 * default retention are the ones the infrastructure renders.
 */
import { createHash } from "node:crypto";
import { ArchiveConfigError, ARCHIVE_PREFIXES, buildBatch, DEFAULT_RETENTION_DAYS, loadArchiveConfig, objectKey, positionsOfKey, retainUntil } from "../../app/src/archive";
import { DATA_PREFIXES, LEDGER_PREFIXES, retentionDays } from "../../infra/render/archive";

const base = {
  KNHK_ARCHIVE_LEDGER_BUCKET: "knhk-prod-ledger",
  KNHK_ARCHIVE_DATA_BUCKET: "knhk-prod-data",
  AWS_REGION: "eu-central-1",
};

describe("loadArchiveConfig", () => {
  test("defaults: COMPLIANCE, 2562 days, observations after 90 days, the SDK's credential chain", () => {
    expect(loadArchiveConfig(base)).toEqual({
      ledgerBucket: "knhk-prod-ledger",
      dataBucket: "knhk-prod-data",
      retentionMode: "COMPLIANCE",
      retentionDays: 2562,
      observationArchiveAfterDays: 90,
      kmsKeyId: undefined,
      region: "eu-central-1",
      endpoint: undefined,
      credentials: undefined,
    });
    expect(DEFAULT_RETENTION_DAYS).toBe(retentionDays({ mode: "COMPLIANCE", years: 7 }));
  });

  test("explicit values, endpoint and static credentials", () => {
    const config = loadArchiveConfig({
      ...base,
      KNHK_ARCHIVE_RETENTION_MODE: "GOVERNANCE",
      KNHK_ARCHIVE_RETENTION_DAYS: "1",
      KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS: "30",
      KNHK_ARCHIVE_KMS_KEY_ID: "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:5000",
      AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "example-secret",
    });
    expect(config).toMatchObject({
      retentionMode: "GOVERNANCE",
      retentionDays: 1,
      observationArchiveAfterDays: 30,
      endpoint: "http://127.0.0.1:5000",
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "example-secret" },
    });
  });

  test.each([
    [{ KNHK_ARCHIVE_LEDGER_BUCKET: undefined }, "KNHK_ARCHIVE_LEDGER_BUCKET", /required/],
    [{ KNHK_ARCHIVE_DATA_BUCKET: "Not_A_Bucket" }, "KNHK_ARCHIVE_DATA_BUCKET", /S3 bucket name/],
    [{ KNHK_ARCHIVE_DATA_BUCKET: "knhk-prod-ledger" }, "KNHK_ARCHIVE_DATA_BUCKET", /must differ/],
    [{ KNHK_ARCHIVE_RETENTION_MODE: "compliance" }, "KNHK_ARCHIVE_RETENTION_MODE", /COMPLIANCE or GOVERNANCE/],
    [{ KNHK_ARCHIVE_RETENTION_DAYS: "7y" }, "KNHK_ARCHIVE_RETENTION_DAYS", /whole number of days/],
    [{ KNHK_ARCHIVE_RETENTION_DAYS: "0" }, "KNHK_ARCHIVE_RETENTION_DAYS", /at least 1/],
    [{ KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS: "-90" }, "KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS", /whole number/],
    [{ KNHK_ARCHIVE_KMS_KEY_ID: "key with spaces" }, "KNHK_ARCHIVE_KMS_KEY_ID", /KMS key/],
    [{ AWS_ENDPOINT_URL_S3: "ftp://example" }, "AWS_ENDPOINT_URL_S3", /http/],
    [{ AWS_REGION: undefined }, "AWS_REGION", /required/],
    [{ AWS_REGION: "Frankfurt" }, "AWS_REGION", /AWS region/],
    [{ AWS_ACCESS_KEY_ID: "AKIDEXAMPLE" }, "AWS_SECRET_ACCESS_KEY", /required when/],
  ])("%j is refused naming %s", (change, variable, reason) => {
    let error: unknown;
    try {
      loadArchiveConfig({ ...base, ...change });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArchiveConfigError);
    expect((error as ArchiveConfigError).variable).toBe(variable);
    expect((error as ArchiveConfigError).message).toMatch(reason);
    // A secret value never appears in the message.
    expect((error as Error).message).not.toContain("example-secret");
  });
});

describe("keys and retention", () => {
  test("the archive writes under the prefixes the infrastructure renders lifecycle rules for", () => {
    expect([ARCHIVE_PREFIXES.receipts, ARCHIVE_PREFIXES.audit]).toEqual([...LEDGER_PREFIXES]);
    expect(ARCHIVE_PREFIXES.observations).toBe(DATA_PREFIXES.observations);
    expect(ARCHIVE_PREFIXES.signingKeys.startsWith(ARCHIVE_PREFIXES.receipts)).toBe(true);
    // The logs' tiles and checkpoints live under their ledger prefix, so they get its retention and lifecycle.
    expect(ARCHIVE_PREFIXES.receiptLog.startsWith(ARCHIVE_PREFIXES.receipts)).toBe(true);
    expect(ARCHIVE_PREFIXES.auditLog.startsWith(ARCHIVE_PREFIXES.audit)).toBe(true);
  });

  test("objectKey: the UTC day of the first record and zero-padded positions; positionsOfKey reads it back", () => {
    const key = objectKey("receipts/", "2026-11-27T23:59:59.999999Z", 1001, 2000);
    expect(key).toBe("receipts/2026/11/27/000000001001-000000002000.ndjson");
    expect(positionsOfKey(key)).toEqual({ first: 1001, last: 2000 });
    expect(positionsOfKey("receipts/signing-keys/v1.json")).toBeNull();
  });

  test("buildBatch: the same records give the same key and checksum; out-of-order records are refused", () => {
    const records = [
      { position: 7, timestamp: "2026-01-02T03:04:05.000Z", line: '{"a":1}' },
      { position: 8, timestamp: "2026-01-02T03:04:06.000Z", line: '{"a":2}' },
    ];
    const a = buildBatch("audit", "audit/", records);
    expect(a).toEqual(buildBatch("audit", "audit/", records.map((r) => ({ ...r }))));
    expect(a).toMatchObject({ key: "audit/2026/01/02/000000000007-000000000008.ndjson", body: '{"a":1}\n{"a":2}\n', records: 2, first: 7, last: 8 });
    expect(a.sha256Hex).toBe(createHash("sha256").update('{"a":1}\n{"a":2}\n').digest("hex"));
    expect(Buffer.from(a.sha256Base64, "base64").toString("hex")).toBe(a.sha256Hex);
    expect(() => buildBatch("audit", "audit/", [records[1], records[0]])).toThrow(/out of order at position 7/);
    expect(() => buildBatch("audit", "audit/", [])).toThrow(/at least one record/);
  });

  test("retainUntil: last record + retention days, never less than a day from now", () => {
    const now = new Date("2026-11-28T00:00:00.000Z");
    expect(retainUntil("2026-11-27T12:00:00.123456Z", 2562, now).toISOString()).toBe("2033-12-02T12:00:00.123Z");
    expect(retainUntil("2026-01-01T00:00:00.000Z", 1, now).toISOString()).toBe("2026-11-29T00:00:00.000Z");
  });
});
