/**
 * The KNHK alert catalogue: every alert and SLO recording rule, grouped by area (one
 * PrometheusRule per area). Thresholds follow DESIGN.md "Alert thresholds"; series names come
 * from registry/metrics.yaml only (test/contract enforces it).
 *
 * Severity: P0 page + escalate after 30 min, P1 page + escalate after 1 h, P2 chat (4 h), P3 ticket (24 h).
 */
import type { AlertDefinition, Duration, RecordingDefinition, RuleArea, Severity } from "./alert-rules";
import type { LedgerJobAlerting, LedgerJobKind } from "./ledger-jobs";
import { jobMatcher } from "./scrape-targets";
import { POSTGRES } from "./topology";

export interface CatalogueOptions {
  /** Namespace of the stack (kube-state-metrics series are filtered by it). */
  readonly namespace: string;
  /** Value of the `cluster` label the escalation rules watch. */
  readonly cluster: string;
  /** Sentinels that must agree on the Redis primary (Sentinel `quorum`). */
  readonly sentinelQuorum: number;
  /** Patroni's `maximum_lag_on_failover` in bytes: a replica further behind cannot take over. */
  readonly maximumLagOnFailoverBytes: number;
  /** The scheduled ledger jobs the stack runs (ledgerJobAlerting): one staleness alert each. Default: none. */
  readonly ledgerJobs?: readonly LedgerJobAlerting[];
}

/** Availability objective: 99.9% of the time every service instance answers. */
export const AVAILABILITY_OBJECTIVE = 0.999;
/** Error-rate objective: fewer than 0.1% of requests end in a server error. */
export const ERROR_RATE_OBJECTIVE = 0.001;

/**
 * Multi-window, multi-burn-rate tiers (Google SRE workbook, 30-day budget): a tier fires when both
 * its long and its short window burn faster than `factor` times the budget.
 */
export const BURN_RATE_TIERS = [
  { name: "Fast", factor: 14.4, long: "1h", short: "5m", for: "2m", severity: "P1" },
  { name: "Sustained", factor: 6, long: "6h", short: "30m", for: "15m", severity: "P1" },
  { name: "Slow", factor: 3, long: "1d", short: "2h", for: "1h", severity: "P3" },
  { name: "Chronic", factor: 1, long: "3d", short: "6h", for: "3h", severity: "P3" },
] as const satisfies readonly { name: string; factor: number; long: Duration; short: Duration; for: Duration; severity: "P1" | "P3" }[];

const SLO_WINDOWS: readonly Duration[] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

const SERVICE = jobMatcher("knhk-service");
const PATRONI = jobMatcher("patroni");
const PG_EXPORTER = jobMatcher("postgres-exporter");
const REDIS_EXPORTER = jobMatcher("redis-exporter");
const SENTINEL = jobMatcher("redis-sentinel");
const PGBACKREST = jobMatcher("pgbackrest-exporter");

export const availabilityErrorRatio = (window: Duration) => `knhk:up_error_ratio:avg_over_time${window}`;
export const requestErrorRatio = (window: Duration) => `knhk:http_5xx_ratio:rate${window}`;

function sloRecordings(): RecordingDefinition[] {
  return SLO_WINDOWS.flatMap((w) => [
    // Time-based: the share of failed scrapes of service instances (catches outages that
    // produce no requests at all, which a request-based SLI cannot see).
    { record: availabilityErrorRatio(w), expr: `1 - avg(avg_over_time(up{${SERVICE}}[${w}]))` },
    // Request-based: server errors among all API requests; no 5xx series yet means zero errors.
    {
      record: requestErrorRatio(w),
      expr: `(sum(rate(knhk_http_requests_total{${SERVICE},status_class="5xx"}[${w}])) or vector(0)) / sum(rate(knhk_http_requests_total{${SERVICE}}[${w}]))`,
    },
  ]);
}

