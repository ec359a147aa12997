/**
 * One promtool scenario per alert: series that cross the threshold (`fire`), series just below
 * it (`calm`), the minute the condition starts to hold, and what the firing alert must carry.
 * Severities, labels and values are written out here by hand (not read from the catalogue), so a
 * changed threshold, severity or label breaks a test.
 */
import type { Severity } from "../../infra/render/alert-rules";
import { counter, explicit, gauge, histogram, type InputSeries } from "./series";

export interface AlertScenario {
  readonly severity: Severity;
  /** Minute from which the `fire` series satisfy the expression (rates need two samples: 1). */
  readonly start: number;
  readonly fire: readonly InputSeries[];
  readonly calm: readonly InputSeries[];
  /** Labels of the firing alert besides severity, cluster and namespace. */
  readonly labels: Readonly<Record<string, string>>;
  /** `{{ $value }}` as the description must render it (after humanize* where used). */
  readonly value: string;
  /** Extra minutes (after firing) at which exactly this alert must still be the only one. */
  readonly stillFiringAfter?: number;
}

const SVC = { job: "knhk-service", instance: "a" };
const PATRONI = { job: "patroni" };
const PG = { job: "postgres-exporter" };
const KSM = { job: "kube-state-metrics", namespace: "knhk" };

const up = (value: number) => [gauge("up", SVC, value)];
/** API traffic with `ratio` of it 5xx, 10000 requests a minute. */
const traffic = (ratio: number) => [
  counter("knhk_http_requests_total", { ...SVC, method: "POST", route: "/api/v1/observations", status_class: "5xx" }, Math.round(ratio * 10000)),
  counter("knhk_http_requests_total", { ...SVC, method: "POST", route: "/api/v1/observations", status_class: "2xx" }, 10000 - Math.round(ratio * 10000)),
];
/**
 * What ingest records per observation: one OBSERVATION_APPEND sample (rows written across all its
 * guards, uncapped) and one sample per guard evaluation (admission caps those at 8).
 */
const ticks = (appendUpperBound: number) => [
  ...histogram("knhk_hot_path_ticks", { ...SVC, operation: "OBSERVATION_APPEND" }, appendUpperBound, 100),
  ...histogram("knhk_hot_path_ticks", { ...SVC, operation: "ASK_SP" }, 8, 200),
];
/** Guard evaluations a minute: `parkedPerMinute` parked (run_too_long) out of 1000, plus appends (not evaluations). */
const parking = (parkedPerMinute: number) => [
  counter("knhk_hot_path_parked_total", { ...SVC, reason: "run_too_long" }, parkedPerMinute),
  counter("knhk_hot_path_ticks_count", { ...SVC, operation: "COUNT_SP_GE" }, 1000 - parkedPerMinute),
  counter("knhk_hot_path_ticks_count", { ...SVC, operation: "OBSERVATION_APPEND" }, 1000),
];
const warm = (upperBound: number) => histogram("knhk_warm_path_duration_seconds", { ...SVC, stage: "persistence" }, upperBound, 100);
const pool = (active: number, max: number) => [
  gauge("knhk_db_pool_connections", { ...SVC, state: "active" }, active),
  gauge("knhk_db_pool_connections", { ...SVC, state: "idle" }, max - active),
  gauge("knhk_db_pool_max_connections", SVC, max),
];
/**
 * 1000 statements a minute in the service's database (so `ms` milliseconds each add `ms` seconds
 * a minute): a day at `baselineMs`, then `afterMs` (postgres_exporter's stat_statements counters).
 */
