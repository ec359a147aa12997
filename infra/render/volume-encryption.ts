/**
 * Encryption at rest of the stack's volumes (pure): the EBS StorageClass that encrypts every
 * volume with the stack's own KMS key, and that key's policy.
 */
import type { IStorageClass } from "kubernetes-models/storage.k8s.io/v1/StorageClass";

/** The StorageClass the stack declares with an AWS account, and the class its volumes default to. */
export const ENCRYPTED_STORAGE_CLASS = "knhk-encrypted";

/** The EBS CSI driver (the in-tree `kubernetes.io/aws-ebs` provisioner is removed since Kubernetes 1.27). */
export const EBS_CSI_PROVISIONER = "ebs.csi.aws.com";

/** What a StorageClass must say for its volumes to count as encrypted (the policy pack checks the same). */
export const ENCRYPTED_PARAMETER = { key: "encrypted", value: "true" } as const;

export interface EncryptedStorageClassInput {
  readonly name: string;
  readonly volumeType: string;
  readonly kmsKeyArn: string;
}

/**
 * The StorageClass: encrypted with the given key, volumes kept when their claim is deleted
 * (a database volume is never discarded by deleting a PVC), bound where the pod is scheduled
 * (EBS volumes live in one zone), and growable in place.
 */
export function encryptedStorageClass(input: EncryptedStorageClassInput): Required<Pick<IStorageClass, "provisioner" | "parameters" | "reclaimPolicy" | "volumeBindingMode" | "allowVolumeExpansion">> {
  return {
    provisioner: EBS_CSI_PROVISIONER,
    parameters: { type: input.volumeType, [ENCRYPTED_PARAMETER.key]: ENCRYPTED_PARAMETER.value, kmsKeyId: input.kmsKeyArn, "csi.storage.k8s.io/fstype": "ext4" },
    reclaimPolicy: "Retain",
    volumeBindingMode: "WaitForFirstConsumer",
    allowVolumeExpansion: true,
  };
}

/**
 * The volume key's policy. The account administers it through IAM; any principal of the account
 * may use it only through EC2 in the stack's region (how EBS calls KMS for the CSI driver), and
 * may create grants only for AWS resources (the attached volume). AWS's own `aws/ebs` key is
 * scoped the same way; the difference is a key of the stack's, rotated yearly, whose use
 * CloudTrail attributes to this stack.
 */
export function volumeKeyPolicy(accountId: string, region: string) {
  const throughEc2 = { StringEquals: { "kms:CallerAccount": accountId, "kms:ViaService": `ec2.${region}.amazonaws.com` } };
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "AccountAdministersTheKey", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: "kms:*", Resource: "*" },
      {
        Sid: "EbsEncryptsVolumes",
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        Resource: "*",
        Condition: throughEc2,
      },
      {
        Sid: "EbsAttachesVolumes",
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: "kms:CreateGrant",
        Resource: "*",
        Condition: { ...throughEc2, Bool: { "kms:GrantIsForAWSResource": "true" } },
      },
    ],
  };
}