function burnRateAlerts(
  prefix: string,
  what: string,
  ratio: (w: Duration) => string,
  budget: number,
  objective: string,
  runbook: string,
): AlertDefinition[] {
  return BURN_RATE_TIERS.map((tier) => {
    const threshold = `(${tier.factor} * ${budget})`;
    return {
      alert: `${prefix}BudgetBurn${tier.name}`,
      expr: `${ratio(tier.long)} > ${threshold} and ${ratio(tier.short)} > ${threshold}`,
      for: tier.for,
      severity: tier.severity,
      summary: `KNHK ${what} error budget burning ${tier.factor}x too fast (${tier.long} and ${tier.short} windows)`,
      description:
        `${what} errors were {{ $value | humanizePercentage }} over the last ${tier.long} (objective ${objective}); ` +
        `at ${tier.factor}x the budget rate the 30-day error budget runs out in ${Math.round((30 / tier.factor) * 10) / 10} days.`,
      runbook,
      labels: { slo: prefix === "KnhkAvailability" ? "availability" : "error-rate", burn_rate: String(tier.factor) },
    };
  });
}

function sloArea(): RuleArea {
  return {
    name: "slo",
    recordings: sloRecordings(),
    alerts: [
      ...burnRateAlerts("KnhkAvailability", "Availability", availabilityErrorRatio, 1 - AVAILABILITY_OBJECTIVE, "99.9%", "slo-availability"),
      {
        alert: "KnhkAvailabilityBelow99Percent",
        expr: `${availabilityErrorRatio("5m")} > 0.01`,
        for: "5m",
        severity: "P1",
        summary: "KNHK availability is below 99% (critical line)",
        description: "{{ $value | humanizePercentage }} of service scrapes failed over the last 5 minutes (critical above 1%).",
        runbook: "slo-availability",
      },
      ...burnRateAlerts("KnhkErrorRate", "Request", requestErrorRatio, ERROR_RATE_OBJECTIVE, "< 0.1% server errors", "slo-error-rate"),
      {
        alert: "KnhkErrorRateAbove1Percent",
        expr: `${requestErrorRatio("5m")} > 0.01`,
        for: "5m",
        severity: "P1",
        summary: "KNHK error rate is above 1% (critical line)",
        description: "{{ $value | humanizePercentage }} of API requests ended in a 5xx over the last 5 minutes (critical above 1%).",
        runbook: "slo-error-rate",
      },
    ],
  };
}

/**
 * Admission caps every guard evaluation at 8 ticks (a longer run is parked, never counted), so
 * only OBSERVATION_APPEND, the rows one observation writes across all its guards, can exceed the
 * budget: the tick alerts watch that operation alone, where a realistic series can cross 8.
 */
const appendTicksP95 = `histogram_quantile(0.95, sum by (le) (rate(knhk_hot_path_ticks_bucket{${SERVICE},operation="OBSERVATION_APPEND"}[5m])))`;
/** Share of guard evaluations that admission parked to the warm path above which the hot path is degraded. */
export const HOT_PATH_PARKED_SHARE = 0.05;
const evaluations = `sum(rate(knhk_hot_path_ticks_count{${SERVICE},operation!="OBSERVATION_APPEND"}[10m]))`;
const parked = `sum(rate(knhk_hot_path_parked_total{${SERVICE}}[10m]))`;
const parkedShareByReason =
  `sum by (reason) (rate(knhk_hot_path_parked_total{${SERVICE}}[10m]))` + ` / ignoring(reason) group_left() (${parked} + ${evaluations})`;
const warmPathP95 = `histogram_quantile(0.95, sum by (le, stage) (rate(knhk_warm_path_duration_seconds_bucket{${SERVICE}}[5m])))`;