const DAY = 1440;
const statements = (baselineMs: number, afterMs: number) => {
  const labels = { ...PG, datname: "knhk", user: "knhk_app", queryid: "4242" };
  return [
    counter("pg_stat_statements_calls_total", labels, 1000),
    explicit("pg_stat_statements_seconds_total", labels, `0+${baselineMs}x${DAY} ${baselineMs * DAY + afterMs}+${afterMs}x600`),
  ];
};
const members = (metric: string, values: number[]) => values.map((v, i) => gauge(metric, { ...PATRONI, pod: `postgres-${i}` }, v));
const replicationLag = (lagBytes: number) => [
  ...members("patroni_primary", [1, 0]),
  ...members("patroni_replica", [0, 1]),
  gauge("patroni_xlog_location", { ...PATRONI, pod: "postgres-0" }, 20_000_000),
  gauge("patroni_xlog_replayed_location", { ...PATRONI, pod: "postgres-1" }, 20_000_000 - lagBytes),
];
const fullBackupAge = (seconds: number) => [
  gauge("pgbackrest_backup_since_last_completion_seconds", { job: "pgbackrest-exporter", stanza: "knhk", backup_type: "full", block_incr: "n" }, seconds),
];
const redisRoles = (roles: string[]) => roles.map((role, i) => gauge("redis_instance_info", { job: "redis-exporter", instance: `redis-${i}`, role, redis_version: "7.0.15" }, 1));
const okSentinels = (values: number[]) =>
  values.map((v, i) => gauge("redis_sentinel_master_ok_sentinels", { job: "redis-sentinel", instance: `sentinel-${i}`, master_name: "knhk", master_address: "10.0.0.5:6379" }, v));
const redisMemory = (used: number, max: number) => [
  gauge("redis_memory_used_bytes", { job: "redis-exporter", instance: "redis-0" }, used),
  gauge("redis_memory_max_bytes", { job: "redis-exporter", instance: "redis-0" }, max),
];
const keyspace = (hits: number, misses: number) => [
  counter("redis_keyspace_hits_total", { job: "redis-exporter", instance: "redis-0" }, hits),
  counter("redis_keyspace_misses_total", { job: "redis-exporter", instance: "redis-0" }, misses),
];
const crashLoop = (value: number) => [
  gauge("kube_pod_container_status_waiting_reason", { ...KSM, pod: "knhk-blue-7d9f-abcde", container: "knhk", reason: "CrashLoopBackOff" }, value),
  // Another namespace's crash loop is not ours.
  gauge("kube_pod_container_status_waiting_reason", { ...KSM, namespace: "other", pod: "x-1", container: "x", reason: "CrashLoopBackOff" }, 1),
];
/** A CronJob created at time 0; `lastSuccess` (seconds) when it ever succeeded. */
const cronJob = (name: string, lastSuccess?: number, namespace = "knhk") => [
  gauge("kube_cronjob_created", { ...KSM, namespace, cronjob: name }, 0),
  ...(lastSuccess === undefined ? [] : [gauge("kube_cronjob_status_last_successful_time", { ...KSM, namespace, cronjob: name }, lastSuccess)]),
];
/** Stale CronJobs that are not the alert's: another namespace's, and another job of ours. */
const otherCronJobs = (name: string) => [...cronJob(name, undefined, "other"), ...cronJob("pgbackrest-full")];
const hpa = (current: number, max: number) => [
  gauge("kube_horizontalpodautoscaler_status_current_replicas", { ...KSM, horizontalpodautoscaler: "knhk-blue" }, current),
  gauge("kube_horizontalpodautoscaler_spec_max_replicas", { ...KSM, horizontalpodautoscaler: "knhk-blue" }, max),
];

/** Healthy data plane: keeps the "nothing reports X" alerts quiet (used by the escalation tests). */
const HEALTHY = [
  gauge("up", SVC, 1),
  ...members("patroni_primary", [1, 0]),
  ...members("patroni_sync_standby", [0, 1]),
  ...redisRoles(["master", "slave"]),
  ...fullBackupAge(3600),
];
const activeAlert = (severity: string, state: string) =>
  gauge("ALERTS", { alertname: `KnhkScenario${severity}`, alertstate: state, severity, cluster: "test", namespace: "knhk" }, 1);

