/**
 * Encryption at rest of the volumes: the StorageClass and key policy builders, the stack rule
 * that every volume uses the declared class, and the rendered stacks.
 */
import { parseStackConfig } from "../../infra/config";
import { encryptedStorageClass, ENCRYPTED_STORAGE_CLASS, volumeKeyPolicy } from "../../infra/render/volume-encryption";
import { validateK8sObject } from "../../infra/testing/k8s-schema";
import { mergeConfig, type RenderResult } from "../../infra/testing/render";

import { renderTestStack, testStackConfigFile } from "../support/stack-identifiers";
import { all, find } from "./helpers";

describe("the builders", () => {
  test("the StorageClass encrypts with the given key, keeps volumes, binds where the pod runs", () => {
    const spec = encryptedStorageClass({ name: "knhk-encrypted", volumeType: "gp3", kmsKeyArn: "arn:aws:kms:eu-central-1:314159265358:key/k" });
    expect(spec).toEqual({
      provisioner: "ebs.csi.aws.com",
      parameters: { type: "gp3", encrypted: "true", kmsKeyId: "arn:aws:kms:eu-central-1:314159265358:key/k", "csi.storage.k8s.io/fstype": "ext4" },
      reclaimPolicy: "Retain",
      volumeBindingMode: "WaitForFirstConsumer",
      allowVolumeExpansion: true,
    });
    expect(validateK8sObject({ apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "knhk-encrypted" }, ...spec })).toEqual([]);
  });

  test("the key may be used by principals of the account only through EC2 in the region; grants only for AWS resources", () => {
    const policy = volumeKeyPolicy("314159265358", "eu-central-1");
    const [admin, use, grant] = policy.Statement;
    expect(admin).toMatchObject({ Principal: { AWS: "arn:aws:iam::314159265358:root" }, Action: "kms:*" });
    for (const statement of [use, grant]) {
      expect(statement.Condition).toMatchObject({ StringEquals: { "kms:CallerAccount": "314159265358", "kms:ViaService": "ec2.eu-central-1.amazonaws.com" } });
    }
    expect(use.Action).not.toContain("kms:CreateGrant");
    expect(grant).toMatchObject({ Action: "kms:CreateGrant", Condition: { Bool: { "kms:GrantIsForAWSResource": "true" } } });
  });
});

describe("the stack rule", () => {
  const problems = (stack: string, overlay: Record<string, unknown>) => {
    try {
      parseStackConfig(stack, mergeConfig(testStackConfigFile(stack), overlay));
      return [];
    } catch (error) {
      return [...(error as { problems: string[] }).problems];
    }
  };

  test.each(["dev", "staging", "prod"])("%s: a volume on another class is refused, naming the key and the class to use", (stack) => {
    expect(problems(stack, { "knhk:redis": { storage: { className: "gp2", size: "5Gi" } } })).toEqual([
      `knhk:redis.storage.className = "gp2": must be "${ENCRYPTED_STORAGE_CLASS}", the encrypted StorageClass this stack declares (knhk:aws.volumes.storageClassName): volumes are encrypted at rest with the stack's KMS key`,
    ]);
  });

  test("a renamed class must be used by both sections", () => {
    const renamed = { "knhk:aws": { volumes: { storageClassName: "knhk-prod-volumes" } } };
    expect(problems("prod", renamed).map((p) => p.split(" = ")[0])).toEqual(["knhk:patroni.storage.className", "knhk:redis.storage.className"]);
    const both = { ...renamed, "knhk:patroni": { storage: { className: "knhk-prod-volumes", size: "100Gi" } }, "knhk:redis": { storage: { className: "knhk-prod-volumes", size: "10Gi" } } };
    expect(problems("prod", both)).toEqual([]);
  });

  test("without an AWS account (local) the cluster's own class is used", () => {
    expect(parseStackConfig("local", {}).patroni.storage.className).toBe(ENCRYPTED_STORAGE_CLASS);
    expect(problems("local", { "knhk:patroni": { storage: { className: "standard", size: "5Gi" } } })).toEqual([]);
  });
});

describe("the rendered stacks", () => {
  const rendered = new Map<string, RenderResult>();
  beforeAll(async () => {
    for (const stack of ["local", "prod"]) rendered.set(stack, await renderTestStack(stack));
  }, 180_000);

  test("prod: one StorageClass, encrypted with the stack's volume key, used by every StatefulSet volume", () => {
    const prod = rendered.get("prod")!;
    const cls = find(prod, "StorageClass", ENCRYPTED_STORAGE_CLASS) as any;
    const key = prod.resources.find((r) => r.name === "knhk-volumes-key")!;
    expect(key.type).toBe("aws:kms/key:Key");
    expect(key.inputs).toMatchObject({ enableKeyRotation: true });
    expect(JSON.parse(String(key.inputs.policy)).Statement[1].Condition.StringEquals["kms:ViaService"]).toBe("ec2.eu-central-1.amazonaws.com");
    expect(cls.parameters).toMatchObject({ encrypted: "true", kmsKeyId: expect.stringContaining("knhk-volumes-key") });
    const claims = all(prod, "StatefulSet").flatMap((s: any) => (s.spec.volumeClaimTemplates ?? []).map((t: any) => `${s.metadata.name}/${t.metadata.name}=${t.spec.storageClassName}`));
    expect(claims.length).toBeGreaterThanOrEqual(2);
    for (const claim of claims) expect(claim).toMatch(new RegExp(`=${ENCRYPTED_STORAGE_CLASS}$`));
  });

  test("local: no StorageClass and no volume key (kind's or kwok's classes)", () => {
    const local = rendered.get("local")!;
    expect(all(local, "StorageClass")).toEqual([]);
    expect(local.resources.filter((r) => r.name === "knhk-volumes-key")).toEqual([]);
  });
});
