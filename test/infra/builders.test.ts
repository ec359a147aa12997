/** The pure document builders (infra/render), without Pulumi. The real tools run them in test/system. */
/* eslint-disable @typescript-eslint/no-explicit-any */
import {
  buildPatroniConfig,
  buildPostBootstrapScript,
  checkTiming,
  PatroniYamlInput,
  renderPatroniYaml,
  STRICT_SYNC_STANDBY_WAIT_SECONDS,
  writeRecoverySeconds,
} from "../../infra/render/patroni";
import { archiveCommands, buildPgbackrestConf, renderIni, restoreTestScript } from "../../infra/render/pgbackrest";
import { redisInitScript, renderRedisConf, renderSentinelConf, sentinelInitScript } from "../../infra/render/redis";
import { databaseUrlTemplate, vaultAgentAnnotations } from "../../infra/render/vault-agent";
import { parse } from "yaml";

const base: PatroniYamlInput = {
  scope: "postgres",
  dcs: { type: "etcd3", hosts: ["127.0.0.1:2379"] },
  timing: { ttl: 20, loopWait: 4, retryTimeout: 5, primaryStartTimeout: 10, maximumLagOnFailover: 1048576 },
  restApi: { listen: "0.0.0.0:8008" },
  postgresql: {
    listen: "0.0.0.0:5432",
    dataDir: "/data",
    binDir: "/usr/lib/postgresql/15/bin",
    socketDir: "/run/pg",
    pgpassFile: "/tmp/pgpass",
    superuser: "postgres",
    replicationUser: "replicator",
    rewindUser: "rewind_user",
    parameters: {},
    allowedCidrs: ["10.0.0.0/8"],
  },
  archive: { command: "/bin/true", timeoutSeconds: 300 },
};

