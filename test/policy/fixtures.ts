/**
 * A small, hand-built, compliant stack (independent of the real program) that each policy test
 * mutates in one place.
 */
import { TEST_EKS_ISSUER, TEST_OIDC_PROVIDER_ARN } from "../support/stack-identifiers";
import { resource, type Built } from "./helpers";

export const NS = "knhk";

export function secureContainer(name: string, image: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    image,
    resources: { requests: { cpu: "500m", memory: "512Mi" }, limits: { cpu: "2", memory: "2Gi" } },
    livenessProbe: { httpGet: { path: "/health", port: 8080 } },
    readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    },
    ...extra,
  };
}

export function deploymentProps(name: string, labels: Record<string, string>, containers: Record<string, unknown>[], replicas = 3): Record<string, unknown> {
  return {
    metadata: { name, namespace: NS, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: { metadata: { labels }, spec: { securityContext: { runAsNonRoot: true }, containers } },
    },
  };
}

/** A service Deployment as the stack renders it in staging/prod: the ConfigMap as environment, the API certificate mounted, HTTPS probes. */
function appDeployment(name: string, labels: Record<string, string>, image: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const https = (path: string) => ({ httpGet: { path, port: 8080, scheme: "HTTPS" } });
  const container = secureContainer("knhk", image, {
    envFrom: [{ configMapRef: { name: "knhk-config" } }],
    livenessProbe: https("/health"),
    readinessProbe: https("/ready"),
    volumeMounts: [{ name: "api-tls", mountPath: "/etc/knhk/tls", readOnly: true }],
    ...extra,
  });
  const props = deploymentProps(name, labels, [container]) as any;
  props.spec.template.spec.volumes = [{ name: "api-tls", secret: { secretName: "knhk-tls" } }];
  return props;
}

export const PATRONI_YML = `scope: knhk
name: \${POD_NAME}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 5
    retry_timeout: 5
    synchronous_mode: true
    synchronous_mode_strict: true
postgresql:
  authentication:
    superuser:
      username: postgres
`;

export const TLS_ONLY_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Sid: "DenyInsecureTransport", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], Condition: { Bool: { "aws:SecureTransport": "false" } } }],
});

/** Buckets with every protection; `name` doubles as the mocked id the config resources refer to. */
export function bucketSet(stack: string, parent: Built, name: string, physical: string, objectLock: boolean): Built[] {
  const bucket = resource(stack, "aws:s3/bucket:Bucket", name, { bucket: physical, objectLockEnabled: objectLock }, parent);
  const list = [
    bucket,
    resource(stack, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", `${name}-sse`, {
      bucket: physical,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn:aws:kms:eu-central-1:1:key/k" }, bucketKeyEnabled: true }],
    }, parent),
    resource(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", `${name}-pab`, {
      bucket: physical, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
    }, parent),
    resource(stack, "aws:s3/bucketPolicy:BucketPolicy", `${name}-policy`, { bucket: physical, policy: TLS_ONLY_POLICY }, parent),
  ];
  if (objectLock) {
    list.push(resource(stack, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", `${name}-lock`, {
      bucket: physical, objectLockEnabled: "Enabled", rule: { defaultRetention: { mode: "COMPLIANCE", years: 7 } },
    }, parent));
  }
  return list;
}

