/**
 * The program under Pulumi mocks (project `knhk`, the real stack names and stack files):
 * every bullet of the data-plane issue, per stack where the values differ.
 */
import { parse } from "yaml";
import { writeRecoverySeconds } from "../../infra/render/patroni";
import { PATRONI_ROLE_RULES } from "../../infra/render/patroni-rbac";
import type { RenderResult } from "../../infra/testing/render";
import { all, confLines, find, iniSection, Obj, patroniYaml, podSpec, podTemplate, workloads } from "./helpers";
import { renderTestStack, testStackConfigFile } from "../support/stack-identifiers";

const STACKS = ["local", "dev", "staging", "prod"] as const;
type Stack = (typeof STACKS)[number];
const r = {} as Record<Stack, RenderResult>;

beforeAll(async () => {
  for (const stack of STACKS) r[stack] = await renderTestStack(stack);
}, 180_000);

describe("Namespace", () => {
  it.each(STACKS)("%s: namespace knhk enforces Pod Security restricted", (stack) => {
    const ns = find(r[stack], "Namespace", "knhk");
    const labels = ns.metadata.labels as Record<string, string>;
    for (const mode of ["enforce", "audit", "warn"]) expect(labels[`pod-security.kubernetes.io/${mode}`]).toBe("restricted");
  });

  it("ResourceQuota and LimitRange, quota sized per stack", () => {
    expect(find(r.prod, "ResourceQuota", "knhk-quota").spec.hard).toMatchObject({ "requests.cpu": "16", "limits.memory": "96Gi", pods: "60" });
    expect(find(r.local, "ResourceQuota", "knhk-quota").spec.hard).toMatchObject({ "requests.cpu": "8", "requests.storage": "200Gi" });
    const limits = find(r.prod, "LimitRange", "knhk-limits").spec.limits[0];
    expect(limits).toMatchObject({ type: "Container", default: { cpu: "500m", memory: "512Mi" }, defaultRequest: { cpu: "100m", memory: "128Mi" } });
  });

  it.each(STACKS)("%s: default-deny for ingress and egress, with explicit allows", (stack) => {
    const deny = find(r[stack], "NetworkPolicy", "default-deny");
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    const names = all(r[stack], "NetworkPolicy").map((p) => p.metadata.name);
    expect(names).toEqual(expect.arrayContaining(["allow-dns", "allow-monitoring", "allow-app-to-postgres-ingress", "allow-app-to-redis-ingress", "allow-postgres-replication-ingress", "knhk-service"]));
    // Every allow names concrete peers or ports: nothing re-opens everything.
    for (const p of all(r[stack], "NetworkPolicy").filter((x) => x.metadata.name !== "default-deny")) {
      for (const rule of [...(p.spec.ingress ?? []), ...(p.spec.egress ?? [])]) {
        expect(rule.ports?.length ?? 0).toBeGreaterThan(0);
      }
    }
  });

  it("app -> Postgres: egress from the app pods and ingress at Postgres on 5432 only", () => {
    const ingress = find(r.prod, "NetworkPolicy", "allow-app-to-postgres-ingress").spec;
    expect(ingress.podSelector.matchLabels).toEqual({ "app.kubernetes.io/name": "postgres", "app.kubernetes.io/component": "database" });
    expect(ingress.ingress[0].from[0].podSelector.matchLabels).toEqual({ "app.kubernetes.io/name": "knhk", "app.kubernetes.io/component": "api" });
    expect(ingress.ingress[0].ports).toEqual([{ protocol: "TCP", port: 5432 }]);
  });
});

