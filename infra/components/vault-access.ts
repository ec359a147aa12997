import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import type { VaultConfig } from "../config";
import type { LedgerJobVaultRole } from "../render/ledger-jobs";
import { dynamicUserCreationStatements, dynamicUserRevocationStatements, ROOT_ROTATION_STATEMENTS, VAULT_MAX_OPEN_CONNECTIONS, VAULT_PASSWORD_AUTHENTICATION, vaultConnectionUrl } from "../render/vault-database";
import { migrationPolicyRules, operatorPolicyRules, renderPolicyHcl, servicePolicyRules, VAULT_OBJECT_NAMES, vaultLayout } from "../render/vault-policies";

export interface VaultAccessArgs {
  readonly config: VaultConfig;
  /** Kubernetes namespace of the service accounts the auth roles are bound to. */
  readonly namespace: string;
  /** Service account of the KNHK pods (dynamic credentials, receipt signing). */
  readonly serviceAccount: string;
  /** Service account of the pre-deploy migration Job (the owner's static credential). */
  readonly migrationServiceAccount: string;
  /** The PostgreSQL primary as Vault reaches it (the name its certificate carries). */
  readonly database: { readonly host: pulumi.Input<string>; readonly port: number; readonly name: string };
  /** PEM of the CA the PostgreSQL server certificate chains to: Vault verifies the server with it. */
  readonly databaseCa: pulumi.Input<string>;
  /**
   * First password of the admin login Vault connects as (created by the database bootstrap from
   * the same Secret). Sent write-only, never kept in the state; Vault rotates it on its schedule.
   */
  readonly adminPassword: pulumi.Input<string>;
  /** Role granted to every dynamic user (SELECT/INSERT only on the ledger tables). */
  readonly serviceDbRole: string;
  /** Schema owner whose password Vault rotates (static role). */
  readonly ownerDbUser: string;
  /** Login Vault connects as to PostgreSQL (created by the database bootstrap). */
  readonly adminDbUser: string;
  /** Further workload identities, each with its own policy, auth role and database role (the ledger CronJobs). Default: none. */
  readonly jobIdentities?: readonly LedgerJobVaultRole[];
}

/** Names under which the service and the Deployment find Vault's pieces. */
export const VAULT_NAMES = {
  ...VAULT_OBJECT_NAMES,
  databaseConnection: "knhk-postgres",
  authRole: "knhk-service",
  servicePolicy: "knhk-service",
  migrationAuthRole: "knhk-migrate",
  migrationPolicy: "knhk-migration",
  operatorPolicy: "knhk-operator",
} as const;

/**
 * Vault for the KNHK service: Kubernetes auth bound to the `knhk-service` service account, the KV v2
 * tree, the database secrets engine (dynamic service users, a static owner with 30-day rotation,
 * scheduled root rotation), a transit ed25519 key for receipt signing, and two policies rendered
 * from data: the service's least-privilege policy and a separate break-glass operator policy.
 */
export class VaultAccess extends pulumi.ComponentResource {
  public readonly authRoleName: pulumi.Output<string>;
  public readonly servicePolicyName: pulumi.Output<string>;
  public readonly operatorPolicyName: pulumi.Output<string>;
  /** Kubernetes auth role of the migration Job. */
  public readonly migrationAuthRoleName: pulumi.Output<string>;
  /** Path the Vault Agent reads dynamic database credentials from. */
  public readonly databaseCredsPath: string;
  /** Path of the schema owner's rotated credential (the migration Job reads it). */
  public readonly ownerCredsPath: string;
  public readonly signingKeyName: pulumi.Output<string>;
  public readonly servicePolicyHcl: string;
  public readonly operatorPolicyHcl: string;
  public readonly migrationPolicyHcl: string;

