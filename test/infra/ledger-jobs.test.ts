/**
 * The scheduled ledger jobs as rendered: CronJobs knhk-archive, knhk-verify-chain and
 * knhk-verify-chain-full in the stacks that have a database identity for them (Vault) and, for the
 * archive, the buckets (AWS); their pod specs, identities, NetworkPolicies, IRSA trust and alerts;
 * and the `knhk:ledgerJobs` config refusing what could not work.
 */
import fc from "fast-check";
import { parseStackConfig, StackConfigError } from "../../infra/config";
import { ledgerJobsSection } from "../../infra/config/ledger-jobs";
import { retentionDays } from "../../infra/render/archive";
import { deployedLedgerJobs, LEDGER_JOBS, ledgerCronJob, ledgerJobBootstrapStatements, ledgerJobNetworkAllows, ledgerJobVaultRoles } from "../../infra/render/ledger-jobs";
import { policyAllows, renderPolicyHcl } from "../../infra/render/vault-policies";
import { monitoringDocuments, monitoringInput } from "../../infra/render/monitoring-bundle";
import { isAlertRule } from "../../infra/render/alert-rules";
import { APP, APP_FILES, POSTGRES } from "../../infra/render/topology";
import type { RenderResult } from "../../infra/testing/render";
import { renderTestStack, testStackConfig, testStackConfigFile } from "../support/stack-identifiers";
import { all, find, podSpec, podTemplate, type Obj } from "./helpers";

const results: Record<string, RenderResult> = {};
beforeAll(async () => {
  for (const stack of ["local", "dev", "prod"]) results[stack] = await renderTestStack(stack);
}, 240_000);

const CRONJOBS = ["knhk-archive", "knhk-verify-chain", "knhk-verify-chain-full"];
const container = (o: Obj) => podSpec(o).containers[0];
const env = (o: Obj): Record<string, string> => Object.fromEntries(container(o).env.map((e: { name: string; value: string }) => [e.name, e.value]));
const ledgerCronJobs = (r: RenderResult) => all(r, "CronJob").filter((o) => CRONJOBS.includes(o.metadata.name));

describe("which stacks run the jobs", () => {
  test("dev and prod (Vault and AWS on) run all three; local (no Vault: the service runs on its embedded database) none", () => {
    expect(ledgerCronJobs(results.prod).map((o) => o.metadata.name).sort()).toEqual(CRONJOBS);
    expect(ledgerCronJobs(results.dev).map((o) => o.metadata.name).sort()).toEqual(CRONJOBS);
    expect(ledgerCronJobs(results.local)).toEqual([]);
    expect(results.local.resources.filter((r) => r.type === "knhk:app:LedgerJobs")).toEqual([]);
    expect(all(results.local, "NetworkPolicy").filter((p) => /archive|verify-chain/.test(p.metadata.name))).toEqual([]);
  });

  test("without AWS only the verifications; a disabled job is not deployed", () => {
    const prod = testStackConfig("prod");
    expect(deployedLedgerJobs({ ...prod, aws: { ...prod.aws, enabled: false } } as typeof prod)).toEqual(["verifyChain", "fullVerification"]);
    expect(deployedLedgerJobs({ ...prod, vault: { ...prod.vault, enabled: false } })).toEqual([]);
    const off = parseStackConfig("prod", { ...testStackConfigFile("prod"), "knhk:ledgerJobs": { fullVerification: { enabled: false } } });
    expect(deployedLedgerJobs(off)).toEqual(["archive", "verifyChain"]);
    expect(monitoringDocuments(monitoringInput(off)).ruleGroups.find((g) => g.name === "knhk-ledger-jobs")!.rules.map((r) => ("alert" in r ? r.alert : r.record))).toEqual([
      "KnhkArchiveStale",
      "KnhkChainVerificationStale",
    ]);
  });

  test("the CronJobs and their ServiceAccounts are children of the LedgerJobs component", () => {
    const component = results.prod.resources.find((r) => r.type === "knhk:app:LedgerJobs")!;
    expect(component.name).toBe("knhk-ledger-jobs");
    const children = results.prod.resources.filter((r) => r.parent === component.urn).map((r) => `${r.type} ${r.name}`).sort();
    expect(children).toEqual([
      "kubernetes:batch/v1:CronJob knhk-ledger-jobs-archive",
      "kubernetes:batch/v1:CronJob knhk-ledger-jobs-verify-chain",
      "kubernetes:batch/v1:CronJob knhk-ledger-jobs-verify-chain-full",
      "kubernetes:core/v1:ServiceAccount knhk-ledger-jobs-archive-service-account",
      "kubernetes:core/v1:ServiceAccount knhk-ledger-jobs-verify-chain-service-account",
    ]);
  });
});