describe("patroni.yml", () => {
  it("rejects timing that breaks loop_wait + 2*retry_timeout <= ttl", () => {
    expect(() => buildPatroniConfig({ ...base, timing: { ...base.timing, loopWait: 10, retryTimeout: 10 } })).toThrow(/loop_wait \+ 2\*retry_timeout \(30\) exceeds ttl \(20\)/);
    expect(checkTiming({ ...base.timing, ttl: 30, loopWait: 10, retryTimeout: 10 }, 30)).toEqual(["ttl + loop_wait + 5 s strict-sync standby wait (45) is not below the RTO of 30 s"]);
    expect(checkTiming(base.timing, 30)).toEqual([]);
  });

  it("the RTO counts the strict-sync wait for a standby before the first commit after promotion", () => {
    expect(STRICT_SYNC_STANDBY_WAIT_SECONDS).toBe(5);
    expect(writeRecoverySeconds({ ttl: 20, loopWait: 4 })).toBe(29);
    // 20 + 5 = 25 s of detection looked fine; with the wait the first commit comes at 30 s.
    expect(checkTiming({ ...base.timing, loopWait: 5 }, 30)).toEqual(["ttl + loop_wait + 5 s strict-sync standby wait (30) is not below the RTO of 30 s"]);
  });

  it("pg_rewind has its own role, allowed by pg_hba; it may not be the superuser", () => {
    const doc = buildPatroniConfig(base) as any;
    expect(doc.postgresql.authentication.rewind).toEqual({ username: "rewind_user" });
    expect(doc.postgresql.pg_hba).toContain("host postgres rewind_user 10.0.0.0/8 scram-sha-256");
    expect(() => buildPatroniConfig({ ...base, postgresql: { ...base.postgresql, rewindUser: "postgres" } })).toThrow(/must differ/);
    expect(() => buildPatroniConfig({ ...base, postgresql: { ...base.postgresql, rewindUser: "Rewind" } })).toThrow(/rewindUser "Rewind"/);
  });

  it("TLS switches pg_hba to hostssl and turns ssl on; without TLS plain host lines", () => {
    const plain = buildPatroniConfig(base) as any;
    expect(plain.postgresql.pg_hba).toEqual([
      "local all postgres peer",
      "host replication replicator 10.0.0.0/8 scram-sha-256",
      "host postgres rewind_user 10.0.0.0/8 scram-sha-256",
      "host all all 10.0.0.0/8 scram-sha-256",
    ]);
    expect(plain.postgresql.parameters.ssl).toBeUndefined();
    const tls = { certFile: "/tls/tls.crt", keyFile: "/tls/tls.key", caFile: "/tls/ca.crt" };
    const withTls = buildPatroniConfig({ ...base, postgresql: { ...base.postgresql, tls } }) as any;
    expect(withTls.postgresql.pg_hba.slice(1).every((l: string) => l.startsWith("hostssl "))).toBe(true);
    expect(withTls.postgresql.parameters).toMatchObject({ ssl: "on", ssl_min_protocol_version: "TLSv1.3" });
  });

  it("kubernetes DCS: endpoints mode with the primary Service's port, explicit role label values; etcd3 the hosts", () => {
    const k8s = buildPatroniConfig({
      ...base,
      dcs: { type: "kubernetes", namespace: "knhk", labels: { app: "pg" }, scopeLabel: "cluster-name", roles: { roleLabel: "role", leaderValue: "primary", followerValue: "replica" }, primaryPort: { name: "postgresql", port: 5432 } },
    }) as any;
    expect(k8s.kubernetes).toEqual({
      namespace: "knhk",
      labels: { app: "pg" },
      scope_label: "cluster-name",
      role_label: "role",
      leader_label_value: "primary",
      follower_label_value: "replica",
      standby_leader_label_value: "primary",
      use_endpoints: true,
      ports: [{ name: "postgresql", port: 5432 }],
    });
    expect((buildPatroniConfig(base) as any).etcd3).toEqual({ hosts: ["127.0.0.1:2379"] });
  });

  it("pgBackRest replica creation is listed before pg_basebackup when configured", () => {
    const cfg = buildPatroniConfig({ ...base, pgbackrestReplicaCommand: "pgbackrest --stanza=knhk --delta restore" }) as any;
    expect(cfg.postgresql.create_replica_methods).toEqual(["pgbackrest", "basebackup"]);
    expect(cfg.postgresql.pgbackrest).toEqual({ command: "pgbackrest --stanza=knhk --delta restore", keep_data: true, no_params: true });
  });

  it("renders YAML that reads the same in YAML 1.1 (PyYAML)", () => {
    const text = renderPatroniYaml(base);
    expect(parse(text, { version: "1.1" })).toEqual(buildPatroniConfig(base));
  });

  it("post-bootstrap script refuses identifiers that would need quoting", () => {
    const roles = { service: "knhk_service", owner: "knhk_owner", vaultAdmin: "vault_admin", vaultAdminPasswordEnv: "VAULT_ADMIN_PASSWORD" };
    expect(buildPostBootstrapScript({ database: "knhk", exporterUser: "postgres_exporter", exporterPasswordEnv: "EXPORTER_PASSWORD", roles })).toMatch(/CREATE DATABASE knhk OWNER knhk_owner;/);
    expect(() => buildPostBootstrapScript({ database: "knhk; DROP", exporterUser: "x", exporterPasswordEnv: "P", roles })).toThrow(/database "knhk; DROP"/);
    expect(() => buildPostBootstrapScript({ database: "knhk", exporterUser: "x", exporterPasswordEnv: "p w", roles })).toThrow(/exporterPasswordEnv/);
    expect(() => buildPostBootstrapScript({ database: "knhk", exporterUser: "x", exporterPasswordEnv: "P", roles: { ...roles, vaultAdmin: "knhk_owner" } })).toThrow(/four different roles/);
  });
});