function latencyArea(): RuleArea {
  return {
    name: "latency",
    alerts: [
      {
        alert: "KnhkHotPathTicksHigh",
        expr: `${appendTicksP95} > 8`,
        for: "5m",
        severity: "P2",
        summary: "KNHK observation appends exceed the 8-tick budget (p95)",
        description: "Observation append p95 is {{ $value | humanize }} ticks (budget 8, critical above 10): the current snapshot's guards write too many rows per observation.",
        runbook: "hot-path-latency",
      },
      {
        alert: "KnhkHotPathTicksCritical",
        expr: `${appendTicksP95} > 10`,
        for: "5m",
        severity: "P1",
        summary: "KNHK observation appends are above 10 ticks (p95)",
        description: "Observation append p95 is {{ $value | humanize }} ticks (critical above 10).",
        runbook: "hot-path-latency",
      },
      {
        alert: "KnhkHotPathParking",
        expr: `${parkedShareByReason} > ${HOT_PATH_PARKED_SHARE}`,
        for: "10m",
        severity: "P2",
        summary: "KNHK admission parks guard evaluations to the warm path ({{ $labels.reason }})",
        description: `{{ $value | humanizePercentage }} of guard evaluations were parked for {{ $labels.reason }} over 10 minutes (above ${HOT_PATH_PARKED_SHARE * 100}%): they run on the warm path instead.`,
        runbook: "hot-path-latency",
      },
      {
        alert: "KnhkWarmPathLatencyHigh",
        expr: `${warmPathP95} > 0.1`,
        for: "10m",
        severity: "P2",
        summary: "KNHK warm path stage {{ $labels.stage }} p95 is above 100 ms",
        description: "Warm path stage {{ $labels.stage }} p95 is {{ $value | humanizeDuration }} (target < 100ms, critical above 200ms).",
        runbook: "warm-path-latency",
      },
      {
        alert: "KnhkWarmPathLatencyCritical",
        expr: `${warmPathP95} > 0.2`,
        for: "10m",
        severity: "P1",
        summary: "KNHK warm path stage {{ $labels.stage }} p95 is above 200 ms",
        description: "Warm path stage {{ $labels.stage }} p95 is {{ $value | humanizeDuration }} (critical above 200ms).",
        runbook: "warm-path-latency",
      },
    ],
  };
}

const poolUtilisation =
  `sum by (instance) (knhk_db_pool_connections{${SERVICE},state="active"})` +
  ` / sum by (instance) (knhk_db_pool_max_connections{${SERVICE}})`;

function databasePoolArea(): RuleArea {
  return {
    name: "database-pool",
    alerts: [
      {
        alert: "KnhkDbPoolUtilisationHigh",
        expr: `${poolUtilisation} > 0.8`,
        for: "5m",
        severity: "P2",
        summary: "KNHK database pool on {{ $labels.instance }} is above 80% in use",
        description: "{{ $value | humanizePercentage }} of the pool's connections are in use on {{ $labels.instance }} (warning above 80%, critical above 95%).",
        runbook: "database-connection-pool-exhausted",
      },
      {
        alert: "KnhkDbPoolExhausted",
        expr: `${poolUtilisation} > 0.95`,
        for: "5m",
        severity: "P1",
        summary: "KNHK database pool on {{ $labels.instance }} is nearly exhausted",
        description: "{{ $value | humanizePercentage }} of the pool's connections are in use on {{ $labels.instance }} (critical above 95%): requests queue for a connection.",
        runbook: "database-connection-pool-exhausted",
      },
    ],
  };
}

/** How many times the day's mean statement time the last 15 minutes' mean must reach to alert. */
export const STATEMENT_REGRESSION_FACTOR = 2;
/** Mean statement time (seconds) below which no regression alerts: an idle database's noise. */
export const STATEMENT_MEAN_FLOOR_SECONDS = 0.005;

/** Mean execution time per call of the service database's statements over `window` (pg_stat_statements). */
const meanStatementSeconds = (window: Duration) =>
  `(sum(rate(pg_stat_statements_seconds_total{${PG_EXPORTER},datname="${POSTGRES.database}"}[${window}]))` +
  ` / (sum(rate(pg_stat_statements_calls_total{${PG_EXPORTER},datname="${POSTGRES.database}"}[${window}])) > 0))`;