describe("the prod CronJobs", () => {
  const cron = (name: string) => find(results.prod, "CronJob", name);

  test("schedules (UTC), no overlap, a deadline to start, retries, a run deadline, history", () => {
    const shape = (o: Obj) => ({
      schedule: o.spec.schedule,
      timeZone: o.spec.timeZone,
      concurrencyPolicy: o.spec.concurrencyPolicy,
      startingDeadlineSeconds: o.spec.startingDeadlineSeconds,
      successfulJobsHistoryLimit: o.spec.successfulJobsHistoryLimit,
      failedJobsHistoryLimit: o.spec.failedJobsHistoryLimit,
      backoffLimit: o.spec.jobTemplate.spec.backoffLimit,
      activeDeadlineSeconds: o.spec.jobTemplate.spec.activeDeadlineSeconds,
      restartPolicy: podSpec(o).restartPolicy,
    });
    const common = { timeZone: "Etc/UTC", concurrencyPolicy: "Forbid", startingDeadlineSeconds: 600, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 3, backoffLimit: 1, restartPolicy: "Never" };
    expect(shape(cron("knhk-archive"))).toEqual({ ...common, schedule: "17 * * * *", activeDeadlineSeconds: 2700 });
    expect(shape(cron("knhk-verify-chain"))).toEqual({ ...common, schedule: "41 */6 * * *", activeDeadlineSeconds: 2700 });
    expect(shape(cron("knhk-verify-chain-full"))).toEqual({ ...common, schedule: "23 4 * * 0", activeDeadlineSeconds: 3300 });
  });

  test("the commands: archive run with deletion and a run record; incremental and full verification against Vault's keys with a run record", () => {
    expect(container(cron("knhk-archive")).command).toEqual([...APP.cliCommand, "archive", "run", "--batch", "1000", "--delete-archived-observations", "--record-run"]);
    expect(container(cron("knhk-verify-chain")).command).toEqual([...APP.cliCommand, "receipts", "verify-chain", "--incremental", "--format", "json", "--workers", "2", "--trusted-keys", APP_FILES.transitKeys, "--record-run"]);
    expect(container(cron("knhk-verify-chain-full")).command).toEqual([...APP.cliCommand, "receipts", "verify-chain", "--format", "json", "--workers", "2", "--trusted-keys", APP_FILES.transitKeys, "--record-run"]);
    // The keys file comes from the transit key's public versions, rendered by the pod's Vault Agent.
    for (const name of ["knhk-verify-chain", "knhk-verify-chain-full"]) {
      expect(podTemplate(cron(name)).metadata.annotations["vault.hashicorp.com/agent-inject-secret-transit-keys.json"]).toBe("transit/keys/knhk-receipts");
    }
    expect(podTemplate(cron("knhk-archive")).metadata.annotations["vault.hashicorp.com/agent-inject-secret-transit-keys.json"]).toBeUndefined();
  });

  test("the active colour's image and version; pods carry the topology's selectors", () => {
    const blue = find(results.prod, "Deployment", "knhk-blue");
    for (const name of CRONJOBS) {
      expect(container(cron(name)).image).toBe(podSpec(blue).containers[0].image);
      expect(podTemplate(cron(name)).metadata.labels["app.kubernetes.io/version"]).toBe("0.1.0");
    }
    expect(podTemplate(cron("knhk-archive")).metadata.labels).toMatchObject(APP.archiveSelector);
    expect(podTemplate(cron("knhk-verify-chain")).metadata.labels).toMatchObject(APP.verifyChainSelector);
    expect(podTemplate(cron("knhk-verify-chain-full")).metadata.labels).toMatchObject(APP.verifyChainSelector);
    // Not selected by the service's Service, PDB or NetworkPolicy.
    expect(podTemplate(cron("knhk-archive")).metadata.labels["app.kubernetes.io/component"]).not.toBe(APP.selector["app.kubernetes.io/component"]);
  });

  test("a switch to green moves the jobs to green's version", async () => {
    const file = testStackConfigFile("prod") as Record<string, Record<string, unknown>>;
    const green = await renderTestStack("prod", {
      config: { ...file, "knhk:app": { ...file["knhk:app"], versions: { blue: "0.1.0", green: "0.2.0" }, activeColor: "green" } },
    });
    for (const name of CRONJOBS) expect(container(find(green, "CronJob", name)).image).toBe("ghcr.io/knhk/knhk:0.2.0");
  }, 120_000);

  test("restricted security context, read-only root, resources, no sidecar that would keep the Job running", () => {
    for (const name of CRONJOBS) {
      const spec = podSpec(cron(name));
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } });
      expect(container(cron(name)).securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
      expect(container(cron(name)).resources.limits).toBeDefined();
      expect(podTemplate(cron(name)).metadata.annotations["vault.hashicorp.com/agent-pre-populate-only"]).toBe("true");
      expect(spec.containers).toHaveLength(1);
    }
  });

  test("each job is its own database identity: Vault auth role and dynamic credentials of its role, never the service's", () => {
    const annotations = (name: string) => podTemplate(cron(name)).metadata.annotations as Record<string, string>;
    expect(annotations("knhk-archive")["vault.hashicorp.com/role"]).toBe("knhk-archive");
    expect(annotations("knhk-archive")["vault.hashicorp.com/agent-inject-secret-database-url"]).toBe("database/creds/knhk-archiver");
    for (const name of ["knhk-verify-chain", "knhk-verify-chain-full"]) {
      expect(annotations(name)["vault.hashicorp.com/role"]).toBe("knhk-verify-chain");
      expect(annotations(name)["vault.hashicorp.com/agent-inject-secret-database-url"]).toBe("database/creds/knhk-verifier");
    }
    const template = annotations("knhk-archive")["vault.hashicorp.com/agent-inject-template-database-url"];
    expect(template).toContain("@postgres-primary.knhk.svc.cluster.local:5432/knhk?sslmode=verify-full&sslrootcert=");
    expect(template).toContain(encodeURIComponent(APP_FILES.postgresCa));
    expect(podSpec(cron("knhk-archive")).serviceAccountName).toBe("knhk-archive");
    expect(podSpec(cron("knhk-verify-chain")).serviceAccountName).toBe("knhk-verify-chain");
    for (const name of CRONJOBS) {
      expect(env(cron(name))).toMatchObject({ DATABASE_URL_FILE: APP_FILES.databaseUrl, KNHK_MIGRATE_ON_START: "false", DB_POOL_MAX_CONNECTIONS: "2", DB_POOL_MIN_CONNECTIONS: "0" });
      expect(Object.keys(env(cron(name)))).not.toContain("DATABASE_URL");
      // The CA only, never the TLS Secret's private key.
      expect(podSpec(cron(name)).volumes.find((v: { name: string }) => v.name === "postgres-ca").secret).toEqual({
        secretName: "postgres-tls",
        items: [{ key: "ca.crt", path: "ca.crt" }],
        defaultMode: 0o444,
      });
    }
  });

  test("the archive writes to the compliance archive's buckets with the stack's Object Lock retention and KMS key", () => {
    const prod = testStackConfig("prod");
    if (!prod.aws.enabled) throw new Error("prod has AWS on");
    expect(env(cron("knhk-archive"))).toEqual(
      expect.objectContaining({
        KNHK_ARCHIVE_LEDGER_BUCKET: "knhk-prod-ledger",
        KNHK_ARCHIVE_DATA_BUCKET: "knhk-prod-data",
        KNHK_ARCHIVE_RETENTION_MODE: "COMPLIANCE",
        KNHK_ARCHIVE_RETENTION_DAYS: String(retentionDays(prod.aws.ledgerRetention)),
        KNHK_OBSERVATION_ARCHIVE_AFTER_DAYS: "90",
        KNHK_ARCHIVE_KMS_KEY_ID: expect.stringMatching(/^arn:aws:kms:.*knhk-archive-key$/),
        AWS_REGION: "eu-central-1",
      }),
    );
    expect(env(find(results.dev, "CronJob", "knhk-archive"))).toMatchObject({ KNHK_ARCHIVE_RETENTION_MODE: "GOVERNANCE", KNHK_ARCHIVE_RETENTION_DAYS: "1" });
    expect(Object.keys(env(cron("knhk-verify-chain")))).not.toContain("KNHK_ARCHIVE_LEDGER_BUCKET");
  });

  test("IRSA: ServiceAccount knhk-archive carries the archive role, which trusts it; the verifier has no AWS identity", () => {
    const sa = find(results.prod, "ServiceAccount", "knhk-archive");
    expect(sa.metadata.annotations).toEqual({ "eks.amazonaws.com/role-arn": results.prod.outputs.archiveServiceRoleArn });
    expect(find(results.prod, "ServiceAccount", "knhk-verify-chain").metadata.annotations).toBeUndefined();
    const role = results.prod.resources.find((r) => r.type === "aws:iam/role:Role" && r.name.endsWith("-service-role"))!;
    expect(String(role.inputs.assumeRolePolicy)).toContain("system:serviceaccount:knhk:knhk-archive");
  });
});