describe("pgbackrest.conf", () => {
  const common = { stanza: "knhk", retentionFull: 4, encrypt: true, logPath: "/log", lockPath: "/lock" };
  it("s3: bucket, region, default endpoint, key type", () => {
    const doc = buildPgbackrestConf({ ...common, repo: { type: "s3", bucket: "b", region: "eu-central-1", path: "/pgbackrest", keyType: "web-id" }, pg: { kind: "local", path: "/data", port: 5432, socketPath: "/run" } });
    expect(doc.global).toMatchObject({ "repo1-type": "s3", "repo1-s3-bucket": "b", "repo1-s3-endpoint": "s3.eu-central-1.amazonaws.com", "repo1-s3-key-type": "web-id", "repo1-cipher-type": "aes-256-cbc", "repo1-retention-full": "4" });
    expect(doc.knhk).toEqual({ "pg1-path": "/data", "pg1-port": "5432", "pg1-socket-path": "/run" });
  });
  it("remote: one pgN-host per member over TLS", () => {
    const tls = { certFile: "/c", keyFile: "/k", caFile: "/ca" };
    const doc = buildPgbackrestConf({ ...common, repo: { type: "posix", path: "/repo" }, pg: { kind: "remote", hosts: ["a", "b"], path: "/data", port: 5432, socketPath: "/run", tlsPort: 8432, tls } });
    expect(doc.knhk).toMatchObject({ "pg1-host": "a", "pg2-host": "b", "pg2-host-type": "tls", "pg2-host-port": "8432", "pg2-host-cert-file": "/c" });
    expect(doc.global["repo1-s3-bucket"]).toBeUndefined();
  });
  it("rejects a bad stanza, retention, or no members", () => {
    const repo = { type: "posix" as const, path: "/r" };
    const pg = { kind: "local" as const, path: "/d", port: 1, socketPath: "/s" };
    expect(() => buildPgbackrestConf({ ...common, stanza: "a b", repo, pg })).toThrow(/stanza "a b"/);
    expect(() => buildPgbackrestConf({ ...common, retentionFull: 0, repo, pg })).toThrow(/retentionFull 0/);
    expect(() => buildPgbackrestConf({ ...common, repo, pg: { kind: "remote", hosts: [], path: "/d", port: 1, socketPath: "/s", tlsPort: 1, tls: { certFile: "", keyFile: "", caFile: "" } } })).toThrow(/at least one member/);
    expect(() => restoreTestScript({ stanza: "knhk", configFile: "/c", scratchDir: "/s", binDir: "/b", port: 1, socketDir: "/t", database: "knhk", table: "receipts; --" })).toThrow(/table/);
  });
  it("ini rendering and archive commands", () => {
    expect(renderIni({ global: { a: "1" }, knhk: { b: "2" } })).toBe("[global]\na=1\n\n[knhk]\nb=2\n");
    expect(archiveCommands("knhk", "/etc/pgbackrest/pgbackrest.conf")).toEqual({
      archive: 'pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=knhk archive-push "%p"',
      restore: 'pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=knhk archive-get %f "%p"',
    });
  });
});

