/** The stack config schema: defaults, the four stack files, and bad values named by key. */
import { parseStackConfig, StackConfigError } from "../../infra/config";
import { imageProblem } from "../../infra/config/common";
import { writeRecoverySeconds } from "../../infra/render/patroni";
import { listStacks, readStackConfigFile } from "../../infra/testing/render";
import { testStackConfig } from "../support/stack-identifiers";

/** Section rules hold in every stack; `local` needs no identifiers, so only the value under test is reported. */
function problemsOf(raw: Record<string, unknown>, stack = "local", secretKeys: string[] = []): string[] {
  try {
    parseStackConfig(stack, raw, secretKeys);
  } catch (err) {
    expect(err).toBeInstanceOf(StackConfigError);
    return [...(err as StackConfigError).problems];
  }
  throw new Error("expected the config to be rejected");
}

describe("the four stack files", () => {
  it("exist for local, dev, staging and prod", () => {
    expect(listStacks()).toEqual(["dev", "local", "prod", "staging"]);
  });

  it.each(["local", "dev", "staging", "prod"])("%s parses (with the identifiers the deploying team supplies)", (stack) => {
    const cfg = testStackConfig(stack);
    expect(cfg.stack).toBe(stack);
    expect(cfg.namespace.name).toBe("knhk");
  });

  it("prod: 3 Patroni members on knhk-encrypted 100Gi, HPA 3-10, seed resources", () => {
    const cfg = testStackConfig("prod");
    expect(cfg.patroni.members).toBe(3);
    expect(cfg.patroni.storage).toEqual({ className: "knhk-encrypted", size: "100Gi" });
    expect(cfg.app.autoscaling).toMatchObject({ minReplicas: 3, maxReplicas: 10, cpuUtilization: 70, memoryUtilization: 80 });
    expect(cfg.app.resources).toEqual({ requests: { cpu: "500m", memory: "512Mi" }, limits: { cpu: "2000m", memory: "2Gi" } });
    expect(cfg.patroni.backup.repo).toMatchObject({ type: "s3", bucket: "knhk-prod-pgbackrest" });
    expect([cfg.monitoring.enabled, cfg.grafana.enabled, cfg.vault.enabled, cfg.aws.enabled]).toEqual([true, true, true, true]);
  });

  it("local: the local control plane's kubeconfig, cloud parts off, monitoring on, seed's primary + 1 replica", () => {
    const cfg = parseStackConfig("local", readStackConfigFile("local"));
    expect(cfg.kubernetes).toEqual({ kubeconfig: ".tools/local-cluster/admin.kubeconfig", context: "knhk-local" });
    expect([cfg.monitoring.enabled, cfg.grafana.enabled, cfg.vault.enabled, cfg.aws.enabled]).toEqual([true, false, false, false]);
    expect(cfg.patroni.members).toBe(2);
    expect(cfg.patroni.backup.repo.type).toBe("posix");
  });

  it("dev/staging/prod target a cluster context and keep the Patroni timing within the RTO", () => {
    for (const stack of ["dev", "staging", "prod"]) {
      const cfg = testStackConfig(stack);
      expect(cfg.kubernetes.context).toBe(`knhk-${stack}`);
      expect(cfg.kubernetes.renderDir).toBeUndefined();
      expect(cfg.patroni.loopWait + 2 * cfg.patroni.retryTimeout).toBeLessThanOrEqual(cfg.patroni.ttl);
      expect(writeRecoverySeconds(cfg.patroni)).toBeLessThan(30);
    }
  });
});

describe("defaults (empty config)", () => {
  const cfg = parseStackConfig("local", {});
  it("carry the seed values; the pool fits the connection budget (8 per pod for HPA max 10, 3 members)", () => {
    expect(cfg.app.settings).toEqual({
      DB_POOL_MAX_CONNECTIONS: 8,
      DB_POOL_MIN_CONNECTIONS: 8,
      PATTERN_WINDOW_SECONDS: 60,
      VALIDATION_TIMEOUT_MS: 100,
      KNHK_LOG_LEVEL: "info",
    });
    expect(cfg.redis).toMatchObject({ maxmemory: "256mb", maxmemoryPolicy: "allkeys-lru", sentinels: 3, quorum: 2, replicas: 1, minReplicasToWrite: 1, minReplicasMaxLag: 3 });
    expect(cfg.patroni.dcs).toEqual({ type: "kubernetes" });
    expect(cfg.patroni.backup).toMatchObject({ fullSchedule: "0 2 * * 0", incrementalSchedule: "0 2 * * 1-6" });
  });
  it("accept JSON text as Pulumi passes it", () => {
    const fromText = parseStackConfig("local", { "knhk:app": JSON.stringify({ replicas: 4 }) });
    expect(fromText.app.replicas).toBe(4);
  });
  it("ignore other namespaces' keys (providers)", () => {
    expect(() => parseStackConfig("local", { "aws:region": "eu-central-1", "kubernetes:context": "x" })).not.toThrow();
  });
});