describe("NetworkPolicies of the jobs", () => {
  const policy = (name: string) => find(results.prod, "NetworkPolicy", name);

  test("PostgreSQL both ways, Vault where knhk:vault.server says, S3/STS for the archive only", () => {
    expect(policy("allow-archive-to-postgres-egress").spec).toMatchObject({ podSelector: { matchLabels: APP.archiveSelector }, egress: [{ to: [{ podSelector: { matchLabels: POSTGRES.selector } }], ports: [{ port: 5432 }] }] });
    expect(policy("allow-archive-to-postgres-ingress").spec).toMatchObject({ podSelector: { matchLabels: POSTGRES.selector }, ingress: [{ from: [{ podSelector: { matchLabels: APP.archiveSelector } }], ports: [{ port: 5432 }] }] });
    expect(policy("allow-verify-chain-to-postgres-ingress").spec).toMatchObject({ ingress: [{ from: [{ podSelector: { matchLabels: APP.verifyChainSelector } }], ports: [{ port: 5432 }] }] });
    const vault = testStackConfig("prod").vault.server as { namespace: string };
    for (const name of ["allow-archive-to-vault", "allow-verify-chain-to-vault"]) {
      expect(policy(name).spec.egress).toEqual([
        { to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": vault.namespace } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "vault" } } }], ports: [{ protocol: "TCP", port: 8200 }] },
      ]);
    }
    expect(policy("allow-archive-external-egress").spec.egress).toEqual([{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [{ protocol: "TCP", port: 443 }] }]);
    expect(all(results.prod, "NetworkPolicy").filter((p) => p.metadata.name.startsWith("allow-verify-chain-external"))).toEqual([]);
  });

  test("the flows follow the deployed jobs (pure)", () => {
    expect(ledgerJobNetworkAllows([], "vault")).toEqual({ allows: [], externalEgress: [], peerAllows: [] });
    const verifyOnly = ledgerJobNetworkAllows(["fullVerification"], "vault");
    expect(verifyOnly.allows.map((a) => a.name)).toEqual(["verify-chain-to-postgres"]);
    expect(verifyOnly.externalEgress).toEqual([]);
  });
});

describe("alerts of the jobs", () => {
  test("prod: one staleness alert per CronJob at its configured age, from kube-state-metrics in the stack's namespace", () => {
    const groups = monitoringDocuments(monitoringInput(testStackConfig("prod"))).ruleGroups;
    const rules = groups.find((g) => g.name === "knhk-ledger-jobs")!.rules.filter(isAlertRule);
    expect(rules.map((r) => [r.alert, r.labels.severity, /> (\d+)$/.exec(r.expr)?.[1]])).toEqual([
      ["KnhkArchiveStale", "P2", String(4 * 3600)],
      ["KnhkChainVerificationStale", "P2", String(13 * 3600)],
      ["KnhkChainFullVerificationStale", "P3", String(8 * 86400)],
    ]);
    expect(rules[0].expr).toContain('kube_cronjob_status_last_successful_time{namespace="knhk",cronjob="knhk-archive"}');
    expect(rules[0].expr).toContain('kube_cronjob_created{namespace="knhk",cronjob="knhk-archive"}');
    expect(groups.find((g) => g.name === "knhk-integrity")!.rules.filter(isAlertRule).find((r) => r.alert === "KnhkReceiptChainBroken")!.expr).toContain(
      "knhk_receipt_chain_verification_failures",
    );
  });

  test("local has no ledger-jobs alerts (no jobs)", () => {
    const groups = monitoringDocuments(monitoringInput(testStackConfig("local"))).ruleGroups;
    expect(groups.map((g) => g.name)).not.toContain("knhk-ledger-jobs");
  });
});

describe("knhk:ledgerJobs config", () => {
  function problems(section: unknown): string[] {
    try {
      parseStackConfig("local", { "knhk:ledgerJobs": section });
    } catch (error) {
      expect(error).toBeInstanceOf(StackConfigError);
      return [...(error as StackConfigError).problems];
    }
    throw new Error("expected the config to be rejected");
  }

  test.each([
    [{ archive: { schedule: "hourly" } }, "knhk:ledgerJobs.archive.schedule = \"hourly\": must be a 5-field cron expression"],
    [{ archive: { alertAfterSeconds: 600 } }, "knhk:ledgerJobs.archive.alertAfterSeconds = 600: must be greater than activeDeadlineSeconds (2700)"],
    [{ credentialTtlSeconds: 1800 }, "knhk:ledgerJobs.archive.activeDeadlineSeconds = 2700: must be below credentialTtlSeconds (1800)"],
    [{ verifyChain: { workers: 0 } }, "knhk:ledgerJobs.verifyChain.workers = 0:"],
    [{ archive: { batchSize: 100_001 } }, "knhk:ledgerJobs.archive.batchSize = 100001:"],
    [{ fullVerification: { resources: { requests: { cpu: "2", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } } } }, "knhk:ledgerJobs.fullVerification.resources.limits.cpu = \"1\": must be >= requests.cpu (2)"],
    [{ verifyChian: {} }, "knhk:ledgerJobs.verifyChian: unknown key"],
  ])("%j is refused naming the key", (section, message) => {
    expect(problems(section).join("\n")).toContain(message);
  });

  test("a disabled job is not held to the credential lease", () => {
    const cfg = ledgerJobsSection.parse({ credentialTtlSeconds: 600, archive: { enabled: false }, verifyChain: { enabled: false }, fullVerification: { enabled: false } });
    expect(cfg.credentialTtlSeconds).toBe(600);
  });

  test("property: a job's deadline and alert age are accepted exactly when deadline < lease and alert age > deadline", () => {
    fc.assert(
      fc.property(fc.integer({ min: 60, max: 20_000 }), fc.integer({ min: 1, max: 40_000 }), fc.integer({ min: 300, max: 86_400 }), (deadline, alertAfter, ttl) => {
        const result = ledgerJobsSection.safeParse({
          credentialTtlSeconds: ttl,
          archive: { activeDeadlineSeconds: deadline, alertAfterSeconds: alertAfter },
          verifyChain: { enabled: false },
          fullVerification: { enabled: false },
        });
        expect(result.success).toBe(deadline < ttl && alertAfter > deadline);
        if (!result.success) for (const issue of result.error.issues) expect(issue.path[0]).toBe("archive");
      }),
    );
  });

  test("property: hostile values anywhere in the section are refused with a knhk:ledgerJobs key, never a crash", () => {
    const hostile = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string()), fc.object());
    fc.assert(
      fc.property(fc.constantFrom("archive", "verifyChain", "fullVerification"), fc.constantFrom("schedule", "activeDeadlineSeconds", "alertAfterSeconds", "enabled", "resources", "workers", "batchSize"), hostile, (job, field, value) => {
        let thrown: unknown;
        try {
          parseStackConfig("local", { "knhk:ledgerJobs": { [job]: { [field]: value } } });
        } catch (error) {
          thrown = error;
        }
        if (thrown === undefined) return;
        expect(thrown).toBeInstanceOf(StackConfigError);
        for (const p of (thrown as StackConfigError).problems) expect(p).toMatch(/^knhk:ledgerJobs\./);
      }),
    );
  });
});

