/**
 * Set-up for the warm path tests: one real PostgreSQL 15 per test file, a fresh database per
 * scenario with every migration applied by the owner, and the domain connected as `knhk_app`
 * (a LOGIN member of knhk_service), with the real receipt ledger and the real hot path kernel.
 */
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { migrate } from "../../app/src/db/migrate";
import type { Database } from "../../app/src/db/types";
import { createDomain, GENESIS_CONTENT, recordingMetrics, type Domain, type KnowledgeContent, type Sector, type SnapshotChangeEvent } from "../../app/src/domain";
import type { DomainSettings } from "../../app/src/domain";
import { createKernel, type Kernel } from "../../app/src/hotpath";
import { createLedger, registerEphemeralSigner, type Ledger } from "../../app/src/receipts";
import type { TestPostgres } from "../support/postgres";

export interface TestClock {
  now(): Date;
  advance(ms: number): void;
}

/** Starts at the real time and moves only when told (receipts keep real time: they only need order). */
export function testClock(start = Date.now()): TestClock {
  let t = start;
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}

export interface Scenario {
  readonly domain: Domain;
  readonly db: PostgresDatabase;
  readonly owner: PostgresDatabase;
  readonly ledger: Ledger;
  readonly kernel: Kernel;
  readonly clock: TestClock;
  readonly metrics: ReturnType<typeof recordingMetrics>;
  readonly broadcasts: SnapshotChangeEvent[];
  readonly database: string;
  /** Another domain (own pool, ledger, kernel) on the same database: a second replica. */
  replica(settings?: Partial<DomainSettings>): Promise<{ domain: Domain; close(): Promise<void> }>;
  close(): Promise<void>;
}

export interface ScenarioOptions {
  readonly genesis?: Partial<KnowledgeContent>;
  readonly settings?: Partial<DomainSettings>;
}

let counter = 0;

export function content(overrides: Partial<KnowledgeContent> = {}): KnowledgeContent {
  return { ...GENESIS_CONTENT, ...overrides };
}

export async function openScenario(pg: TestPostgres, options: ScenarioOptions = {}): Promise<Scenario> {
  const database = `knhk_${process.pid}_${++counter}`;
  await pg.createDatabase(database);
  const owner = createPostgresDatabase({ connectionString: pg.url(database), max: 4 });
  await migrate(owner);
  await pg.psql(
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'knhk_app') THEN CREATE ROLE knhk_app LOGIN; END IF; END $$; GRANT knhk_service TO knhk_app;",
    database,
  );
  const clock = testClock();
  const settings: DomainSettings = {
    patternWindowSeconds: 60,
    validationTimeoutMs: 10_000,
    mapeKIntervalMs: 200,
    genesisContent: content(options.genesis),
    ...options.settings,
  };
  const resources: { close(): Promise<void> }[] = [];

  async function build(extra: Partial<DomainSettings> = {}) {
    const db = createPostgresDatabase({ connectionString: pg.url(database, "knhk_app"), max: 8 });
    // Keys are registered by the owner (migration 0006): the service role may not.
    const signer = await registerEphemeralSigner(owner);
    const ledger = createLedger({ db, signer });
    const kernel = await createKernel({ capacity: 1024, maxBatch: 16 });
    const metrics = recordingMetrics();
    const broadcasts: SnapshotChangeEvent[] = [];
    const domain = createDomain({
      db,
      ledger,
      kernel,
      clock,
      metrics,
      settings: { ...settings, ...extra },
      broadcaster: { publish: async (event) => void broadcasts.push(event) },
    });
    await domain.init();
    const close = async () => {
      await domain.mapeK.stopScheduler();
      await ledger.close().catch(() => undefined);
      await db.close().catch(() => undefined);
    };
    resources.push({ close });
    return { domain, db, ledger, kernel, metrics, broadcasts, close };
  }

  const main = await build();
  return {
    ...main,
    owner,
    clock,
    database,
    replica: async (extra) => {
      const r = await build(extra);
      return { domain: r.domain, close: r.close };
    },
    async close() {
      for (const r of resources.reverse()) await r.close();
      await owner.close().catch(() => undefined);
    },
  };
}

/** n observations of one type and sector, observed `secondsAgo` before the clock's now (value = index unless given). */
export async function observe(s: Scenario, n: number, event_type: string, sector: Sector, secondsAgo: number, extra: { value?: unknown; metadata?: Record<string, unknown> } = {}): Promise<void> {
  for (let i = 0; i < n; i++) {
    await s.domain.observations.create({ event_type, sector, value: (extra.value ?? i) as never, metadata: extra.metadata as never, observed_at: ago(s.clock, secondsAgo) });
  }
}

/** A fresh scenario for fn, closed afterwards whatever fn does. */
export async function withScenario(pg: TestPostgres, options: ScenarioOptions, fn: (s: Scenario) => Promise<void>): Promise<void> {
  const s = await openScenario(pg, options);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** Receipt operations in chain order. */
export async function receiptOperations(db: Database): Promise<{ operation: string; outcome: string }[]> {
  const { rows } = await db.query<{ operation: string; outcome: string }>("SELECT operation, outcome FROM receipts ORDER BY seq");
  return rows;
}

/** Observations at given offsets (seconds before the clock's now). */
export function ago(clock: TestClock, seconds: number): string {
  return new Date(clock.now().getTime() - seconds * 1000).toISOString();
}