function databaseStatementsArea(): RuleArea {
  return {
    name: "database-statements",
    alerts: [
      {
        // A regression against the database's own day, not a fixed budget: a plan change, a
        // missing index or bloat shows as statements slower than they were.
        alert: "KnhkPostgresStatementTimeRegression",
        expr:
          `(${meanStatementSeconds("15m")} > ${STATEMENT_REGRESSION_FACTOR} * ${meanStatementSeconds("1d")})` +
          ` and (${meanStatementSeconds("15m")} > ${STATEMENT_MEAN_FLOOR_SECONDS})`,
        for: "15m",
        severity: "P3",
        summary: `Mean PostgreSQL statement time is more than ${STATEMENT_REGRESSION_FACTOR}x its daily mean`,
        description: `Statements in database ${POSTGRES.database} take {{ $value | humanizeDuration }} on average over 15 minutes, more than ${STATEMENT_REGRESSION_FACTOR}x their mean over the last day: find the slow ones on the database dashboard's "Slowest statements" panel.`,
        runbook: "warm-path-latency",
      },
    ],
  };
}

function integrityArea(): RuleArea {
  return {
    name: "integrity",
    alerts: [
      {
        alert: "KnhkReceiptChainBroken",
        // A verification in a service process (POST /receipts/verify, the deploy's) counts into the
        // counter; a scheduled one (knhk-verify-chain CronJobs) is exported from ledger_job_runs.
        expr:
          `(sum by (kind) (knhk_receipt_chain_breaks_total{${SERVICE}}) > 0)` +
          ` or (max by (kind) (knhk_receipt_chain_verification_failures{${SERVICE}}) > 0)`,
        for: "1m",
        severity: "P0",
        summary: "KNHK receipt chain integrity failure ({{ $labels.kind }})",
        description: "Chain verification found {{ $value }} {{ $labels.kind }} failure(s) in the receipt chain: the audit trail may have been tampered with. Stop writes now.",
        runbook: "receipt-chain-integrity-failure",
      },
      {
        alert: "KnhkTelemetrySchemaViolations",
        expr: `sum by (metric) (knhk_telemetry_schema_violations_total{${SERVICE}}) > 0`,
        for: "5m",
        severity: "P2",
        summary: "KNHK metric {{ $labels.metric }} emits label values outside the telemetry registry",
        description: "{{ $value }} label value(s) of {{ $labels.metric }} were outside registry/metrics.yaml since the pods started (mapped to \"other\").",
        runbook: "telemetry-schema-violations",
      },
    ],
  };
}

function patroniArea(o: CatalogueOptions): RuleArea {
  const primaryWal = `scalar(max(patroni_xlog_location{${PATRONI}} and on(pod) (patroni_primary{${PATRONI}} == 1)))`;
  const replicaReplayed = `(patroni_xlog_replayed_location{${PATRONI}} and on(pod) (patroni_replica{${PATRONI}} == 1))`;
  return {
    name: "patroni",
    alerts: [
      {
        alert: "KnhkPatroniNoLeader",
        expr: `(sum(patroni_primary{${PATRONI}}) or vector(0)) < 1`,
        for: "1m",
        severity: "P0",
        summary: "The KNHK PostgreSQL cluster has no leader",
        description: "{{ $value }} Patroni members report the primary role: the database accepts no writes.",
        runbook: "patroni-cluster",
      },
      {
        alert: "KnhkPatroniMultipleLeaders",
        expr: `sum(patroni_primary{${PATRONI}}) > 1`,
        for: "1m",
        severity: "P0",
        summary: "More than one KNHK PostgreSQL member claims the leader role",
        description: "{{ $value }} Patroni members report the primary role (split brain).",
        runbook: "patroni-cluster",
      },
      {
        alert: "KnhkPatroniNoSyncStandby",
        expr: `(sum(patroni_sync_standby{${PATRONI}}) or vector(0)) < 1`,
        for: "2m",
        severity: "P1",
        summary: "The KNHK PostgreSQL cluster has no synchronous standby",
        description: "{{ $value }} members are synchronous standbys: with synchronous_mode_strict, commits wait until one returns (RPO 0 is kept, writes stall).",
        runbook: "patroni-cluster",
      },
      {
        alert: "KnhkPatroniReplicationLag",
        expr: `${primaryWal} - ${replicaReplayed} > ${o.maximumLagOnFailoverBytes}`,
        for: "5m",
        severity: "P2",
        summary: "Replica {{ $labels.pod }} lags behind the primary",
        description: `Replica {{ $labels.pod }} has replayed WAL {{ $value | humanize1024 }}B behind the primary (above maximum_lag_on_failover ${o.maximumLagOnFailoverBytes} bytes: it cannot take over).`,
        runbook: "patroni-cluster",
      },
      {
        alert: "KnhkPatroniFailover",
        expr: `changes(max(patroni_postgres_timeline{${PATRONI}})[15m:1m]) > 0`,
        for: "0s",
        severity: "P2",
        summary: "The KNHK PostgreSQL cluster failed over",
        description: "The PostgreSQL timeline changed {{ $value }} time(s) in the last 15 minutes: a new primary was promoted.",
        runbook: "patroni-cluster",
      },
    ],
  };
}