  constructor(name: string, args: VaultAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("knhk:vault:VaultAccess", name, args, opts);
    const cfg = args.config;
    const child = { parent: this };
    const layout = vaultLayout(cfg.mounts);
    this.servicePolicyHcl = renderPolicyHcl(servicePolicyRules(layout));
    this.operatorPolicyHcl = renderPolicyHcl(operatorPolicyRules(layout));
    this.migrationPolicyHcl = renderPolicyHcl(migrationPolicyRules(layout));

    const servicePolicy = new vault.Policy(`${name}-service-policy`, { name: VAULT_NAMES.servicePolicy, policy: this.servicePolicyHcl }, child);
    const operatorPolicy = new vault.Policy(`${name}-operator-policy`, { name: VAULT_NAMES.operatorPolicy, policy: this.operatorPolicyHcl }, child);
    const migrationPolicy = new vault.Policy(`${name}-migration-policy`, { name: VAULT_NAMES.migrationPolicy, policy: this.migrationPolicyHcl }, child);

    const kubernetesAuth = new vault.AuthBackend(
      `${name}-kubernetes-auth`,
      { type: "kubernetes", path: cfg.mounts.kubernetesAuth, description: "KNHK workloads" },
      child,
    );
    new vault.kubernetes.AuthBackendConfig(
      `${name}-kubernetes-auth-config`,
      { backend: kubernetesAuth.path, kubernetesHost: cfg.kubernetesHost, disableIssValidation: true },
      child,
    );
    const authRole = new vault.kubernetes.AuthBackendRole(
      `${name}-auth-role`,
      {
        backend: kubernetesAuth.path,
        roleName: VAULT_NAMES.authRole,
        boundServiceAccountNames: [args.serviceAccount],
        boundServiceAccountNamespaces: [args.namespace],
        audience: cfg.tokenAudience,
        tokenTtl: cfg.tokenTtlSeconds,
        tokenMaxTtl: cfg.tokenMaxTtlSeconds,
        tokenPolicies: [servicePolicy.name],
        tokenNoDefaultPolicy: true,
      },
      child,
    );
    const migrationAuthRole = new vault.kubernetes.AuthBackendRole(
      `${name}-migration-auth-role`,
      {
        backend: kubernetesAuth.path,
        roleName: VAULT_NAMES.migrationAuthRole,
        boundServiceAccountNames: [args.migrationServiceAccount],
        boundServiceAccountNamespaces: [args.namespace],
        audience: cfg.tokenAudience,
        // A migration run takes minutes; its token need not outlive it.
        tokenTtl: 900,
        tokenMaxTtl: 1800,
        tokenPolicies: [migrationPolicy.name],
        tokenNoDefaultPolicy: true,
      },
      child,
    );

    const kv = new vault.Mount(
      `${name}-kv`,
      { path: cfg.mounts.kv, type: "kv", options: { version: "2" }, description: "KNHK static secrets (KV v2)" },
      child,
    );
    new vault.kv.SecretBackendV2(`${name}-kv-config`, { mount: kv.path, maxVersions: 20, casRequired: true }, child);

    const databaseMount = new vault.Mount(
      `${name}-database`,
      { path: cfg.mounts.database, type: "database", description: "KNHK PostgreSQL credentials" },
      child,
    );
    const connection = new vault.database.SecretBackendConnection(
      `${name}-postgres-connection`,
      {
        backend: databaseMount.path,
        name: VAULT_NAMES.databaseConnection,
        allowedRoles: [VAULT_NAMES.databaseRole, VAULT_NAMES.staticRole, ...(args.jobIdentities ?? []).map((j) => j.databaseRole)],
        verifyConnection: true,
        rotationSchedule: cfg.database.rootRotationSchedule,
        rootRotationStatements: ROOT_ROTATION_STATEMENTS,
        postgresql: {
          connectionUrl: pulumi.output(args.database.host).apply((host) => vaultConnectionUrl({ ...args.database, host })),
          username: args.adminDbUser,
          // Write-only: the first password reaches Vault and never the state; Vault rotates it.
          passwordWo: pulumi.secret(args.adminPassword),
          passwordWoVersion: 1,
          tlsCa: args.databaseCa,
          maxOpenConnections: VAULT_MAX_OPEN_CONNECTIONS,
          passwordAuthentication: VAULT_PASSWORD_AUTHENTICATION,
        },
      },
      { parent: this, additionalSecretOutputs: ["postgresql"] },
    );
    new vault.database.SecretBackendRole(
      `${name}-app-role`,
      {
        backend: databaseMount.path,
        name: VAULT_NAMES.databaseRole,
        dbName: connection.name,
        defaultTtl: cfg.database.defaultTtlSeconds,
        maxTtl: cfg.database.maxTtlSeconds,
        creationStatements: dynamicUserCreationStatements(args.serviceDbRole),
        revocationStatements: dynamicUserRevocationStatements(args.serviceDbRole),
      },
      child,
    );
    new vault.database.SecretBackendStaticRole(
      `${name}-owner-role`,
      {
        backend: databaseMount.path,
        name: VAULT_NAMES.staticRole,
        dbName: connection.name,
        username: args.ownerDbUser,
        rotationPeriod: cfg.database.staticRotationSeconds,
      },
      child,
    );

    for (const job of args.jobIdentities ?? []) {
      const policy = new vault.Policy(`${name}-${job.authRole}-policy`, { name: job.authRole, policy: renderPolicyHcl(job.policyRules) }, child);
      new vault.kubernetes.AuthBackendRole(
        `${name}-${job.authRole}-auth-role`,
        {
          backend: kubernetesAuth.path,
          roleName: job.authRole,
          boundServiceAccountNames: [job.serviceAccount],
          boundServiceAccountNamespaces: [args.namespace],
          audience: cfg.tokenAudience,
          tokenTtl: job.ttlSeconds,
          tokenMaxTtl: job.ttlSeconds,
          tokenPolicies: [policy.name],
          tokenNoDefaultPolicy: true,
        },
        child,
      );
      new vault.database.SecretBackendRole(
        `${name}-${job.databaseRole}-role`,
        {
          backend: databaseMount.path,
          name: job.databaseRole,
          dbName: connection.name,
          // Rendered once and never renewed: the run's deadline stays below this (knhk:ledgerJobs).
          defaultTtl: job.ttlSeconds,
          maxTtl: job.ttlSeconds,
          creationStatements: job.creationStatements,
          revocationStatements: job.revocationStatements,
        },
        child,
      );
    }

    const transit = new vault.Mount(`${name}-transit`, { path: cfg.mounts.transit, type: "transit", description: "KNHK receipt signing" }, child);
    const signingKey = new vault.transit.SecretBackendKey(
      `${name}-signing-key`,
      {
        backend: transit.path,
        name: VAULT_NAMES.signingKey,
        type: "ed25519",
        exportable: false,
        allowPlaintextBackup: false,
        deletionAllowed: false,
        autoRotatePeriod: cfg.signingKeyRotationSeconds,
      },
      child,
    );

    this.authRoleName = authRole.roleName;
    this.servicePolicyName = servicePolicy.name;
    this.operatorPolicyName = operatorPolicy.name;
    this.migrationAuthRoleName = migrationAuthRole.roleName;
    this.databaseCredsPath = `${cfg.mounts.database}/creds/${VAULT_NAMES.databaseRole}`;
    this.ownerCredsPath = `${cfg.mounts.database}/static-creds/${VAULT_NAMES.staticRole}`;
    this.signingKeyName = signingKey.name;
    this.registerOutputs({
      authRoleName: this.authRoleName,
      servicePolicyName: this.servicePolicyName,
      operatorPolicyName: this.operatorPolicyName,
      migrationAuthRoleName: this.migrationAuthRoleName,
      databaseCredsPath: this.databaseCredsPath,
      ownerCredsPath: this.ownerCredsPath,
      signingKeyName: this.signingKeyName,
    });
  }
}
