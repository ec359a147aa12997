import * as aws from "@pulumi/aws";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labels } from "../render/k8s";
import { encryptedStorageClass, volumeKeyPolicy } from "../render/volume-encryption";

export interface EncryptedStorageArgs {
  /** Cluster-wide name of the StorageClass (knhk:aws.volumes.storageClassName; default `knhk-encrypted`). */
  readonly storageClassName: string;
  /** EBS volume type (knhk:aws.volumes.volumeType; default gp3). */
  readonly volumeType: string;
  /** Region of the cluster: the key may be used only through EC2 there. */
  readonly region: string;
  /** KMS alias, `alias/<aliasPrefix>-volumes`. */
  readonly aliasPrefix: string;
  /** Days a scheduled key deletion waits (knhk:aws.kmsDeletionWindowDays; default 30). */
  readonly kmsDeletionWindowDays: number;
  /** Tags on the key. Default none beyond `app.kubernetes.io/part-of: knhk`. */
  readonly tags?: Readonly<Record<string, string>>;
}

/**
 * Encryption at rest for the stack's volumes: a KMS key of the stack's (yearly rotation) and the
 * EBS StorageClass that encrypts every PostgreSQL and Redis volume with it. Pass the Kubernetes
 * provider in `providers`; the key uses the default AWS provider.
 */
export class EncryptedStorage extends pulumi.ComponentResource {
  public readonly storageClassName: pulumi.Output<string>;
  public readonly volumeKeyArn: pulumi.Output<string>;

  constructor(name: string, args: EncryptedStorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:storage:EncryptedStorage", name, args, opts);
    const child = { parent: this };
    const account = aws.getCallerIdentityOutput({}, child);
    const key = new aws.kms.Key(
      `${name}-key`,
      {
        description: "KNHK volumes (EBS encryption at rest)",
        enableKeyRotation: true,
        deletionWindowInDays: args.kmsDeletionWindowDays,
        policy: account.accountId.apply((id) => JSON.stringify(volumeKeyPolicy(id, args.region))),
        tags: { "app.kubernetes.io/part-of": "knhk", ...args.tags },
      },
      child,
    );
    new aws.kms.Alias(`${name}-key-alias`, { name: `alias/${args.aliasPrefix}-volumes`, targetKeyId: key.keyId }, child);
    const spec = key.arn.apply((kmsKeyArn) => encryptedStorageClass({ name: args.storageClassName, volumeType: args.volumeType, kmsKeyArn }));
    const storageClass = new k8s.storage.v1.StorageClass(
      `${name}-class`,
      {
        metadata: { name: args.storageClassName, labels: labels("knhk-volumes", "storage") },
        provisioner: spec.provisioner,
        parameters: spec.parameters,
        reclaimPolicy: spec.reclaimPolicy,
        volumeBindingMode: spec.volumeBindingMode,
        allowVolumeExpansion: spec.allowVolumeExpansion,
      },
      // A StorageClass's parameters cannot change in place; a new key means a new class.
      { parent: this, deleteBeforeReplace: true },
    );
    this.storageClassName = storageClass.metadata.name;
    this.volumeKeyArn = key.arn;
    this.registerOutputs({ storageClassName: this.storageClassName, volumeKeyArn: this.volumeKeyArn });
  }
}