function backupArea(): RuleArea {
  return {
    name: "backup",
    alerts: [
      {
        alert: "KnhkBackupFullTooOld",
        expr: `max by (stanza) (pgbackrest_backup_since_last_completion_seconds{${PGBACKREST},backup_type="full"}) > ${8 * 86400}`,
        for: "10m",
        severity: "P2",
        summary: "The last full pgBackRest backup of stanza {{ $labels.stanza }} is older than 8 days",
        description: "The last full backup completed {{ $value | humanizeDuration }} ago (full backups run every Sunday 02:00 UTC).",
        runbook: "postgres-backups",
      },
      {
        alert: "KnhkBackupMetricsMissing",
        expr: `(count(pgbackrest_backup_since_last_completion_seconds{${PGBACKREST},backup_type="full"}) or vector(0)) < 1`,
        for: "1h",
        severity: "P3",
        summary: "No pgBackRest backup metrics: backup age is not monitored",
        description: "{{ $value }} full-backup age series were scraped for an hour: pgbackrest_exporter is missing or cannot read the repository.",
        runbook: "postgres-backups",
      },
      {
        alert: "KnhkWalArchivingFailing",
        expr: `increase(pg_stat_archiver_failed_count{${PG_EXPORTER}}[10m]) > 0`,
        for: "5m",
        severity: "P1",
        summary: "WAL archiving fails on {{ $labels.pod }}",
        description: "archive_command failed {{ $value | humanize }} time(s) in 10 minutes on {{ $labels.pod }}: point-in-time recovery is at risk.",
        runbook: "postgres-backups",
      },
      {
        alert: "KnhkWalArchiveStale",
        expr: `pg_stat_archiver_last_archive_age{${PG_EXPORTER}} > 600 and on(pod) (patroni_primary{${PATRONI}} == 1)`,
        for: "1m",
        severity: "P1",
        summary: "The primary {{ $labels.pod }} archived no WAL for more than 10 minutes",
        description: "The last WAL segment was archived {{ $value | humanizeDuration }} ago (archive_timeout is 5 minutes).",
        runbook: "postgres-backups",
      },
    ],
  };
}

/** Keyspace hit ratio below which the snapshot cache counts as not hitting. */
export const REDIS_MIN_HIT_RATIO = 0.5;