describe("PatroniCluster", () => {
  it.each([
    ["local", 2, "standard", "5Gi"],
    ["dev", 2, "knhk-encrypted", "20Gi"],
    ["staging", 3, "knhk-encrypted", "50Gi"],
    ["prod", 3, "knhk-encrypted", "100Gi"],
  ] as const)("%s: %i members on %s %s", (stack, members, storageClass, size) => {
    const sts = find(r[stack], "StatefulSet", "postgres");
    expect(sts.spec.replicas).toBe(members);
    const claim = sts.spec.volumeClaimTemplates[0].spec;
    expect(claim.storageClassName).toBe(storageClass);
    expect(claim.resources.requests.storage).toBe(size);
  });

  it("Kubernetes DCS: ServiceAccount, Role (ConfigMaps + pod labels) and RoleBinding", () => {
    const role = find(r.prod, "Role", "postgres");
    // Exactly the rules test/cluster/patroni-dcs.test.ts proves necessary and sufficient.
    expect(role.rules).toEqual(PATRONI_ROLE_RULES);
    const primary = find(r.prod, "Service", "postgres-primary");
    expect(primary.spec.selector).toBeUndefined();
    expect(primary.spec.ports).toEqual([{ name: "postgresql", port: 5432, protocol: "TCP", targetPort: 5432 }]);
    expect(find(r.prod, "Service", "postgres-primary-config").spec).toEqual({ clusterIP: "None" });
    const binding = find(r.prod, "RoleBinding", "postgres");
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "postgres", namespace: "knhk" }]);
    expect(podSpec(find(r.prod, "StatefulSet", "postgres")).serviceAccountName).toBe("postgres");
    expect(patroniYaml(r.prod).kubernetes).toMatchObject({ namespace: "knhk", use_endpoints: true, ports: [{ name: "postgresql", port: 5432 }] });
  });

  it("etcd DCS is selectable by config: no Role, etcd3 hosts in patroni.yml", async () => {
    const config = testStackConfigFile("prod");
    const patroni = { ...(config["knhk:patroni"] as object), dcs: { type: "etcd", hosts: ["etcd-0.etcd:2379", "etcd-1.etcd:2379"] } };
    const etcd = await renderTestStack("prod", { config: { ...config, "knhk:patroni": patroni } });
    expect(all(etcd, "Role").filter((x) => x.metadata.name === "postgres")).toHaveLength(0);
    expect(patroniYaml(etcd).etcd3).toEqual({ hosts: ["etcd-0.etcd:2379", "etcd-1.etcd:2379"] });
    expect(patroniYaml(etcd).kubernetes).toBeUndefined();
  }, 60_000);

  it.each(STACKS)("%s: RPO 0 and RTO < 30 s settings in patroni.yml", (stack) => {
    const dcs = patroniYaml(r[stack]).bootstrap.dcs;
    expect(dcs).toMatchObject({ synchronous_mode: true, synchronous_mode_strict: true, failsafe_mode: true });
    expect(dcs.postgresql.use_pg_rewind).toBe(true);
    expect(dcs.loop_wait + 2 * dcs.retry_timeout).toBeLessThanOrEqual(dcs.ttl);
    expect(writeRecoverySeconds({ ttl: dcs.ttl, loopWait: dcs.loop_wait })).toBeLessThan(30);
    expect(dcs.primary_start_timeout).toBeLessThan(300);
    expect(dcs.postgresql.parameters).toMatchObject({ archive_mode: "on", archive_timeout: 300, synchronous_commit: "on" });
    expect(dcs.postgresql.parameters.archive_command).toMatch(/^pgbackrest .*--stanza=knhk archive-push "%p"$/);
  });

  it.each(STACKS)("%s: postgres-primary is Patroni's leader Endpoints; postgres-replicas selects the follower label value", (stack) => {
    const yaml = patroniYaml(r[stack]);
    const k8sDcs = yaml.kubernetes;
    const roleLabel = k8sDcs.role_label;
    const pod = podTemplate(find(r[stack], "StatefulSet", "postgres"));
    const primary = find(r[stack], "Service", "postgres-primary");
    const replicas = find(r[stack], "Service", "postgres-replicas").spec.selector;
    // The leader lock is the Endpoints named after the scope: it must be the selectorless primary
    // Service, with the port Patroni writes into it.
    expect(yaml.scope).toBe(primary.metadata.name);
    expect(k8sDcs.use_endpoints).toBe(true);
    expect(primary.spec.selector).toBeUndefined();
    expect(k8sDcs.ports).toEqual([{ name: primary.spec.ports[0].name, port: primary.spec.ports[0].targetPort }]);
    const container = pod.spec.containers.find((c: { name: string }) => c.name === "patroni");
    expect(container.env).toContainEqual({ name: "PATRONI_KUBERNETES_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
    expect(replicas[roleLabel]).toBe(k8sDcs.follower_label_value);
    expect(k8sDcs.leader_label_value).toBe("primary");
    expect(k8sDcs.standby_leader_label_value).toBe(k8sDcs.leader_label_value);
    // Apart from the role, the selector matches the pods, and the pods carry the labels Patroni
    // selects its members by (kubernetes.labels + scope label = scope).
    for (const selector of [replicas]) {
      const { [roleLabel]: _role, ...rest } = selector;
      for (const [k, v] of Object.entries(rest)) expect(pod.metadata.labels[k]).toBe(v);
    }
    for (const [k, v] of Object.entries(k8sDcs.labels as Record<string, string>)) expect(pod.metadata.labels[k]).toBe(v);
    expect(pod.metadata.labels[k8sDcs.scope_label]).toBe(patroniYaml(r[stack]).scope);
    expect(pod.metadata.labels[roleLabel]).toBeUndefined();
    const headless = find(r[stack], "Service", "postgres").spec;
    expect(headless.clusterIP).toBe("None");
    expect(find(r[stack], "StatefulSet", "postgres").spec.serviceName).toBe("postgres");
  });

  it("postgres_exporter sidecar on 9187, TLS from a Secret, anti-affinity, PDB", () => {
    const sts = find(r.prod, "StatefulSet", "postgres");
    const spec = podSpec(sts);
    const exporter = spec.containers.find((c: Obj) => c.name === "postgres-exporter");
    expect(exporter.ports).toEqual([{ name: "metrics", containerPort: 9187, protocol: "TCP" }]);
    expect(spec.volumes.find((v: Obj) => v.name === "tls").secret.secretName).toBe("postgres-tls");
    const pg = patroniYaml(r.prod).postgresql;
    expect(pg.parameters).toMatchObject({ ssl: "on", ssl_cert_file: "/etc/patroni/tls/tls.crt" });
    expect(pg.pg_hba.filter((l: string) => l.startsWith("host "))).toEqual([]);
    expect(spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]).toMatchObject({
      topologyKey: "kubernetes.io/hostname",
      labelSelector: { matchLabels: sts.spec.selector.matchLabels },
    });
    expect(find(r.prod, "PodDisruptionBudget", "postgres").spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: sts.spec.selector.matchLabels } });
  });

  it.each(STACKS)("%s: pg_rewind's role has its password from the credentials Secret; readiness on Patroni's /health", (stack) => {
    const patroni = podSpec(find(r[stack], "StatefulSet", "postgres")).containers.find((c: Obj) => c.name === "patroni");
    const env = (name: string) => patroni.env.find((e: Obj) => e.name === name);
    expect(env("PATRONI_REWIND_PASSWORD")).toEqual({ name: "PATRONI_REWIND_PASSWORD", valueFrom: { secretKeyRef: { name: "postgres-credentials", key: "rewind-password" } } });
    const pg = patroniYaml(r[stack]).postgresql;
    expect(pg.authentication.rewind).toEqual({ username: "rewind_user" });
    expect(pg.pg_hba).toContain("hostssl postgres rewind_user 0.0.0.0/0 scram-sha-256");
    // /readiness and /primary stay 200 on a leader whose PostgreSQL crashed (test/system/patroni.test.ts).
    expect(patroni.readinessProbe.httpGet).toEqual({ path: "/health", port: "patroni", scheme: "HTTPS" });
  });

  it.each(STACKS)("%s: pgbackrest_exporter sidecar on 9854 reads the repository the members archive to", (stack) => {
    const spec = podSpec(find(r[stack], "StatefulSet", "postgres"));
    const exporter = spec.containers.find((c: Obj) => c.name === "pgbackrest-exporter");
    const pgbackrest = spec.containers.find((c: Obj) => c.name === "pgbackrest");
    expect(exporter.image).toBe("docker.io/woblerr/pgbackrest_exporter:v0.22.0");
    expect(exporter.ports).toEqual([{ name: "pgbackrest-exp", containerPort: 9854, protocol: "TCP" }]);
    expect(exporter.args).toEqual(expect.arrayContaining(["--web.listen-address=:9854", "--backrest.stanza-include=knhk"]));
    expect(exporter.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 999,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(exporter.resources).toEqual({ requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "500m", memory: "256Mi" } });
    for (const probe of [exporter.livenessProbe, exporter.readinessProbe]) {
      expect(probe.httpGet).toEqual({ path: "/metrics", port: "pgbackrest-exp", scheme: "HTTP" });
    }
    // The same pgbackrest.conf (from the same volume), cipher passphrase and repository as archive-push.
    const configArg = exporter.args.find((a: string) => a.startsWith("--backrest.config="));
    const configMount = exporter.volumeMounts.find((m: Obj) => m.name === "pgbackrest-config");
    expect(configArg).toBe(`--backrest.config=${configMount.mountPath}/pgbackrest.conf`);
    // The image keeps its binary in /etc/pgbackrest: mounting the config there would hide it.
    expect(configMount.mountPath).not.toBe("/etc/pgbackrest");
    expect(exporter.command).toEqual(["/etc/pgbackrest/pgbackrest_exporter"]);
    expect(exporter.env).toEqual(pgbackrest.env);
    expect(exporter.env.map((e: Obj) => e.name)).toContain("PGBACKREST_REPO1_CIPHER_PASS");
    const repoMounts = (c: Obj) => c.volumeMounts.filter((m: Obj) => m.name === "pgbackrest-repo").map((m: Obj) => m.mountPath);
    expect(repoMounts(exporter)).toEqual(repoMounts(pgbackrest));
    expect(repoMounts(exporter)).toEqual(stack === "local" ? ["/var/lib/pgbackrest"] : []);
    // Prometheus may reach it.
    const monitoring = find(r[stack], "NetworkPolicy", "allow-monitoring").spec.ingress[0].ports;
    expect(monitoring).toContainEqual({ protocol: "TCP", port: 9854 });
  });

  it("local: the exporter reads the posix repository volume read-only", () => {
    const spec = podSpec(find(r.local, "StatefulSet", "postgres"));
    const exporter = spec.containers.find((c: Obj) => c.name === "pgbackrest-exporter");
    expect(exporter.volumeMounts.find((m: Obj) => m.name === "pgbackrest-repo")).toEqual({ name: "pgbackrest-repo", mountPath: "/var/lib/pgbackrest", readOnly: true });
  });

  it("pgBackRest: full Sunday 02:00 UTC, incremental daily 02:00 UTC, monthly restore test of the receipts table", () => {
    const full = find(r.prod, "CronJob", "pgbackrest-full");
    const incr = find(r.prod, "CronJob", "pgbackrest-incr");
    const restore = find(r.prod, "CronJob", "pgbackrest-restore-test");
    expect([full.spec.schedule, full.spec.timeZone]).toEqual(["0 2 * * 0", "Etc/UTC"]);
    expect([incr.spec.schedule, incr.spec.timeZone]).toEqual(["0 2 * * 1-6", "Etc/UTC"]);
    expect(restore.spec.schedule).toMatch(/^\S+ \S+ \d+ \* \*$/);
    for (const job of [full, incr, restore]) expect(job.spec.concurrencyPolicy).toBe("Forbid");
    const scripts = find(r.prod, "ConfigMap", "pgbackrest").data;
    expect(scripts["backup-full.sh"]).toMatch(/--type=full backup/);
    expect(scripts["backup-incr.sh"]).toMatch(/--type=incr backup/);
    expect(scripts["restore-test.sh"]).toMatch(/restore/);
    expect(scripts["restore-test.sh"]).toMatch(/SELECT count\(\*\) FROM receipts/);
    expect(podSpec(restore).volumes.find((v: Obj) => v.name === "scratch").ephemeral.volumeClaimTemplate.spec.resources.requests.storage).toBe("100Gi");
  });

  it("pgbackrest.conf: S3 (web identity) in prod, posix on a shared volume in local; always encrypted", () => {
    const prod = iniSection(find(r.prod, "ConfigMap", "postgres-patroni").data["pgbackrest.conf"], "global");
    expect(prod).toMatchObject({ "repo1-type": "s3", "repo1-s3-region": "eu-central-1", "repo1-s3-key-type": "web-id", "repo1-cipher-type": "aes-256-cbc" });
    // The bucket is the compliance archive's backup bucket (AWS on), else knhk:patroni.backup.repo.bucket.
    expect(prod["repo1-s3-bucket"]).toMatch(/^knhk-prod-[a-z-]+$/);
    expect(prod["repo1-cipher-pass"]).toBeUndefined();
    const local = iniSection(find(r.local, "ConfigMap", "postgres-patroni").data["pgbackrest.conf"], "global");
    expect(local).toMatchObject({ "repo1-type": "posix", "repo1-path": "/var/lib/pgbackrest", "repo1-cipher-type": "aes-256-cbc" });
    expect(find(r.local, "PersistentVolumeClaim", "pgbackrest-repo").spec.accessModes).toEqual(["ReadWriteMany"]);
    expect(all(r.prod, "PersistentVolumeClaim")).toHaveLength(0);
    // The backup jobs reach every member's pgBackRest TLS server; pgBackRest picks the primary.
    const repoHost = iniSection(find(r.prod, "ConfigMap", "pgbackrest").data["pgbackrest.conf"], "knhk");
    expect([repoHost["pg1-host"], repoHost["pg3-host"], repoHost["pg1-host-type"]]).toEqual([
      "postgres-0.postgres.knhk.svc.cluster.local",
      "postgres-2.postgres.knhk.svc.cluster.local",
      "tls",
    ]);
  });
});