/** A compliant stack: namespace + default deny, blue/green app with HPA/PDB, Patroni, alerts, Vault, buckets. */
export function cleanStack(stack = "prod"): Built[] {
  const root = { type: "pulumi:pulumi:Stack", name: `knhk-${stack}`, urn: `urn:pulumi:${stack}::knhk::pulumi:pulumi:Stack::knhk-${stack}`, props: {} } as Built;
  const nsComponent = resource(stack, "knhk:platform:Namespace", "ns", {}, root);
  const app = resource(stack, "knhk:app:KnhkService", "app", {}, root);
  const db = resource(stack, "knhk:data:PatroniCluster", "db", {}, root);
  const mon = resource(stack, "knhk:monitoring:Monitoring", "mon", {}, root);
  const vault = resource(stack, "knhk:security:VaultAccess", "vault", {}, root);
  const archive = resource(stack, "knhk:compliance:ComplianceArchive", "archive", {}, root);
  const volumes = resource(stack, "knhk:storage:EncryptedStorage", "volumes", {}, root);
  const labels = (color: string) => ({ "app.kubernetes.io/name": "knhk", "knhk.io/color": color });
  const image = "ghcr.io/knhk/knhk:1.4.0";
  return [
    root, nsComponent, app, db, mon, vault, archive, volumes,
    resource(stack, "kubernetes:storage.k8s.io/v1:StorageClass", "volumes-class", {
      metadata: { name: "fast-ssd" }, provisioner: "ebs.csi.aws.com", parameters: { type: "gp3", encrypted: "true", kmsKeyId: "arn:aws:kms:eu-central-1:314159265358:key/volumes" },
    }, volumes),
    resource(stack, "kubernetes:core/v1:Namespace", "ns-namespace", { metadata: { name: NS } }, nsComponent),
    resource(stack, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "ns-default-deny", {
      metadata: { name: "default-deny", namespace: NS }, spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
    }, nsComponent),
    resource(stack, "kubernetes:core/v1:ConfigMap", "app-config", { metadata: { name: "knhk-config", namespace: NS }, data: { DB_POOL_MAX_CONNECTIONS: "50", LOG_LEVEL: "info", KNHK_TLS_CERT_FILE: "/etc/knhk/tls/tls.crt", KNHK_TLS_KEY_FILE: "/etc/knhk/tls/tls.key" } }, app),
    resource(stack, "kubernetes:apps/v1:Deployment", "app-blue", appDeployment("knhk-blue", labels("blue"), image, { env: [{ name: "NODE_ENV", value: "production" }, { name: "SIGNING_KEY", valueFrom: { secretKeyRef: { name: "knhk", key: "signing" } } }] }), app),
    resource(stack, "kubernetes:apps/v1:Deployment", "app-green", appDeployment("knhk-green", labels("green"), image), app),
    resource(stack, "kubernetes:core/v1:Service", "app-service", { metadata: { name: "knhk-service", namespace: NS }, spec: { type: "ClusterIP", selector: labels("blue"), ports: [{ port: 8080 }] } }, app),
    resource(stack, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "app-hpa-blue", {
      metadata: { name: "knhk-blue", namespace: NS }, spec: { scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "knhk-blue" }, minReplicas: 3, maxReplicas: 10 },
    }, app),
    resource(stack, "kubernetes:policy/v1:PodDisruptionBudget", "app-pdb", {
      metadata: { name: "knhk", namespace: NS }, spec: { minAvailable: 2, selector: { matchLabels: { "app.kubernetes.io/name": "knhk" } } },
    }, app),
    resource(stack, "kubernetes:core/v1:ConfigMap", "db-patroni", { metadata: { name: "patroni-config", namespace: NS }, data: { "patroni.yml": PATRONI_YML } }, db),
    resource(stack, "kubernetes:apps/v1:StatefulSet", "db-statefulset", {
      metadata: { name: "postgres", namespace: NS },
      spec: {
        replicas: 3,
        template: { metadata: { labels: { app: "postgres" } }, spec: { containers: [secureContainer("patroni", "ghcr.io/knhk/patroni-pg15:15.10", { env: [{ name: "PATRONI_SUPERUSER_PASSWORD", valueFrom: { secretKeyRef: { name: "pg", key: "su" } } }] })] } },
        volumeClaimTemplates: [{ metadata: { name: "pgdata" }, spec: { storageClassName: "fast-ssd", resources: { requests: { storage: "100Gi" } } } }],
      },
    }, db),
    resource(stack, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "mon-rules", {
      metadata: { name: "knhk", namespace: NS },
      spec: { groups: [{ name: "knhk.api", rules: [
        { record: "knhk:error_ratio:rate5m", expr: "1" },
        { alert: "KnhkHighErrorRate", expr: "x > 0.01", labels: { severity: "P1" }, annotations: { runbook_url: "https://runbooks.example/high-error-rate.md" } },
      ] }] },
    }, mon),
    resource(stack, "vault:index/policy:Policy", "vault-service-policy", {
      name: "knhk-service",
      policy: `path "secret/data/knhk/database/*" {\n  capabilities = ["read"]\n}\npath "transit/sign/knhk-receipts" {\n  capabilities = ["update"]\n}\n`,
    }, vault),
    ...bucketSet(stack, archive, "archive-ledger", `knhk-${stack}-ledger`, true),
    ...bucketSet(stack, archive, "archive-data", `knhk-${stack}-data`, false),
    resource(stack, "aws:iam/role:Role", "archive-service-role", { name: "knhk-service", assumeRolePolicy: irsaTrustPolicy(TEST_OIDC_PROVIDER_ARN, TEST_EKS_ISSUER) }, archive),
  ];
}

/** An IRSA trust policy as the archive renders it: the provider, and conditions on that provider's issuer. */
export function irsaTrustPolicy(providerArn: string, issuer: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{
      Effect: "Allow",
      Principal: { Federated: providerArn },
      Action: "sts:AssumeRoleWithWebIdentity",
      Condition: { StringEquals: { [`${issuer}:sub`]: "system:serviceaccount:knhk:knhk-service", [`${issuer}:aud`]: "sts.amazonaws.com" } },
    }],
  });
}

/** Returns a copy of `stack` with the resource named `name` replaced by `mutate(copy)`. */
export function mutate(stack: readonly Built[], name: string, change: (props: any) => void): Built[] {
  let found = false;
  const out = stack.map((r) => {
    if (r.name !== name) return r;
    found = true;
    const props = structuredClone(r.props);
    change(props);
    return { ...r, props };
  });
  if (!found) throw new Error(`no resource named ${name}`);
  return out;
}

export function byName(stack: readonly Built[], name: string): Built {
  const r = stack.find((x) => x.name === name);
  if (!r) throw new Error(`no resource named ${name}`);
  return r;
}