function redisArea(o: CatalogueOptions): RuleArea {
  return {
    name: "redis",
    alerts: [
      {
        alert: "KnhkRedisNoPrimary",
        expr: `(count(redis_instance_info{${REDIS_EXPORTER},role="master"}) or vector(0)) < 1`,
        for: "1m",
        severity: "P1",
        summary: "No Redis instance of KNHK is a primary",
        description: "{{ $value }} Redis instances report role master: sessions and caches fall back in-process (degraded).",
        runbook: "redis-sentinel",
      },
      {
        alert: "KnhkRedisSentinelQuorumLost",
        expr: `min by (master_name) (redis_sentinel_master_ok_sentinels{${SENTINEL}}) < ${o.sentinelQuorum}`,
        for: "1m",
        severity: "P1",
        summary: "Sentinel quorum lost for Redis master {{ $labels.master_name }}",
        description: `Only {{ $value }} Sentinel(s) see master {{ $labels.master_name }} as healthy (quorum ${o.sentinelQuorum}): no automatic failover is possible.`,
        runbook: "redis-sentinel",
      },
      {
        // The snapshot cache is the main reader of Redis: lookups that all miss mean every
        // request reads the snapshot from PostgreSQL (a cache emptied by eviction or a restart that never refills).
        alert: "KnhkRedisCacheNotHitting",
        expr:
          `sum(rate(redis_keyspace_hits_total{${REDIS_EXPORTER}}[15m])) / (sum(rate(redis_keyspace_hits_total{${REDIS_EXPORTER}}[15m])) + sum(rate(redis_keyspace_misses_total{${REDIS_EXPORTER}}[15m])) > 0)` +
          ` < ${REDIS_MIN_HIT_RATIO}`,
        for: "15m",
        severity: "P3",
        summary: `Redis keyspace hit rate is below ${REDIS_MIN_HIT_RATIO * 100}%`,
        description: `Only {{ $value | humanizePercentage }} of Redis key lookups hit over 15 minutes (below ${REDIS_MIN_HIT_RATIO * 100}%): the snapshot cache has stopped serving, reads go to PostgreSQL.`,
        runbook: "redis-sentinel",
      },
      {
        alert: "KnhkRedisMemoryNearMax",
        expr: `max by (instance) (redis_memory_used_bytes{${REDIS_EXPORTER}} / (redis_memory_max_bytes{${REDIS_EXPORTER}} > 0)) > 0.9`,
        for: "10m",
        severity: "P2",
        summary: "Redis {{ $labels.instance }} uses more than 90% of maxmemory",
        description: "Redis {{ $labels.instance }} uses {{ $value | humanizePercentage }} of maxmemory: keys are being evicted.",
        runbook: "redis-sentinel",
      },
    ],
  };
}

function workloadArea(o: CatalogueOptions): RuleArea {
  const ns = `namespace="${o.namespace}"`;
  return {
    name: "workload",
    alerts: [
      {
        alert: "KnhkServiceDown",
        expr: `(sum(up{${SERVICE}}) or vector(0)) < 1`,
        for: "1m",
        severity: "P0",
        summary: "No KNHK service instance is up",
        description: "{{ $value }} KNHK service instances answer their metrics scrape.",
        runbook: "service-down",
      },
      {
        alert: "KnhkPodCrashLooping",
        expr: `max by (pod, container) (kube_pod_container_status_waiting_reason{${ns},reason="CrashLoopBackOff"}) > 0`,
        for: "5m",
        severity: "P1",
        summary: "Container {{ $labels.container }} of pod {{ $labels.pod }} is crash-looping",
        description: "{{ $labels.pod }}/{{ $labels.container }} has been in CrashLoopBackOff for 5 minutes (value {{ $value }}).",
        runbook: "pod-crash-looping",
      },
      {
        alert: "KnhkHpaAtMaxReplicas",
        expr: `kube_horizontalpodautoscaler_status_current_replicas{${ns}} >= kube_horizontalpodautoscaler_spec_max_replicas{${ns}}`,
        for: "15m",
        severity: "P2",
        summary: "HPA {{ $labels.horizontalpodautoscaler }} runs at its maximum replicas",
        description: "HPA {{ $labels.horizontalpodautoscaler }} has run {{ $value }} replicas, its maximum, for 15 minutes: there is no headroom left.",
        runbook: "hpa-at-max-replicas",
      },
    ],
  };
}

