/**
 * The PostgreSQL connection budget of a stack. Every client of the primary, at its worst case,
 * must fit in `max_connections`:
 *
 *   DB_POOL_MAX_CONNECTIONS × autoscaling.maxReplicas × 2 colours  (both colours at HPA max
 *   during a blue-green switch) + the reserve below  <=  knhk:patroni.postgresParameters.max_connections
 *
 * Otherwise the pods beyond the budget get "sorry, too many clients already" exactly when load is
 * highest. A stack that does not set the pool gets min(service default, what fits).
 * With the defaults (max_connections 200, 3 members, HPA max 10): reserve 35, 165 left for
 * 20 pods -> 8 connections per pod.
 */
import { CLI_POOL_MAX_CONNECTIONS, DB_POOL_DEFAULTS } from "../../app/src/config/env";
import { LEDGER_JOB_KINDS } from "../render/ledger-jobs";
import { VAULT_MAX_OPEN_CONNECTIONS } from "../render/vault-database";

/**
 * Connections other clients hold on the primary at worst. WAL senders (replicas streaming,
 * pg_basebackup of a new member) are not counted: since PostgreSQL 12 they have their own slots
 * (max_wal_senders), and replication slots are not connections.
 */
export const RESERVED_CONNECTIONS = {
  /** Patroni's main loop and its REST API each hold one connection to the local PostgreSQL. */
  patroni: 2,
  /** postgres_exporter on the primary's pod (one, plus one while a scrape overlaps a restart). */
  postgresExporter: 2,
  /** pgBackRest backup Job: start/stop backup on the primary, `check`. */
  pgbackrest: 2,
  /** Vault's database secrets engine: its admin connection pool (SecretBackendConnection maxOpenConnections). */
  vaultAdmin: VAULT_MAX_OPEN_CONNECTIONS,
  /** The pre-deploy migration Job (one `knhk` CLI run). */
  migrationJob: CLI_POOL_MAX_CONNECTIONS,
  /** The ledger CronJobs (archive, incremental and full chain verification): one `knhk` CLI run each, they may overlap. */
  ledgerCronJobs: LEDGER_JOB_KINDS.length * CLI_POOL_MAX_CONNECTIONS,
  /** The deploy script's audit event or one operator command (`npm run knhk -- ...`). */
  operatorCli: CLI_POOL_MAX_CONNECTIONS,
} as const;

export interface BudgetInput {
  readonly maxConnections: number;
  readonly superuserReservedConnections: number;
  /** Patroni members: each non-primary member may pg_rewind against the primary after a failover (one connection each). */
  readonly members: number;
  readonly maxReplicas: number;
}

export const COLORS_AT_SWITCH = 2;

/** The reserve, item by item (name -> connections), for messages and the README. */
export function reserveItems(input: BudgetInput): [string, number][] {
  return [
    ["superuser_reserved_connections", input.superuserReservedConnections],
    ["Patroni", RESERVED_CONNECTIONS.patroni],
    [`pg_rewind of ${input.members - 1} rejoining member(s)`, input.members - 1],
    ["postgres_exporter", RESERVED_CONNECTIONS.postgresExporter],
    ["pgBackRest", RESERVED_CONNECTIONS.pgbackrest],
    ["Vault admin pool", RESERVED_CONNECTIONS.vaultAdmin],
    ["migration Job", RESERVED_CONNECTIONS.migrationJob],
    ["ledger CronJobs", RESERVED_CONNECTIONS.ledgerCronJobs],
    ["operator CLI", RESERVED_CONNECTIONS.operatorCli],
  ];
}

export function reservedConnections(input: BudgetInput): number {
  return reserveItems(input).reduce((sum, [, n]) => sum + n, 0);
}

/** Service pods that may hold a pool at once: both colours at HPA max. */
export function maxServicePods(input: BudgetInput): number {
  return input.maxReplicas * COLORS_AT_SWITCH;
}

/** The largest per-pod pool that fits (0: not even one connection per pod fits). */
export function largestPoolThatFits(input: BudgetInput): number {
  return Math.max(0, Math.floor((input.maxConnections - reservedConnections(input)) / maxServicePods(input)));
}

/** Pool defaults for a stack that does not set them. */
export function derivedPool(input: BudgetInput): { max: number; min: number } {
  const max = Math.min(DB_POOL_DEFAULTS.max, largestPoolThatFits(input));
  return { max, min: Math.min(DB_POOL_DEFAULTS.min, max) };
}

/** The arithmetic in one line, e.g. for an error message. */
export function budgetArithmetic(input: BudgetInput, poolMax: number): string {
  const pods = maxServicePods(input);
  const reserve = reservedConnections(input);
  const items = reserveItems(input)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${n} ${name}`)
    .join(" + ");
  return `${poolMax} per pod × ${input.maxReplicas} (autoscaling.maxReplicas) × ${COLORS_AT_SWITCH} colours = ${poolMax * pods}, + reserve ${reserve} (${items}) = ${poolMax * pods + reserve}`;
}

/** Why `poolMax` does not fit, or undefined when it does. */
export function budgetProblem(input: BudgetInput, poolMax: number): string | undefined {
  const needed = poolMax * maxServicePods(input) + reservedConnections(input);
  if (needed <= input.maxConnections) return undefined;
  const fits = largestPoolThatFits(input);
  const advice = fits >= 1 ? `at most ${fits} per pod fits` : "not even 1 per pod fits: lower autoscaling.maxReplicas";
  return `connection budget exceeded: ${budgetArithmetic(input, poolMax)} > max_connections ${input.maxConnections} (knhk:patroni.postgresParameters.max_connections); ${advice}, or raise max_connections to ${needed}`;
}