describe("redis.conf / sentinel.conf", () => {
  const writeSafety = { minReplicasToWrite: 1, minReplicasMaxLag: 3 };
  it("redis.conf: AOF everysec, maxmemory, policy; replicaof only when given", () => {
    const conf = renderRedisConf({ bind: ["0.0.0.0"], port: 6379, dir: "/data", maxmemory: "256mb", maxmemoryPolicy: "allkeys-lru", ...writeSafety });
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^min-replicas-to-write 1$/m);
    expect(conf).toMatch(/^min-replicas-max-lag 3$/m);
    expect(conf).toMatch(/^appendfsync everysec$/m);
    expect(conf).toMatch(/^maxmemory 256mb$/m);
    expect(conf).toMatch(/^maxmemory-policy allkeys-lru$/m);
    expect(conf).not.toMatch(/^replicaof/m);
    expect(renderRedisConf({ bind: ["::"], port: 1, dir: "/my data", maxmemory: "1gb", maxmemoryPolicy: "noeviction", replicaOf: { host: "p", port: 2 }, ...writeSafety })).toMatch(/^dir "\/my data"$[\s\S]*^replicaof p 2$/m);
    expect(() => renderRedisConf({ bind: ["x"], port: 1, dir: "/d", maxmemory: "256MB", maxmemoryPolicy: "noeviction", ...writeSafety })).toThrow(/maxmemory "256MB"/);
    expect(() => renderRedisConf({ bind: ["x"], port: 1, dir: "/d", maxmemory: "1mb", maxmemoryPolicy: "noeviction", minReplicasToWrite: 0, minReplicasMaxLag: 3 })).toThrow(/minReplicasToWrite 0/);
  });
  it("sentinel.conf: monitor with quorum and timeouts, hostnames on", () => {
    const conf = renderSentinelConf({ bind: ["0.0.0.0"], port: 26379, dir: "/tmp", masterName: "knhk", master: { host: "redis-0.redis", port: 6379 }, quorum: 2, downAfterMilliseconds: 5000, failoverTimeout: 60000 });
    expect(conf).toMatch(/^sentinel monitor knhk redis-0\.redis 6379 2$/m);
    expect(conf).toMatch(/^sentinel down-after-milliseconds knhk 5000$/m);
    expect(conf).toMatch(/^sentinel resolve-hostnames yes$/m);
    expect(() => renderSentinelConf({ bind: ["x"], port: 1, dir: "/d", masterName: "a b", master: { host: "h", port: 1 }, quorum: 2, downAfterMilliseconds: 1, failoverTimeout: 1 })).toThrow(/masterName/);
  });
  it("init scripts refuse names that would break the shell", () => {
    const t = { redisDomain: "redis.knhk.svc", sentinelHost: "s", masterName: "knhk", initialPrimary: "redis-0", port: 6379, sentinelPort: 26379 };
    expect(redisInitScript(t, "/a", "/b")).toMatch(/PRIMARY=redis-0\.redis\.knhk\.svc/);
    expect(() => redisInitScript({ ...t, sentinelHost: "$(reboot)" }, "/a", "/b")).toThrow(/sentinelHost/);
    expect(() => sentinelInitScript(t, "a;b", "/a", "/b")).toThrow(/sentinelDomain/);
  });
});

describe("Vault Agent annotations", () => {
  const target = { host: "postgres-primary.knhk.svc.cluster.local", port: 5432, name: "knhk", caFile: "/etc/knhk/postgres-ca/ca.crt" };
  it("render one verify-full URL with the mounted CA from dynamic credentials", () => {
    expect(databaseUrlTemplate("database/creds/knhk-app", target)).toBe(
      [
        '{{- with secret "database/creds/knhk-app" -}}',
        "postgresql://{{ .Data.username | urlquery }}:{{ .Data.password | urlquery }}@postgres-primary.knhk.svc.cluster.local:5432/knhk?sslmode=verify-full&sslrootcert=%2Fetc%2Fknhk%2Fpostgres-ca%2Fca.crt",
        "{{- end }}",
      ].join("\n"),
    );
    expect(() => databaseUrlTemplate('x" }}', target)).toThrow(/credsPath/);
    expect(() => databaseUrlTemplate("database/creds/knhk-app", { ...target, host: "a b" })).toThrow(/host/);
    expect(() => databaseUrlTemplate("database/creds/knhk-app", { ...target, caFile: "ca.crt" })).toThrow(/caFile/);
  });
  it("name each rendered file by its path; a Job renders once, a proxy only when asked", () => {
    const files = { "/vault/secrets/database-url": databaseUrlTemplate("database/creds/knhk-app", target) };
    const a = vaultAgentAnnotations({ role: "knhk-service", files, apiProxy: true });
    expect(a).toMatchObject({
      "vault.hashicorp.com/agent-inject": "true",
      "vault.hashicorp.com/role": "knhk-service",
      "vault.hashicorp.com/agent-inject-secret-database-url": "database/creds/knhk-app",
      "vault.hashicorp.com/agent-cache-use-auto-auth-token": "force",
    });
    expect(a["vault.hashicorp.com/agent-pre-populate-only"]).toBeUndefined();
    const job = vaultAgentAnnotations({ role: "knhk-migrate", files, initOnly: true });
    expect(job["vault.hashicorp.com/agent-pre-populate-only"]).toBe("true");
    expect(job["vault.hashicorp.com/agent-cache-enable"]).toBeUndefined();
    expect(() => vaultAgentAnnotations({ role: "r", files: { "/etc/x": files["/vault/secrets/database-url"] } })).toThrow(/directly under \/vault\/secrets/);
    expect(() => vaultAgentAnnotations({ role: "r", files: {} })).toThrow(/no file/);
  });
});