type Tier = { name: string; fire: number; calm: number; severity: Severity; labels: { burn_rate: string } };
const TIERS: Tier[] = [
  { name: "Fast", fire: 0.015, calm: 0.013, severity: "P1", labels: { burn_rate: "14.4" } },
  { name: "Sustained", fire: 0.007, calm: 0.0055, severity: "P1", labels: { burn_rate: "6" } },
  { name: "Slow", fire: 0.0035, calm: 0.0027, severity: "P3", labels: { burn_rate: "3" } },
  { name: "Chronic", fire: 0.0015, calm: 0.0009, severity: "P3", labels: { burn_rate: "1" } },
];
const pct = (ratio: number) => `${Number((ratio * 100).toPrecision(4))}%`;

function burnScenarios(): Record<string, AlertScenario> {
  const out: Record<string, AlertScenario> = {};
  for (const t of TIERS) {
    out[`KnhkAvailabilityBudgetBurn${t.name}`] = {
      severity: t.severity,
      start: 0,
      fire: up(1 - t.fire),
      calm: up(1 - t.calm),
      labels: { slo: "availability", ...t.labels },
      value: pct(t.fire),
    };
    out[`KnhkErrorRateBudgetBurn${t.name}`] = {
      severity: t.severity,
      start: 1,
      fire: traffic(t.fire),
      calm: traffic(t.calm),
      labels: { slo: "error-rate", ...t.labels },
      value: pct(t.fire),
    };
  }
  return out;
}

