/**
 * The warm path of KNHK: observations, pattern detection, proposals, validation, knowledge
 * snapshots and the MAPE-K loop. The API's route plugins call the services returned by
 * `createDomain`; every failure a caller can cause is a typed error from ./errors
 * (NotFoundError -> 404, ConflictError -> 409, ValidationError -> 400 naming the field).
 */
import type { Database } from "../db/types";
import type { HotPathKernel } from "./hotpath-port";
import type { DomainMetrics } from "./metrics";
import type { Clock, LedgerPort, SnapshotBroadcaster } from "./ports";
import type {
  AnalyticsReport,
  BatchResult,
  DetectQuery,
  DetectionResult,
  GenerateQuery,
  KnowledgeContent,
  ListQuery,
  MapeKCycle,
  MapeKTrigger,
  Observation,
  ObservationInput,
  ObservationListQuery,
  Page,
  Pattern,
  PatternListQuery,
  Proposal,
  Snapshot,
  SnapshotChangeEvent,
  ValidationReport,
} from "./types";
import { buildDomain } from "./build";
import type { ObservationProof } from "./observation-proof";
export { MERKLE_TREE, proofHolds, type ObservationProof } from "./observation-proof";
export { MAX_BATCH_ITEMS, type BatchOptions, type BatchPrecheck, type IngestOptions } from "./observations";
import type { BatchOptions, IngestOptions } from "./observations";

export * from "./types";
export * from "./errors";
export type { DomainMetrics, DomainCounterName, DomainHistogramName, DomainGaugeName, DomainMetricName } from "./metrics";
export { noMetrics, recordingMetrics } from "./metrics";
export type { Clock, CompanionWrite, CompanionWriter, LedgerPort, ReceiptEntry, SnapshotBroadcaster } from "./ports";
export { systemClock } from "./ports";
export type { HotPathKernel } from "./hotpath-port";
export { contentHash, GENESIS_CONTENT } from "./knowledge";

export type LeadershipState = { readonly eligible: true } | { readonly eligible: false; readonly reason: string };

/**
 * Whether this replica may run the MAPE-K loop (blue-green: only the active colour may). Without
 * a gate every replica may.
 */
export interface LeadershipGate {
  state(): LeadershipState;
  /** Called on every change of eligibility; returns the unsubscribe. */
  onChange(listener: (eligible: boolean) => void): () => void;
}

export interface DomainSettings {
  /** PATTERN_WINDOW_SECONDS: the detection window. */
  readonly patternWindowSeconds: number;
  /** VALIDATION_TIMEOUT_MS: a validation running longer ends with outcome "timeout". */
  readonly validationTimeoutMs: number;
  /** KNHK_MAPE_K_INTERVAL_MS: period of the scheduled loop on the leader. */
  readonly mapeKIntervalMs: number;
  /** Whether the loop's Execute phase promotes proposals that pass validation (default true). */
  readonly autoPromote?: boolean;
  /** Names this replica in cycle records (default: hostname-pid). */
  readonly replicaId?: string;
  /** Content of the genesis snapshot created by init() on an empty database (default GENESIS_CONTENT). */
  readonly genesisContent?: KnowledgeContent;
  /**
   * Who may run the loop: an ineligible replica never competes for the leader lock, a leader that
   * becomes ineligible steps down after its current cycle, and an on-demand execute() on it is
   * refused (ConflictError). Default: always eligible.
   */
  readonly leadership?: LeadershipGate;
}

export interface DomainDeps {
  readonly db: Database;
  readonly ledger: LedgerPort;
  readonly kernel: HotPathKernel;
  readonly clock?: Clock;
  readonly settings: DomainSettings;
  readonly metrics?: DomainMetrics;
  readonly broadcaster?: SnapshotBroadcaster;
}

export interface ObservationService {
  /** Validates, runs append + guards on the hot path, persists, receipts. Guard "reject" -> ValidationError. */
  create(input: ObservationInput, options?: IngestOptions): Promise<Observation>;
  /**
   * Up to MAX_BATCH_ITEMS observations, each validated and guarded on its own (per-item results);
   * the stored ones commit together with one receipt whose evidence holds the Merkle root over
   * their leaves. ValidationError only for the batch as a whole (empty, too many, smoke mixed in).
   */
  createBatch(items: readonly unknown[], options?: BatchOptions): Promise<BatchResult>;
  /** The observation with what proves it: its leaf hash, and for a batch member the inclusion proof to the batch's root. */
  proof(id: string): Promise<ObservationProof>;
  get(id: string): Promise<Observation>;
  list(query?: ObservationListQuery): Promise<Page<Observation>>;
}

export interface PatternService {
  list(query?: PatternListQuery): Promise<Page<Pattern>>;
  get(id: string): Promise<Pattern>;
  /** Runs the four detectors over the window ending now and persists what they find. */
  detect(query?: DetectQuery): Promise<DetectionResult>;
}

export interface AnalyticsService {
  run(query?: DetectQuery): Promise<AnalyticsReport>;
}

export interface ProposalService {
  /** One proposal (and candidate snapshot) per pattern. */
  generate(query?: GenerateQuery): Promise<Proposal[]>;
  get(id: string): Promise<Proposal>;
  /** Static checks, invariants Q1-Q5, doctrine, tick budget; obeys validationTimeoutMs. */
  validate(id: string, options?: { readonly timeoutMs?: number }): Promise<ValidationReport>;
  /** The latest validation report of the proposal (NotFoundError if never validated). */
  validationReport(id: string): Promise<ValidationReport>;
  /** Re-creates a pending proposal's candidate on the current snapshot when its base is stale. */
  rebase(id: string): Promise<Proposal>;
}

export interface SnapshotService {
  list(query?: ListQuery): Promise<Page<Snapshot>>;
  get(id: string): Promise<Snapshot>;
  /** The current snapshot (cached in process; refreshed on promote/rollback and on invalidate). */
  current(): Promise<Snapshot>;
  /** Makes a passed proposal's candidate current (atomic pointer swap), receipts and broadcasts. */
  promote(id: string): Promise<Snapshot>;
  /** Makes the current snapshot's parent current; ConflictError at the genesis snapshot. */
  rollback(): Promise<Snapshot>;
  /** Drops the cached current snapshot; call it when another replica broadcasts a change. */
  invalidate(event?: SnapshotChangeEvent): void;
}

export interface MapeKService {
  /** Runs one Monitor-Analyze-Plan-Execute-Knowledge cycle now; ConflictError on a replica the leadership gate excludes. */
  execute(options?: { readonly trigger?: MapeKTrigger }): Promise<MapeKCycle>;
  getCycle(id: string): Promise<MapeKCycle>;
  /** Competes for leadership (pg advisory lock on a dedicated session) while eligible; the leader runs cycles every mapeKIntervalMs. */
  startScheduler(): void;
  /** Stops the scheduler, waits for a running cycle, releases the lock. */
  stopScheduler(): Promise<void>;
  isLeader(): boolean;
}

export interface Domain {
  readonly observations: ObservationService;
  readonly patterns: PatternService;
  readonly analytics: AnalyticsService;
  readonly proposals: ProposalService;
  readonly snapshots: SnapshotService;
  readonly mapeK: MapeKService;
  /** Creates the genesis snapshot if the database has none (idempotent, safe across replicas). */
  init(): Promise<void>;
}

/** Migrations (app/migrations) must have run on `db` before the domain is used. */
export function createDomain(deps: DomainDeps): Domain {
  return buildDomain(deps);
}
