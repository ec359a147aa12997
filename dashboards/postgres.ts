/** "KNHK Database Performance" (uid knhk-postgres): Patroni, replication, load, slowest statements, WAL archive, backups, Redis cache hit rate. */
import { MappingType, type Dashboard } from "@grafana/grafana-foundation-sdk/dashboard";
import { REDIS_MIN_HIT_RATIO } from "../infra/render/alert-catalogue";
import { POSTGRES } from "../infra/render/topology";
import { type DashboardDefinition, job, newDashboard, statPanel, step, timeseriesPanel } from "./common";

const PATRONI = job("patroni");
const PG = job("postgres-exporter");
const BACKREST = job("pgbackrest-exporter");
const REDIS = job("redis-exporter");
const SERVICE_DB = `${PG},datname="${POSTGRES.database}"`;
const RATE = "$__rate_interval";

function build(): Dashboard {
  return newDashboard("knhk-postgres", "KNHK Database Performance", "Patroni roles and replication, PostgreSQL connections, transactions and slowest statements, WAL archiving, pgBackRest backups, and the Redis cache hit rate.")
    .withPanel(
      statPanel({
        title: "Patroni roles",
        description: "Role each member reports to Patroni.",
        unit: "none",
        width: 8,
        queries: [{ expr: `max by (pod) (patroni_primary{${PATRONI}})`, legend: "{{pod}}" }],
        thresholds: [step(null, "blue"), step(1, "green")],
        mappings: [{ type: MappingType.ValueToText, options: { "0": { text: "replica", color: "blue" }, "1": { text: "primary", color: "green" } } }],
      }),
    )
    .withPanel(
      statPanel({
        title: "Synchronous standbys",
        description: "Members acting as synchronous standby. 0 means commits wait (synchronous_mode_strict).",
        unit: "none",
        width: 8,
        queries: [{ expr: `sum(patroni_sync_standby{${PATRONI}}) or vector(0)`, legend: "sync standbys" }],
        thresholds: [step(null, "red"), step(1, "green")],
      }),
    )
    .withPanel(
      statPanel({
        title: "Timeline",
        description: "PostgreSQL timeline; it increases by one with every failover.",
        unit: "none",
        width: 8,
        queries: [{ expr: `max(patroni_postgres_timeline{${PATRONI}})`, legend: "timeline" }],
        thresholds: [step(null, "blue")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Replication lag (bytes)",
        description: "WAL each replica has not replayed yet, against the primary's WAL position. Failover limit 1 MiB (dashed).",
        unit: "bytes",
        min: 0,
        queries: [
          {
            expr: `scalar(max(patroni_xlog_location{${PATRONI}} and on(pod) (patroni_primary{${PATRONI}} == 1))) - (patroni_xlog_replayed_location{${PATRONI}} and on(pod) (patroni_replica{${PATRONI}} == 1))`,
            legend: "{{pod}}",
          },
        ],
        thresholdLines: [step(null, "green"), step(1048576, "red")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Replication lag (seconds)",
        description: "Time since the last replayed transaction on each replica (postgres_exporter).",
        unit: "s",
        min: 0,
        queries: [{ expr: `max by (pod) (pg_replication_lag_seconds{${PG}})`, legend: "{{pod}}" }],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Connections",
        description: "Backends by state per member, and max_connections.",
        unit: "short",
        min: 0,
        queries: [
          { expr: `sum by (pod, state) (pg_stat_activity_count{${PG}})`, legend: "{{pod}} {{state}}" },
          { expr: `max(pg_settings_max_connections{${PG}})`, legend: "max_connections" },
        ],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Transactions",
        description: "Commits and rollbacks per second per member.",
        unit: "ops",
        min: 0,
        queries: [
          { expr: `sum by (pod) (rate(pg_stat_database_xact_commit{${PG}}[${RATE}]))`, legend: "{{pod}} commit" },
          { expr: `sum by (pod) (rate(pg_stat_database_xact_rollback{${PG}}[${RATE}]))`, legend: "{{pod}} rollback" },
          { expr: `sum by (pod) (rate(pg_stat_database_deadlocks{${PG}}[${RATE}]))`, legend: "{{pod}} deadlocks" },
        ],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "WAL archive",
        description: "Age of the last archived WAL segment on the primary (alert above 10 min, dashed) and archive failures.",
        unit: "s",
        min: 0,
        queries: [
          { expr: `pg_stat_archiver_last_archive_age{${PG}} and on(pod) (patroni_primary{${PATRONI}} == 1)`, legend: "last archive age {{pod}}" },
          { expr: `sum by (pod) (increase(pg_stat_archiver_failed_count{${PG}}[${RATE}]))`, legend: "failures {{pod}}" },
        ],
        thresholdLines: [step(null, "green"), step(600, "red")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Backup age",
        description: "Time since the last completed pgBackRest backup by type. Full backups alert after 8 days (dashed).",
        unit: "s",
        min: 0,
        queries: [{ expr: `max by (backup_type) (pgbackrest_backup_since_last_completion_seconds{${BACKREST}})`, legend: "{{backup_type}}" }],
        thresholdLines: [step(null, "green"), step(8 * 86400, "red")],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Slowest statements",
        description:
          "Mean execution time of the 10 slowest statements (by queryid) in the service's database, from pg_stat_statements " +
          "(the exporter's stat_statements collector). Their text: the query in runbooks/warm-path-latency.md.",
        unit: "s",
        min: 0,
        queries: [
          {
            expr: `topk(10, sum by (queryid) (rate(pg_stat_statements_seconds_total{${SERVICE_DB}}[${RATE}])) / (sum by (queryid) (rate(pg_stat_statements_calls_total{${SERVICE_DB}}[${RATE}])) > 0))`,
            legend: "{{queryid}}",
          },
        ],
      }),
    )
    .withPanel(
      timeseriesPanel({
        title: "Redis cache hit rate",
        description: `Share of Redis key lookups that hit (the snapshot cache); alert below ${REDIS_MIN_HIT_RATIO * 100}% for 15 min (dashed).`,
        unit: "percentunit",
        min: 0,
        queries: [
          {
            expr: `sum(rate(redis_keyspace_hits_total{${REDIS}}[${RATE}])) / (sum(rate(redis_keyspace_hits_total{${REDIS}}[${RATE}])) + sum(rate(redis_keyspace_misses_total{${REDIS}}[${RATE}])) > 0)`,
            legend: "hit rate",
          },
        ],
        thresholdLines: [step(null, "red"), step(REDIS_MIN_HIT_RATIO, "green")],
      }),
    )
    .build();
}

export const postgresDashboard: DashboardDefinition = { uid: "knhk-postgres", title: "KNHK Database Performance", fileName: "knhk-postgres.json", build };