describe("bad values stop the program, naming key, value and what is allowed", () => {
  it("knhk:app.replicas: \"three\"", () => {
    const [p] = problemsOf({ "knhk:app": { replicas: "three" } });
    expect(p).toMatch(/^knhk:app\.replicas = "three": .*expected number, received string/);
  });

  it("a negative storage size", () => {
    const [p] = problemsOf({ "knhk:patroni": { storage: { className: "fast-ssd", size: "-100Gi" } } });
    expect(p).toBe('knhk:patroni.storage.size = "-100Gi": must be a memory quantity such as 512Mi or 2Gi');
  });

  it("a negative member count", () => {
    const [p] = problemsOf({ "knhk:patroni": { members: -1 } });
    expect(p).toMatch(/^knhk:patroni\.members = -1: .*>=1/);
  });

  it("an unknown nested key lists the allowed keys", () => {
    const [p] = problemsOf({ "knhk:app": { replica: 3 } });
    expect(p).toBe("knhk:app.replica: unknown key (allowed: image, versions, activeColor, replicas, autoscaling, resources, settings, tls, oidc, command)");
  });

  it("an unknown knhk:* section", () => {
    const [p] = problemsOf({ "knhk:postgres": { members: 3 } });
    expect(p).toMatch(/^knhk:postgres: unknown config key \(allowed: knhk:app, knhk:namespace, knhk:patroni, knhk:redis, knhk:kubernetes/);
  });

  it("an unpinned or latest image", () => {
    expect(problemsOf({ "knhk:app": { versions: { blue: "latest", green: "1.0.0" } } })).toEqual([
      `knhk:app.versions.blue = "latest": must be pinned: 'latest' is not allowed`,
    ]);
    expect(problemsOf({ "knhk:redis": { image: "redis" } })[0]).toMatch(/^knhk:redis\.image = "redis": must be pinned by tag or digest/);
    expect(problemsOf({ "knhk:patroni": { image: "ghcr.io/x/patroni:latest" } })[0]).toMatch(/'latest' is not allowed/);
  });

  it("an activeColor outside blue/green", () => {
    const [p] = problemsOf({ "knhk:app": { activeColor: "red" } });
    expect(p).toMatch(/^knhk:app\.activeColor = "red": .*"blue"\|"green"/);
  });

  it("Patroni timing that breaks loop_wait + 2*retry_timeout <= ttl", () => {
    const [p] = problemsOf({ "knhk:patroni": { ttl: 20, loopWait: 10, retryTimeout: 10 } });
    expect(p).toBe("knhk:patroni.ttl = 20: must be >= loopWait + 2*retryTimeout (10 + 2*10 = 30)");
  });

  it("Patroni timing beyond the RTO budget", () => {
    const [p] = problemsOf({ "knhk:patroni": { ttl: 30, loopWait: 10, retryTimeout: 10 } });
    expect(p).toBe("knhk:patroni.ttl = 30: ttl + loopWait + the 5 s strict-sync standby wait (45 s) must stay below the RTO budget of 30 s");
  });

  it("Patroni timing whose detection fits the RTO but not with the strict-sync standby wait", () => {
    expect(parseStackConfig("local", { "knhk:patroni": { ttl: 20, loopWait: 4 } }).patroni).toMatchObject({ ttl: 20, loopWait: 4 });
    const [p] = problemsOf({ "knhk:patroni": { ttl: 20, loopWait: 5 } });
    expect(p).toBe("knhk:patroni.ttl = 20: ttl + loopWait + the 5 s strict-sync standby wait (30 s) must stay below the RTO budget of 30 s");
  });

  it("Redis write safety: minReplicasToWrite within the replicas, max lag below Sentinel's detection", () => {
    expect(problemsOf({ "knhk:redis": { replicas: 1, minReplicasToWrite: 2 } })).toEqual(["knhk:redis.minReplicasToWrite = 2: must be <= replicas (1), else the primary refuses every write"]);
    expect(problemsOf({ "knhk:redis": { minReplicasToWrite: 0 } })[0]).toMatch(/^knhk:redis\.minReplicasToWrite = 0: /);
    expect(problemsOf({ "knhk:redis": { minReplicasMaxLag: 5, downAfterMilliseconds: 5000 } })).toEqual([
      "knhk:redis.minReplicasMaxLag = 5: must be below downAfterMilliseconds (5000 ms) so a cut-off primary stops taking writes before Sentinel can promote a replica",
    ]);
  });

  it("limits below requests", () => {
    const [p] = problemsOf({ "knhk:app": { resources: { requests: { cpu: "2", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } } } });
    expect(p).toBe('knhk:app.resources.limits.cpu = "1": must be >= requests.cpu (2)');
  });

  it("HPA min above max, pool min above max, even sentinel count, unknown eviction policy", () => {
    expect(problemsOf({ "knhk:app": { autoscaling: { minReplicas: 5, maxReplicas: 4 }, replicas: 5 } })).toContain(
      "knhk:app.autoscaling.maxReplicas = 4: must be >= minReplicas (5)",
    );
    expect(problemsOf({ "knhk:app": { settings: { DB_POOL_MAX_CONNECTIONS: 5, DB_POOL_MIN_CONNECTIONS: 6 } } })).toEqual([
      "knhk:app.settings.DB_POOL_MIN_CONNECTIONS = 6: must be <= DB_POOL_MAX_CONNECTIONS (5)",
    ]);
    expect(problemsOf({ "knhk:app": { settings: { DB_POOL_MIN_CONNECTIONS: 60 } } })).toEqual([
      "knhk:app.settings.DB_POOL_MIN_CONNECTIONS = 60: must be <= DB_POOL_MAX_CONNECTIONS (8, derived from the connection budget)",
    ]);
    expect(problemsOf({ "knhk:redis": { sentinels: 4 } })[0]).toBe("knhk:redis.sentinels = 4: must be odd so a majority exists");
    expect(problemsOf({ "knhk:redis": { maxmemoryPolicy: "lru" } })[0]).toMatch(/^knhk:redis\.maxmemoryPolicy = "lru": .*allkeys-lru/);
  });

  it("renderDir together with a cluster context", () => {
    const [p] = problemsOf({ "knhk:kubernetes": { renderDir: "out", context: "prod" } });
    expect(p).toMatch(/^knhk:kubernetes\.renderDir = "out": cannot be combined with context\/kubeconfig/);
  });

  it("a section that is not an object", () => {
    const [p] = problemsOf({ "knhk:app": "three replicas" });
    expect(p).toMatch(/^knhk:app = "three replicas": must be an object/);
  });

  it("reports every problem at once", () => {
    const problems = problemsOf({ "knhk:app": { replicas: 0 }, "knhk:redis": { maxmemory: "lots" }, "knhk:bogus": 1 });
    expect(problems).toHaveLength(4);
    expect(problems).toContain("knhk:app.replicas = 0: must lie within autoscaling.minReplicas..maxReplicas (3..10)");
    expect(problems.join("\n")).toMatch(/knhk:app\.replicas/);
    expect(problems.join("\n")).toMatch(/knhk:redis\.maxmemory/);
    expect(problems.join("\n")).toMatch(/knhk:bogus/);
  });

  it("never prints a secret value", () => {
    const [p] = problemsOf({ "knhk:app": { versions: { blue: "s3cr3t value", green: "1.0.0" } } }, "prod", ["knhk:app"]);
    expect(p).toMatch(/^knhk:app\.versions\.blue = \[secret\]: /);
    expect(p).not.toContain("s3cr3t");
  });
});

describe("image pinning", () => {
  it.each([
    ["ghcr.io/knhk/knhk:1.2.3", undefined],
    [`ghcr.io/knhk/knhk@sha256:${"a".repeat(64)}`, undefined],
    ["localhost:5000/knhk:v1", undefined],
    ["localhost:5000/knhk", "must be pinned by tag or digest (repository:tag or repository@sha256:...)"],
    ["knhk:latest", "must be pinned: 'latest' is not allowed"],
    ["knhk:LATEST", "must be pinned: 'latest' is not allowed"],
    ["knhk@sha256:abc", "has an invalid digest (expected sha256:<64 hex>)"],
    ["Knhk:1.0", "has an invalid repository"],
  ])("%s", (ref, problem) => {
    expect(imageProblem(ref)).toBe(problem);
  });
});