export const ALERT_SCENARIOS: Readonly<Record<string, AlertScenario>> = {
  ...burnScenarios(),
  KnhkAvailabilityBelow99Percent: { severity: "P1", start: 0, fire: up(0.985), calm: up(0.991), labels: {}, value: "1.5%" },
  KnhkErrorRateAbove1Percent: { severity: "P1", start: 1, fire: traffic(0.015), calm: traffic(0.009), labels: {}, value: "1.5%" },

  // p95 interpolates inside the bucket: (8,10] -> 9.9, (7,8] -> 7.95, (10,12] -> 11.9
  KnhkHotPathTicksHigh: { severity: "P2", start: 1, fire: ticks(10), calm: ticks(8), labels: {}, value: "9.9" },
  KnhkHotPathTicksCritical: { severity: "P1", start: 1, fire: ticks(12), calm: ticks(10), labels: {}, value: "11.9" },
  // 60 of 1000 evaluations parked (6%) fires; exactly 5% does not
  KnhkHotPathParking: { severity: "P2", start: 1, fire: parking(60), calm: parking(50), labels: { reason: "run_too_long" }, value: "6%" },
  // (0.1,0.2] -> 195 ms, (0.05,0.1] -> 97.5 ms, (0.2,0.5] -> 485 ms
  KnhkWarmPathLatencyHigh: { severity: "P2", start: 1, fire: warm(0.2), calm: warm(0.1), labels: { stage: "persistence" }, value: "195ms" },
  KnhkWarmPathLatencyCritical: { severity: "P1", start: 1, fire: warm(0.5), calm: warm(0.2), labels: { stage: "persistence" }, value: "485ms" },

  // exactly at the threshold (16/20 = 80%, 19/20 = 95%) must not fire
  KnhkDbPoolUtilisationHigh: { severity: "P2", start: 0, fire: pool(17, 20), calm: pool(16, 20), labels: { instance: "a" }, value: "85%" },
  KnhkDbPoolExhausted: { severity: "P1", start: 0, fire: pool(20, 20), calm: pool(19, 20), labels: { instance: "a" }, value: "100%" },
  // A day at 2 ms a statement, then 10 ms (5x the day, above the 5 ms floor) fires once enough of
  // the 15-minute window is past the step; 3 ms then 5.5 ms (above the floor, under 2x) does not.
  KnhkPostgresStatementTimeRegression: { severity: "P3", start: DAY + 6, fire: statements(2, 10), calm: statements(3, 5.5), labels: {}, value: "10ms", stillFiringAfter: 20 },

  KnhkReceiptChainBroken: {
    severity: "P0",
    start: 0,
    fire: [gauge("knhk_receipt_chain_breaks_total", { ...SVC, kind: "hash_mismatch" }, 1)],
    calm: [gauge("knhk_receipt_chain_breaks_total", { ...SVC, kind: "hash_mismatch" }, 0)],
    labels: { kind: "hash_mismatch" },
    value: "1",
  },
  // Alert ages of TEST_INPUT.ledgerJobs: 2 h, 3 h, 5 h. Fire: created at 0 and never succeeded
  // (the `or kube_cronjob_created` side); calm: it succeeded at 1800 s, younger than the age at
  // every check (the last success wins over the creation time).
  KnhkArchiveStale: {
    severity: "P2",
    start: 121,
    fire: [...cronJob("knhk-archive"), ...otherCronJobs("knhk-archive")],
    calm: [...cronJob("knhk-archive", 1800), ...otherCronJobs("knhk-archive")],
    labels: { cronjob: "knhk-archive" },
    value: "2h 11m 0s",
  },
  KnhkChainVerificationStale: {
    severity: "P2",
    start: 181,
    fire: [...cronJob("knhk-verify-chain", 0), ...otherCronJobs("knhk-verify-chain")],
    calm: [...cronJob("knhk-verify-chain", 1800), ...otherCronJobs("knhk-verify-chain")],
    labels: { cronjob: "knhk-verify-chain" },
    value: "3h 11m 0s",
  },
  KnhkChainFullVerificationStale: {
    severity: "P3",
    start: 301,
    fire: [...cronJob("knhk-verify-chain-full")],
    calm: [...cronJob("knhk-verify-chain-full", 1800)],
    labels: { cronjob: "knhk-verify-chain-full" },
    value: "5h 11m 0s",
  },
  KnhkTelemetrySchemaViolations: {
    severity: "P2",
    start: 0,
    fire: [gauge("knhk_telemetry_schema_violations_total", { ...SVC, metric: "knhk_http_requests_total" }, 3)],
    calm: [gauge("knhk_telemetry_schema_violations_total", { ...SVC, metric: "knhk_http_requests_total" }, 0)],
    labels: { metric: "knhk_http_requests_total" },
    value: "3",
  },

  KnhkPatroniNoLeader: { severity: "P0", start: 0, fire: members("patroni_primary", [0, 0, 0]), calm: members("patroni_primary", [0, 1, 0]), labels: {}, value: "0" },
  KnhkPatroniMultipleLeaders: { severity: "P0", start: 0, fire: members("patroni_primary", [1, 1, 0]), calm: members("patroni_primary", [1, 0, 0]), labels: {}, value: "2" },
  KnhkPatroniNoSyncStandby: { severity: "P1", start: 0, fire: members("patroni_sync_standby", [0, 0, 0]), calm: members("patroni_sync_standby", [0, 1, 0]), labels: {}, value: "0" },
  // maximum_lag_on_failover 1 MiB: 2 MiB fires, exactly 1 MiB does not
  KnhkPatroniReplicationLag: { severity: "P2", start: 0, fire: replicationLag(2_097_152), calm: replicationLag(1_048_576), labels: { job: "patroni", pod: "postgres-1" }, value: "2Mi" },
  // timeline 1 until minute 20, 2 from minute 21
  KnhkPatroniFailover: {
    severity: "P2",
    start: 21,
    fire: [explicit("patroni_postgres_timeline", { ...PATRONI, pod: "postgres-0" }, "1x20 2x40")],
    calm: [explicit("patroni_postgres_timeline", { ...PATRONI, pod: "postgres-0" }, "1x60")],
    labels: {},
    value: "1",
  },

  KnhkBackupFullTooOld: { severity: "P2", start: 0, fire: fullBackupAge(700_000), calm: fullBackupAge(8 * 86400), labels: { stanza: "knhk" }, value: "8d 2h 26m 40s" },
  KnhkBackupMetricsMissing: {
    severity: "P3",
    start: 0,
    fire: [gauge("pgbackrest_backup_since_last_completion_seconds", { job: "pgbackrest-exporter", stanza: "knhk", backup_type: "incr", block_incr: "n" }, 3600)],
    calm: fullBackupAge(3600),
    labels: {},
    value: "0",
  },
  // one failure a minute: increase over the 6 minutes of data = 6
  KnhkWalArchivingFailing: {
    severity: "P1",
    start: 1,
    fire: [counter("pg_stat_archiver_failed_count", { ...PG, pod: "postgres-0" }, 1)],
    calm: [gauge("pg_stat_archiver_failed_count", { ...PG, pod: "postgres-0" }, 3)],
    labels: { job: "postgres-exporter", pod: "postgres-0" },
    value: "6",
  },
  KnhkWalArchiveStale: {
    severity: "P1",
    start: 0,
    fire: [gauge("pg_stat_archiver_last_archive_age", { ...PG, pod: "postgres-0" }, 660), ...members("patroni_primary", [1, 0])],
    // the primary at exactly 10 min, and a replica (which archives nothing) far older
    calm: [
      gauge("pg_stat_archiver_last_archive_age", { ...PG, pod: "postgres-0" }, 600),
      gauge("pg_stat_archiver_last_archive_age", { ...PG, pod: "postgres-1" }, 99_999),
      ...members("patroni_primary", [1, 0]),
    ],
    labels: { job: "postgres-exporter", pod: "postgres-0" },
    value: "11m 0s",
  },

  KnhkRedisNoPrimary: { severity: "P1", start: 0, fire: redisRoles(["slave", "slave"]), calm: redisRoles(["slave", "master"]), labels: {}, value: "0" },
  KnhkRedisSentinelQuorumLost: { severity: "P1", start: 0, fire: okSentinels([1, 1, 2]), calm: okSentinels([2, 3, 2]), labels: { master_name: "knhk" }, value: "1" },
  // 40 hits and 60 misses a minute (40%) fires; exactly 50% does not
  KnhkRedisCacheNotHitting: { severity: "P3", start: 1, fire: keyspace(40, 60), calm: keyspace(50, 50), labels: {}, value: "40%" },
  KnhkRedisMemoryNearMax: { severity: "P2", start: 0, fire: redisMemory(905_000_000, 1e9), calm: redisMemory(900_000_000, 1e9), labels: { instance: "redis-0" }, value: "90.5%" },

  KnhkServiceDown: { severity: "P0", start: 0, fire: [gauge("up", SVC, 0), gauge("up", { ...SVC, instance: "b" }, 0)], calm: [gauge("up", SVC, 0), gauge("up", { ...SVC, instance: "b" }, 1)], labels: {}, value: "0" },
  KnhkPodCrashLooping: { severity: "P1", start: 0, fire: crashLoop(1), calm: crashLoop(0), labels: { pod: "knhk-blue-7d9f-abcde", container: "knhk" }, value: "1" },
  KnhkHpaAtMaxReplicas: { severity: "P2", start: 0, fire: hpa(10, 10), calm: hpa(9, 10), labels: { horizontalpodautoscaler: "knhk-blue", job: "kube-state-metrics" }, value: "10" },

  // An active P0 (P1) alert escalates after 30 min (1 h); a pending one never does, and the
  // escalation alert does not escalate itself.
  KnhkP0AlertUnresolved: {
    severity: "P0",
    start: 0,
    fire: [...HEALTHY, activeAlert("P0", "firing")],
    calm: [...HEALTHY, activeAlert("P0", "pending"), activeAlert("P1", "firing")],
    labels: { escalation: "manager", escalated_alert: "KnhkScenarioP0" },
    value: "1",
    stillFiringAfter: 60,
  },
  KnhkP1AlertUnresolved: {
    severity: "P1",
    start: 0,
    fire: [...HEALTHY, activeAlert("P1", "firing")],
    calm: [...HEALTHY, activeAlert("P1", "pending"), activeAlert("P2", "firing")],
    labels: { escalation: "manager", escalated_alert: "KnhkScenarioP1" },
    value: "1",
    stillFiringAfter: 90,
  },
};
