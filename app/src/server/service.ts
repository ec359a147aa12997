import { hostname } from "node:os";
import type { AddressInfo } from "node:net";
import { createTokenVerifier } from "../auth/verifier";
import { describeConfig, loadConfig, type Config } from "../config";
import { openDatabase } from "../db/open";
import { migrate } from "../db/migrate";
import { describeSchemaStatus, schemaStatus } from "../db/schema-status";
import type { Database } from "../db/types";
import { createDomain, type Domain } from "../domain";
import { createKernel } from "../hotpath";
import { checkpointIfDue, latestCheckpoint } from "../receipts/tlog/checkpoints";
import { proveConsistency, proveReceipt, readTileByPath } from "../receipts/tlog/log";
import { createTreeFollower } from "../receipts/tlog/follower";
import { createLedger, loadSigner, SIGNING_KEY_ENV, SigningKeyRegistrationError, SigningUnavailableError, TRANSIT_ENV, verifyChain, type Ledger, type TransitKeyStatus } from "../receipts";
import { addVerificationRunCollector } from "../ledger-jobs";
import { closeRedis, createRedisClient, probeRedis } from "../redis/connection";
import { createRateLimiter } from "../redis/rate-limit";
import { createSnapshotBus, type SnapshotBus } from "../redis/broadcast";
import { createCurrentSnapshotCache } from "../redis/snapshot-cache";
import { ServiceMetrics } from "../telemetry/metrics";
import { FAILOVER_METRICS, failoverRecorder } from "../telemetry/failover";
import { attachPoolMetrics } from "../telemetry/pool";
import { startTracing, type Tracing } from "../telemetry/tracing";
import { buildApp } from "./app";
import { createAuditWriter } from "../audit";
import { advanceAuditTree, AUDIT_TREE, AUDIT_TREE_CATCH_UP_MS, auditLogOrigin } from "../audit/tree";
import { auditLogSink } from "./audit";
import { watchActiveColor } from "./active-color";
import { createHealthService, type HealthService } from "./health";
import { probeCredentialFile } from "./vault-credentials";
import { openStartupGate } from "./startup-gate";
import { buildMetricsServer } from "./metrics-server";
import type { ReceiptsPort } from "./routes/receipts";
import type { App } from "./types";
import { readServerCertificate, reloadCertificateEvery } from "./tls";
import type { Server as TlsServer } from "node:tls";

export interface RunningService {
  readonly config: Config;
  readonly apiUrl: string;
  readonly metricsUrl: string;
  readonly domain: Domain;
  readonly db: Database;
  readonly health: HealthService;
  /** Graceful stop: fail /ready, stop accepting, finish in-flight requests, close pools. */
  stop(): Promise<void>;
}

/** Migrations run as the owner (DATABASE_MIGRATION_URL) when the service role may not run DDL. */
async function migrateWith(config: Config, db: Database): Promise<number[]> {
  if (!config.database.migrationUrl) return migrate(db);
  const owner = await openDatabase({ url: config.database.migrationUrl, poolMax: 1, poolMin: 0 });
  try {
    return await migrate(owner);
  } finally {
    await owner.close();
  }
}

function signingKeyConfigured(env: NodeJS.ProcessEnv): boolean {
  return [SIGNING_KEY_ENV.file, SIGNING_KEY_ENV.pem, TRANSIT_ENV.addr].some((name) => (env[name] ?? "") !== "");
}

type Log = (level: "info" | "warn" | "error", message: string, extra?: Record<string, unknown>) => void;

function urlOf(app: { server: { address(): AddressInfo | string | null } }, scheme: "http" | "https" = "http"): string {
  const address = app.server.address();
  if (!address || typeof address === "string") return String(address);
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `${scheme}://${host === "0.0.0.0" ? "127.0.0.1" : host}:${address.port}`;
}

/**
 * Start-up in dependency order: config, tracing, database + migrations, receipt ledger, hot path
 * kernel, domain, Redis (never awaited: the service starts without it), API and metrics servers,
 * then the MAPE-K scheduler. Every resource opened is closed again by stop(), in reverse.
 */