describe("ledgerCronJob (pure)", () => {
  test("the archive job without its archive target is refused", () => {
    expect(() =>
      ledgerCronJob({
        kind: "archive",
        namespace: "knhk",
        config: ledgerJobsSection.parse({}),
        image: "ghcr.io/knhk/knhk:0.1.0",
        version: "0.1.0",
        databaseMount: "database",
        database: { host: "postgres-primary.knhk.svc.cluster.local", port: 5432, name: "knhk" },
        caSecretName: "postgres-tls",
        transit: { mount: "transit", key: "knhk-receipts" },
      }),
    ).toThrow(/the archive job needs its archive target/);
  });

  test("every job's identity names are distinct from the service's", () => {
    for (const id of Object.values(LEDGER_JOBS)) {
      expect(id.serviceAccount).not.toBe(APP.serviceAccount);
      expect(id.dbRole).not.toBe(POSTGRES.serviceDbRole);
    }
  });
});

describe("what Vault and the database bootstrap need for the jobs (pure, for VaultAccess and Patroni's bootstrap)", () => {
  const roles = ledgerJobVaultRoles("database", 3600, { mount: "transit", key: "knhk-receipts" });

  test("two identities; each policy reads its own credentials and nothing else", () => {
    expect(roles.map((r) => [r.authRole, r.serviceAccount, r.databaseRole, r.dbRole])).toEqual([
      ["knhk-archive", "knhk-archive", "knhk-archiver", "knhk_archiver"],
      ["knhk-verify-chain", "knhk-verify-chain", "knhk-verifier", "knhk_verifier"],
    ]);
    const [archiver, verifier] = roles;
    expect(policyAllows(archiver.policyRules, "database/creds/knhk-archiver", "read")).toBe(true);
    expect(policyAllows(archiver.policyRules, "database/creds/knhk-verifier", "read")).toBe(false);
    expect(policyAllows(archiver.policyRules, "database/creds/knhk-app", "read")).toBe(false);
    expect(policyAllows(archiver.policyRules, "database/static-creds/knhk-owner", "read")).toBe(false);
    expect(policyAllows(verifier.policyRules, "database/creds/knhk-verifier", "read")).toBe(true);
    expect(policyAllows(verifier.policyRules, "transit/sign/knhk-receipts", "update")).toBe(false);
    // Verification trusts the public keys Vault holds, not the rows of the database it verifies.
    expect(policyAllows(verifier.policyRules, "transit/keys/knhk-receipts", "read")).toBe(true);
    expect(policyAllows(archiver.policyRules, "transit/keys/knhk-receipts", "read")).toBe(false);
    for (const r of roles) expect(renderPolicyHcl(r.policyRules)).toContain(`path "database/creds/${r.databaseRole}"`);
  });

  test("the database roles create logins that are members of the job's NOLOGIN role only, leased for the configured TTL", () => {
    expect(roles[0].creationStatements.join("\n")).toMatch(/IN ROLE knhk_archiver;$/);
    expect(roles[1].revocationStatements.join("\n")).toContain("REVOKE knhk_verifier FROM");
    expect(roles.every((r) => r.ttlSeconds === 3600)).toBe(true);
    // The pods read exactly these paths.
    const prod = results.prod;
    expect(podTemplate(find(prod, "CronJob", "knhk-archive")).metadata.annotations["vault.hashicorp.com/agent-inject-secret-database-url"]).toBe(`database/creds/${roles[0].databaseRole}`);
  });

  test("the bootstrap creates the roles and lets Vault's login administer them; refuses a bad identifier", () => {
    expect(ledgerJobBootstrapStatements("vault_admin")).toEqual([
      "CREATE ROLE knhk_archiver NOLOGIN;",
      "GRANT knhk_archiver TO vault_admin WITH ADMIN OPTION;",
      "CREATE ROLE knhk_verifier NOLOGIN;",
      "GRANT knhk_verifier TO vault_admin WITH ADMIN OPTION;",
    ]);
    expect(() => ledgerJobBootstrapStatements("vault_admin; DROP TABLE receipts")).toThrow(/plain lower-case SQL identifier/);
  });
});
