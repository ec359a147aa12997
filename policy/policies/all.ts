/** Every policy of the pack, in report order. Importing this starts nothing (the pack is built in ../index.ts). */
import type { KnhkPolicy } from "../lib/define";
import { alertSeverityAndRunbook } from "./alert-severity-and-runbook";
import { appServesHttps } from "./app-serves-https";
import { containerDropCapabilities } from "./container-drop-capabilities";
import { containerProbes } from "./container-probes";
import { containerReadOnlyRootFilesystem } from "./container-read-only-root-filesystem";
import { containerResources } from "./container-resources";
import { containerRunAsNonRoot } from "./container-run-as-non-root";
import { imagePinned } from "./image-pinned";
import { kubernetesObjectsInComponents } from "./kubernetes-objects-in-components";
import { ledgerObjectLock } from "./ledger-object-lock";
import { namespaceDefaultDeny } from "./namespace-default-deny";
import { noPlaintextSecrets } from "./no-plaintext-secrets";
import { noPlaceholderIdentifiers } from "./no-placeholder-identifiers";
import { patroniSynchronousReplication } from "./patroni-synchronous-replication";
import { prodAppHighAvailability } from "./prod-app-high-availability";
import { s3BucketKmsEncryption } from "./s3-bucket-kms-encryption";
import { s3BucketPublicAccessBlock } from "./s3-bucket-public-access-block";
import { s3BucketTlsOnly } from "./s3-bucket-tls-only";
import { serviceTypeInternal } from "./service-type-internal";
import { statefulSetStorageClass } from "./statefulset-storage-class";
import { statefulSetStorageEncrypted } from "./statefulset-storage-encrypted";
import { vaultPolicyLeastPrivilege } from "./vault-policy-least-privilege";
import { zeroDowntimeRollout } from "./zero-downtime-rollout";

export const ALL_POLICIES: readonly KnhkPolicy[] = [
  containerResources,
  containerProbes,
  containerRunAsNonRoot,
  containerReadOnlyRootFilesystem,
  containerDropCapabilities,
  imagePinned,
  noPlaintextSecrets,
  noPlaceholderIdentifiers,
  statefulSetStorageClass,
  statefulSetStorageEncrypted,
  serviceTypeInternal,
  alertSeverityAndRunbook,
  vaultPolicyLeastPrivilege,
  zeroDowntimeRollout,
  prodAppHighAvailability,
  appServesHttps,
  patroniSynchronousReplication,
  namespaceDefaultDeny,
  s3BucketKmsEncryption,
  s3BucketPublicAccessBlock,
  s3BucketTlsOnly,
  ledgerObjectLock,
  kubernetesObjectsInComponents,
];