describe("RedisCluster", () => {
  it.each(STACKS)("%s: primary + replica, 3 Sentinels, exporter on 9121, PDBs", (stack) => {
    const redis = find(r[stack], "StatefulSet", "redis");
    expect(redis.spec.replicas).toBe(2);
    expect(find(r[stack], "StatefulSet", "redis-sentinel").spec.replicas).toBe(3);
    const exporter = podSpec(redis).containers.find((c: Obj) => c.name === "redis-exporter");
    expect(exporter.ports[0].containerPort).toBe(9121);
    expect(find(r[stack], "PodDisruptionBudget", "redis").spec.maxUnavailable).toBe(1);
    expect(find(r[stack], "PodDisruptionBudget", "redis-sentinel").spec.minAvailable).toBe(2);
  });

  it("redis.conf: AOF everysec, maxmemory + eviction policy from config; sentinel.conf quorum 2", () => {
    const data = find(r.prod, "ConfigMap", "redis").data;
    expect(confLines(data["redis.conf"])).toMatchObject({ appendonly: "yes", appendfsync: "everysec", maxmemory: "256mb", "maxmemory-policy": "allkeys-lru", "min-replicas-to-write": "1", "min-replicas-max-lag": "3" });
    expect(data["sentinel.conf"]).toMatch(/^sentinel monitor knhk redis-0\.redis\.knhk\.svc\.cluster\.local 6379 2$/m);
    expect(find(r.local, "StatefulSet", "redis").spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe("1Gi");
  });

  it("maxmemory and the policy follow the stack config", async () => {
    const config = testStackConfigFile("prod");
    const redis = { ...(config["knhk:redis"] as object), maxmemory: "1gb", maxmemoryPolicy: "volatile-lfu" };
    const out = await renderTestStack("prod", { config: { ...config, "knhk:redis": redis } });
    expect(confLines(find(out, "ConfigMap", "redis").data["redis.conf"])).toMatchObject({ maxmemory: "1gb", "maxmemory-policy": "volatile-lfu" });
  }, 60_000);
});

describe("KnhkService", () => {
  it.each(STACKS)("%s: ServiceAccount, ConfigMap, blue/green Deployments and Services", (stack) => {
    expect(find(r[stack], "ServiceAccount", "knhk-service")).toBeDefined();
    for (const color of ["blue", "green"]) {
      const d = find(r[stack], "Deployment", `knhk-${color}`);
      expect(d.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
      expect(podSpec(d).serviceAccountName).toBe("knhk-service");
      expect(find(r[stack], "Service", `knhk-${color}`).spec.selector["app.kubernetes.io/color"]).toBe(color);
    }
    expect(find(r[stack], "Service", "knhk-service").spec.ports.map((p: Obj) => p.port)).toEqual([8080, 9090]);
  });

  it("ConfigMap knhk-config: seed values, overridable per stack; prod's pool from the connection budget", () => {
    expect(find(r.prod, "ConfigMap", "knhk-config").data).toMatchObject({
      DB_POOL_MAX_CONNECTIONS: "8",
      DB_POOL_MIN_CONNECTIONS: "2",
      PATTERN_WINDOW_SECONDS: "60",
      VALIDATION_TIMEOUT_MS: "100",
    });
    expect(find(r.dev, "ConfigMap", "knhk-config").data).toMatchObject({ DB_POOL_MAX_CONNECTIONS: "20", DB_POOL_MIN_CONNECTIONS: "2" });
    expect(find(r.prod, "ConfigMap", "knhk-config").data.REDIS_SENTINELS.split(",")).toHaveLength(3);
  });

  it("image version per colour, Service knhk-service selecting knhk:app.activeColor", async () => {
    const config = testStackConfigFile("prod");
    const app = { ...(config["knhk:app"] as object), versions: { blue: "1.3.0", green: `sha256:${"b".repeat(64)}` }, activeColor: "green" };
    const out = await renderTestStack("prod", { config: { ...config, "knhk:app": app } });
    expect(podSpec(find(out, "Deployment", "knhk-blue")).containers[0].image).toBe("ghcr.io/knhk/knhk:1.3.0");
    expect(podSpec(find(out, "Deployment", "knhk-green")).containers[0].image).toBe(`ghcr.io/knhk/knhk@sha256:${"b".repeat(64)}`);
    expect(find(out, "Service", "knhk-service").spec.selector["app.kubernetes.io/color"]).toBe("green");
    expect(find(r.prod, "Service", "knhk-service").spec.selector["app.kubernetes.io/color"]).toBe("blue");
  }, 60_000);

  it.each(STACKS)("%s: ports, probes, security context", (stack) => {
    const c = podSpec(find(r[stack], "Deployment", "knhk-blue")).containers[0];
    // staging and prod serve HTTPS (knhk:app.tls), so the kubelet probes with HTTPS.
    const scheme = stack === "staging" || stack === "prod" ? "HTTPS" : "HTTP";
    expect(c.ports.map((p: Obj) => p.containerPort)).toEqual([8080, 9090]);
    expect(c.livenessProbe).toEqual({ httpGet: { path: "/health", port: "http", scheme }, initialDelaySeconds: 30, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 });
    expect(c.readinessProbe).toEqual({ httpGet: { path: "/ready", port: "http", scheme }, initialDelaySeconds: 10, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2 });
    expect(c.startupProbe).toEqual({ httpGet: { path: "/health", port: "http", scheme }, initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 30 });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  });

  it.each([
    ["local", { cpu: "250m", memory: "256Mi" }, { cpu: "1000m", memory: "1Gi" }],
    ["prod", { cpu: "500m", memory: "512Mi" }, { cpu: "2000m", memory: "2Gi" }],
  ] as const)("%s: resources", (stack, requests, limits) => {
    expect(podSpec(find(r[stack], "Deployment", "knhk-green")).containers[0].resources).toEqual({ requests, limits });
  });

  it("Vault Agent renders the database URL file the service follows (stacks with Vault); none in local", () => {
    const annotations = podTemplate(find(r.prod, "Deployment", "knhk-blue")).metadata.annotations;
    expect(annotations["vault.hashicorp.com/agent-inject"]).toBe("true");
    expect(annotations["vault.hashicorp.com/role"]).toBe("knhk-service");
    expect(annotations["vault.hashicorp.com/agent-pre-populate-only"]).toBeUndefined();
    expect(annotations["vault.hashicorp.com/agent-inject-template-database-url"]).toMatch(
      /^\{\{- with secret "database\/creds\/knhk-app" -\}\}\npostgresql:\/\/.*@postgres-primary\.knhk\.svc\.cluster\.local:5432\/knhk\?sslmode=verify-full&sslrootcert=/,
    );
    const container = podSpec(find(r.prod, "Deployment", "knhk-blue")).containers[0];
    expect(container.command).toEqual(["node", "dist/app/src/main.js"]);
    expect(container.env).toEqual(expect.arrayContaining([
      { name: "DATABASE_URL_FILE", value: "/vault/secrets/database-url" },
      { name: "KNHK_MIGRATE_ON_START", value: "false" },
      { name: "KNHK_ACTIVE_COLOR_FILE", value: "/etc/knhk/active-color/color" },
    ]));
    const local = podTemplate(find(r.local, "Deployment", "knhk-blue")).metadata.annotations;
    expect(Object.keys(local).filter((k) => k.startsWith("vault.hashicorp.com"))).toEqual([]);
    expect(find(r.local, "ConfigMap", "knhk-config").data.KNHK_EMBEDDED_DATA_DIR).toBe("/var/lib/knhk");
  });

  it("Prometheus annotations on the metrics port", () => {
    expect(podTemplate(find(r.prod, "Deployment", "knhk-blue")).metadata.annotations).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": "9090" });
  });

  it.each([
    ["local", 1, 2],
    ["dev", 2, 4],
    ["staging", 3, 10],
    ["prod", 3, 10],
  ] as const)("%s: HPA %i-%i on CPU 70%% / memory 80%% with the seed behaviour", (stack, min, max) => {
    for (const color of ["blue", "green"]) {
      const hpa = find(r[stack], "HorizontalPodAutoscaler", `knhk-${color}`).spec;
      expect([hpa.minReplicas, hpa.maxReplicas]).toEqual([min, max]);
      expect(hpa.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: `knhk-${color}` });
      expect(hpa.metrics.map((m: Obj) => [m.resource.name, m.resource.target.averageUtilization])).toEqual([["cpu", 70], ["memory", 80]]);
      expect(hpa.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
      expect(hpa.behavior.scaleUp.policies).toEqual([
        { type: "Percent", value: 100, periodSeconds: 30 },
        { type: "Pods", value: 2, periodSeconds: 60 },
      ]);
    }
  });

  it("PDB and NetworkPolicy of the service pods", () => {
    expect(find(r.prod, "PodDisruptionBudget", "knhk-blue").spec.maxUnavailable).toBe(1);
    const np = find(r.prod, "NetworkPolicy", "knhk-service").spec;
    expect(np.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(np.ingress.map((i: Obj) => i.ports[0].port)).toEqual([8080, 9090]);
    expect(np.egress.flatMap((e: Obj) => e.ports.map((p: Obj) => p.port))).toEqual(expect.arrayContaining([5432, 6379, 26379, 53]));
  });
});

describe("every container in every stack", () => {
  it.each(STACKS)("%s: requests and limits, probes, runAsNonRoot, pinned image, read-only root", (stack) => {
    const problems: string[] = [];
    for (const w of workloads(r[stack])) {
      const spec = podSpec(w);
      if (spec.securityContext?.runAsNonRoot !== true) problems.push(`${w.kind}/${w.metadata.name}: pod runAsNonRoot`);
      const isJob = w.kind === "CronJob" || w.kind === "Job";
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        const id = `${w.kind}/${w.metadata.name}/${c.name}`;
        const isInit = (spec.initContainers ?? []).includes(c);
        if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory || !c.resources?.limits?.cpu || !c.resources?.limits?.memory) problems.push(`${id}: requests/limits`);
        if (!isInit && !isJob && (!c.livenessProbe || !c.readinessProbe)) problems.push(`${id}: probes`);
        if (c.securityContext?.runAsNonRoot !== true) problems.push(`${id}: runAsNonRoot`);
        if (c.securityContext?.readOnlyRootFilesystem !== true) problems.push(`${id}: readOnlyRootFilesystem`);
        if (c.securityContext?.allowPrivilegeEscalation !== false) problems.push(`${id}: allowPrivilegeEscalation`);
        if (JSON.stringify(c.securityContext?.capabilities?.drop) !== '["ALL"]') problems.push(`${id}: capabilities`);
        if (!/(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[a-f0-9]{64})$/.test(c.image) || /:latest$/i.test(c.image)) problems.push(`${id}: image ${c.image}`);
      }
    }
    expect(problems).toEqual([]);
    expect(workloads(r[stack]).length).toBeGreaterThanOrEqual(7);
  });
});

describe("resource tree", () => {
  it.each(STACKS)("%s: every Kubernetes resource is a child of a knhk component, named <component>-<part>", (stack) => {
    const byUrn = new Map(r[stack].resources.map((x) => [x.urn, x]));
    for (const res of r[stack].resources.filter((x) => x.type.startsWith("kubernetes:"))) {
      const parent = byUrn.get(res.parent ?? "");
      expect(parent?.type).toMatch(/^knhk:/);
      expect(res.name.startsWith(`${parent!.name}-`)).toBe(true);
    }
    const stackRes = r[stack].resources.filter((x) => x.parent === null);
    expect(stackRes.map((x) => x.type)).toEqual(["pulumi:pulumi:Stack"]);
  });

  it("component type tokens", () => {
    const types = new Set(r.prod.resources.map((x) => x.type));
    for (const t of ["knhk:kubernetes:Namespace", "knhk:database:PatroniCluster", "knhk:cache:RedisCluster", "knhk:app:KnhkService"]) expect(types.has(t)).toBe(true);
  });

  it("local targets the local control plane's kubeconfig; the cloud stacks target their cluster context", () => {
    const provider = (stack: Stack) => r[stack].resources.find((x) => x.type === "pulumi:providers:kubernetes")!.inputs;
    expect(provider("local")).toMatchObject({ kubeconfig: ".tools/local-cluster/admin.kubeconfig", context: "knhk-local" });
    expect(provider("local").renderYamlToDirectory).toBeUndefined();
    expect(provider("prod")).toMatchObject({ context: "knhk-prod" });
    expect(provider("prod").renderYamlToDirectory).toBeUndefined();
  });

  it("the patroni.yml in the ConfigMap parses as YAML 1.1 the same as 1.2 (no bare on/off/yes/no)", () => {
    const text = find(r.prod, "ConfigMap", "postgres-patroni").data["patroni.yml"];
    expect(parse(text, { version: "1.1" })).toEqual(parse(text, { version: "1.2" }));
  });
});

describe("the API certificate (knhk:app.tls)", () => {
  it.each(["staging", "prod"] as const)("%s: the Secret's two files mounted where the ConfigMap points, group-readable only", (stack) => {
    const spec = podSpec(find(r[stack], "Deployment", "knhk-green"));
    const data = find(r[stack], "ConfigMap", "knhk-config").data;
    expect({ cert: data.KNHK_TLS_CERT_FILE, key: data.KNHK_TLS_KEY_FILE }).toEqual({ cert: "/etc/knhk/tls/tls.crt", key: "/etc/knhk/tls/tls.key" });
    expect(spec.volumes.find((v: Obj) => v.name === "api-tls")).toEqual({
      name: "api-tls",
      secret: { secretName: "knhk-tls", defaultMode: 0o440, items: [{ key: "tls.crt", path: "tls.crt" }, { key: "tls.key", path: "tls.key" }] },
    });
    expect(spec.containers[0].volumeMounts).toContainEqual({ name: "api-tls", mountPath: "/etc/knhk/tls", readOnly: true });
  });

  it.each(["local", "dev"] as const)("%s: no certificate, plain HTTP", (stack) => {
    const spec = podSpec(find(r[stack], "Deployment", "knhk-green"));
    expect(find(r[stack], "ConfigMap", "knhk-config").data.KNHK_TLS_CERT_FILE).toBeUndefined();
    expect(spec.volumes.map((v: Obj) => v.name)).not.toContain("api-tls");
  });
});