export async function startService(env: NodeJS.ProcessEnv = process.env, log?: Log): Promise<RunningService> {
  const config = loadConfig(env);
  const write: Log =
    log ??
    ((level, message, extra) =>
      process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...extra })}\n`));
  write("info", "starting knhk", describeConfig(config));
  const cleanups: [string, () => Promise<void>][] = [];
  const cleanup = async () => {
    for (const [step, fn] of cleanups.reverse()) {
      const slow = setTimeout(() => write("warn", `shutdown: still waiting for ${step}`), 5000);
      await fn().catch((error) => write("error", `shutdown: ${step} failed`, { error: String(error) }));
      clearTimeout(slow);
    }
    cleanups.length = 0;
  };

  try {
    // Read before anything starts: a bad certificate stops start-up naming the variable.
    const certificate = config.http.tls ? await readServerCertificate(config.http.tls) : undefined;
    const tracing: Tracing = startTracing(config.telemetry);
    cleanups.push(["tracing", () => tracing.shutdown()]);

    const metrics = new ServiceMetrics();
    const db = await openDatabase(config.database, {
      log: write,
      onCredentialReload: (outcome) => metrics.inc("knhk_db_credential_reloads_total", { outcome }),
    });
    cleanups.push(["database pool", () => db.close()]);
    if (config.database.migrateOnStart) {
      const applied = await migrateWith(config, db);
      if (applied.length) write("info", "migrations applied", { versions: applied });
    }
    attachPoolMetrics(metrics, db, config.database.poolMax);

    // Without DDL rights the service waits (alive, unready, saying why) for what the migration Job
    // provides: the schema of this build, then a signing key the owner registered.
    const gate = config.database.migrateOnStart ? undefined : await openStartupGate({ host: config.http.host, port: config.http.port, log: write, https: certificate });
    let signer: Awaited<ReturnType<typeof loadSigner>> | undefined;
    const onTransitStatus = (status: TransitKeyStatus) => {
      metrics.set("knhk_receipt_signing_key_version", {}, status.signingVersion);
      metrics.set("knhk_receipt_signing_unregistered_key_versions", {}, status.unregisteredVersions);
    };
    try {
      await gate?.until("database schema", async () => {
        try {
          const status = await schemaStatus(db);
          return status.ready ? undefined : describeSchemaStatus(status);
        } catch (error) {
          return `database not reachable: ${(error as Error).message}`;
        }
      });
      await gate?.until("receipt signing key", async () => {
        try {
          signer = await loadSigner({ db, env, log: (line) => write("warn", line), onTransitStatus });
          return undefined;
        } catch (error) {
          // A configured key the owner has not registered yet is worth waiting for (the migration Job
          // registers it); an ephemeral key the service role may never register is not.
          if (error instanceof SigningKeyRegistrationError && signingKeyConfigured(env)) return error.message;
          if (error instanceof SigningUnavailableError) return error.message;
          throw error;
        }
      });
    } finally {
      await gate?.close();
    }
    signer ??= await loadSigner({ db, env, log: (line) => write("warn", line), onTransitStatus });
    metrics.set("knhk_receipt_signing_key_version", {}, signer.keyVersion);
    // The Merkle tree follows the chain in the background (it never delays an append).
    const checkpointPolicy = { origin: config.tlog.origin, everyReceipts: config.tlog.checkpointEveryReceipts, intervalMs: config.tlog.checkpointIntervalSeconds * 1000 };
    const tree = createTreeFollower({
      db,
      onAdvanced: (r) => metrics.set("knhk_receipt_tree_size", {}, r.to),
      afterAdvance: () => checkpointIfDue(db, signer!, checkpointPolicy),
      intervalMs: checkpointPolicy.intervalMs,
      onError: (error) => write("warn", "receipt tree advance failed; retried after the next receipts", { error: error.message }),
    });
    cleanups.push(["receipt tree", () => tree.close()]);
    // The audit log's tree: entries are written on many paths, so it also catches up every second.
    const auditTree = createTreeFollower({
      db,
      advance: advanceAuditTree,
      onAdvanced: (r) => metrics.set("knhk_audit_tree_size", {}, r.to),
      afterAdvance: () => checkpointIfDue(db, signer!, { ...checkpointPolicy, origin: auditLogOrigin(checkpointPolicy.origin), tables: AUDIT_TREE }),
      intervalMs: AUDIT_TREE_CATCH_UP_MS,
      onError: (error) => write("warn", "audit tree advance failed; retried within a second", { error: error.message }),
    });
    cleanups.push(["audit tree", () => auditTree.close()]);
    const ledger: Ledger = createLedger({
      db,
      signer,
      metrics: {
        onBatch: (size) => {
          metrics.observe("knhk_receipt_append_batch_size", {}, size);
          tree.notify();
          auditTree.notify();
        },
        onAppended: (n) => metrics.inc("knhk_receipts_appended_total", {}, n),
      },
    });
    cleanups.push(["receipt ledger", () => ledger.close()]);
    tree.notify();

    const kernel = await createKernel();

    const redisErrors = new Map<string, number>();
    const onRedisError = (error: Error) => {
      // ioredis retries forever; log each distinct failure once a minute, not on every retry.
      const last = redisErrors.get(error.message) ?? 0;
      if (Date.now() - last > 60_000) write("warn", "redis unavailable; using in-process fallbacks", { error: error.message });
      redisErrors.set(error.message, Date.now());
    };
    const redis = config.redis ? createRedisClient(config.redis, onRedisError) : undefined;
    cleanups.push(["redis", () => closeRedis(redis)]);
    const replicaId = `${hostname()}-${process.pid}`;
    const bus: SnapshotBus = createSnapshotBus(redis, replicaId, onRedisError);
    cleanups.push(["snapshot bus", () => bus.close()]);
    const snapshotCache = createCurrentSnapshotCache(redis);

    const leadership = config.leadership
      ? watchActiveColor({ color: config.leadership.color, file: config.leadership.activeColorFile, log: write })
      : undefined;
    if (leadership) cleanups.push(["active colour watch", async () => leadership.close()]);

    const domain = createDomain({
      db,
      ledger,
      kernel,
      metrics,
      settings: {
        patternWindowSeconds: config.domain.patternWindowSeconds,
        validationTimeoutMs: config.domain.validationTimeoutMs,
        mapeKIntervalMs: Math.max(1, config.domain.mapeKIntervalSeconds) * 1000,
        replicaId,
        leadership,
      },
      broadcaster: {
        async publish(event) {
          await snapshotCache.invalidate();
          await bus.publish(event);
        },
      },
    });
    await domain.init();
    bus.subscribe((event) => {
      domain.snapshots.invalidate(event);
      // After a reconnect (event undefined) the shared entry may predate a missed change.
      if (!event) void snapshotCache.invalidate();
    });

    const health = createHealthService({
      db,
      redis: () => probeRedis(redis),
      vault: config.database.urlFile ? async () => (await probeCredentialFile(config.database.urlFile!, config.database.credentialsMaxAgeSeconds)).state : undefined,
      onProbe: (dependency, up) => metrics.set("knhk_dependency_up", { dependency }, up ? 1 : 0),
      describeCredentials: db.describeCredentials,
      onServerRole: failoverRecorder(metrics),
    });
    // A scrape collects every metric at once: its gauges share one probe instead of one each.
    let scrapeProbe: Promise<unknown> | undefined;
    const probeForScrape = async () => void (await (scrapeProbe ??= health.check().finally(() => (scrapeProbe = undefined))));
    for (const gauge of ["knhk_dependency_up", FAILOVER_METRICS.timeline, FAILOVER_METRICS.inRecovery]) metrics.addCollector(gauge, probeForScrape);
    metrics.addCollector("knhk_mape_k_leader", () => metrics.set("knhk_mape_k_leader", {}, domain.mapeK.isLeader() ? 1 : 0));
    // Outcomes of the scheduled chain verifications (ledger_job_runs): the P0 integrity alert reads them.
    addVerificationRunCollector(metrics, db, (error) => write("warn", "cannot read ledger_job_runs; verification gauges keep their values", { error: error.message }));

    const receipts: ReceiptsPort = {
      list: (options) => ledger.list(options),
      get: (id) => ledger.get(id),
      checkpoint: async () => (await latestCheckpoint(db))?.note,
      prove: (id, size) => proveReceipt(db, id, size),
      consistency: (from, to) => proveConsistency(db, from, to),
      tile: (path) => readTileByPath(db, path),
      verify: (options) =>
        verifyChain({
          db,
          fromCheckpoint: options.fromCheckpoint,
          limit: options.limit,
          metrics: {
            onFailure: (kind) => metrics.inc("knhk_receipt_chain_breaks_total", { kind }),
            onVerifiedSeq: (seq) => metrics.set("knhk_receipt_chain_last_verified_seq", {}, seq),
          },
        }),
    };

    const auditWriter = createAuditWriter({
      db,
      onError: (error, events) => write("error", "audit log write failed; the requests were refused", { error: error.message, events }),
    });
    cleanups.push(["audit log writer", () => auditWriter.close()]);

    const app: App = await buildApp({
      domain,
      receipts,
      verifier: createTokenVerifier({ ...config.oidc, onCacheLookup: (hit) => metrics.inc("knhk_auth_token_cache_lookups_total", { result: hit ? "hit" : "miss" }) }),
      audit: auditLogSink(auditWriter),
      rateLimiter: createRateLimiter(redis, config.rateLimit),
      snapshotCache,
      metrics,
      health,
      bodyLimitBytes: config.http.bodyLimitBytes,
      batchBodyLimitBytes: config.http.batchBodyLimitBytes,
      logger: { level: config.logLevel },
      tracer: tracing.tracer,
      https: certificate,
    });
    cleanups.push(["API server", () => app.close()]);
    if (config.http.tls && certificate) {
      const reloader = reloadCertificateEvery(app.server as unknown as TlsServer, config.http.tls, certificate, config.http.tls.reloadSeconds * 1000, write);
      cleanups.push(["TLS certificate reload", async () => reloader.stop()]);
    }
    const metricsServer = await buildMetricsServer(metrics);
    cleanups.push(["metrics server", () => metricsServer.close()]);
    await app.listen({ host: config.http.host, port: config.http.port });
    await metricsServer.listen({ host: config.http.host, port: config.http.metricsPort });

    if (config.domain.mapeKIntervalSeconds > 0) {
      domain.mapeK.startScheduler();
      cleanups.push(["MAPE-K scheduler", () => domain.mapeK.stopScheduler()]);
    }
    if (config.oidc.issuers.length === 0) write("warn", "no OIDC issuer configured: every /api/v1 request will get 401");
    const apiUrl = urlOf(app, certificate ? "https" : "http");
    const metricsUrl = urlOf(metricsServer);
    write("info", "knhk listening", { api: apiUrl, metrics: metricsUrl, pid: process.pid });

    let stopping: Promise<void> | undefined;
    return {
      config,
      apiUrl,
      metricsUrl,
      domain,
      db,
      health,
      stop() {
        stopping ??= (async () => {
          health.markShuttingDown();
          await cleanup();
          write("info", "knhk stopped");
        })();
        return stopping;
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