/** `4h`, `13h`, `8d`: a whole number of the largest unit that divides the seconds. */
export function durationText(seconds: number): string {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) if (seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

const LEDGER_JOB_ALERTS: Readonly<Record<LedgerJobKind, { alert: string; severity: Severity; what: string; impact: string }>> = {
  archive: {
    alert: "KnhkArchiveStale",
    severity: "P2",
    what: "archive run",
    impact: "new receipts and audit entries are not in the Object Lock bucket and observations pile up in PostgreSQL",
  },
  verifyChain: {
    alert: "KnhkChainVerificationStale",
    severity: "P2",
    what: "incremental chain verification",
    impact: "a break in the newest receipts would go unnoticed (KnhkReceiptChainBroken cannot fire)",
  },
  fullVerification: {
    alert: "KnhkChainFullVerificationStale",
    severity: "P3",
    what: "full chain verification",
    impact: "a receipt rewritten below the last checkpoint would go unnoticed",
  },
};

/**
 * Staleness of the scheduled ledger jobs from kube-state-metrics: the CronJob's last successful
 * completion (or its creation, before the first success) is older than the job's alert age. A
 * failing, suspended, unschedulable or never-started job all look alike here: no success.
 */
function ledgerJobsArea(o: CatalogueOptions): RuleArea | undefined {
  if (!o.ledgerJobs?.length) return undefined;
  return {
    name: "ledger-jobs",
    alerts: o.ledgerJobs.map((job) => {
      const def = LEDGER_JOB_ALERTS[job.kind];
      const sel = `namespace="${o.namespace}",cronjob="${job.cronJob}"`;
      return {
        alert: def.alert,
        expr: `time() - max by (cronjob) (kube_cronjob_status_last_successful_time{${sel}} or kube_cronjob_created{${sel}}) > ${job.alertAfterSeconds}`,
        for: "10m",
        severity: def.severity,
        summary: `The scheduled ${def.what} (CronJob ${job.cronJob}) has not succeeded for more than ${durationText(job.alertAfterSeconds)}`,
        description: `The last successful run of CronJob {{ $labels.cronjob }} finished {{ $value | humanizeDuration }} ago (or it never succeeded since it was created): ${def.impact}.`,
        runbook: "ledger-jobs",
      };
    }),
  };
}

/** Time-based escalation: a P0 still firing after 30 min (P1: 1 h) pages the escalation receiver. */
function escalationArea(o: CatalogueOptions): RuleArea {
  const escalation = (severity: "P0" | "P1", after: Duration, afterText: string): AlertDefinition => ({
    alert: `Knhk${severity}AlertUnresolved`,
    expr:
      `max without (alertstate) (label_replace(ALERTS{alertstate="firing",severity="${severity}",escalation="",cluster="${o.cluster}"},` +
      ` "escalated_alert", "$1", "alertname", "(.*)"))`,
    for: after,
    severity,
    summary: `${severity} alert {{ $labels.escalated_alert }} unresolved for ${afterText}: escalating`,
    description: `${severity} alert {{ $labels.escalated_alert }} has been firing for more than ${afterText} ({{ $value }} firing series).`,
    runbook: "alert-escalation",
    labels: { escalation: "manager" },
  });
  return { name: "escalation", alerts: [escalation("P0", "30m", "30 minutes"), escalation("P1", "1h", "1 hour")] };
}

/** All areas, in the order their PrometheusRules are created. */
export function knhkRuleAreas(o: CatalogueOptions): RuleArea[] {
  const ledgerJobs = ledgerJobsArea(o);
  return [
    sloArea(),
    latencyArea(),
    databasePoolArea(),
    databaseStatementsArea(),
    integrityArea(),
    ...(ledgerJobs ? [ledgerJobs] : []),
    patroniArea(o),
    backupArea(),
    redisArea(o),
    workloadArea(o),
    escalationArea(o),
  ];
}
