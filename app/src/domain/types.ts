/** Public data types of the warm path domain (JSON-serialisable; timestamps are ISO-8601 strings). */

export const SECTORS = ["finance", "healthcare", "manufacturing", "logistics", "generic", "smoke"] as const;
/** Smoke and load test writes: marked in the ledger, left out of analytics and the MAPE-K loop (domain/scope.ts). */
export const SMOKE_SECTOR = "smoke" satisfies (typeof SECTORS)[number];
export type Sector = (typeof SECTORS)[number];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Datatypes of observation values and metadata entries: exactly PostgreSQL jsonb_typeof() names. */
export const DATATYPES = ["null", "boolean", "number", "string", "array", "object"] as const;
export type Datatype = (typeof DATATYPES)[number];

// ---------------------------------------------------------------------------------------------
// Observations

export interface ObservationInput {
  readonly event_type: string;
  readonly value: JsonValue;
  readonly sector: Sector;
  readonly metadata?: JsonObject;
  /** When it happened; defaults to now. At most 5 s in the future (clock skew), else 400. */
  readonly observed_at?: string;
}

/** One item of a batch ingest, in request order. */
export type BatchItemResult =
  | { readonly index: number; readonly status: "stored"; readonly id: string; readonly seq: number; readonly flagged: boolean }
  /** Failed validation (`field` as items.<index>.<field>). */
  | { readonly index: number; readonly status: "invalid"; readonly field: string; readonly reason: string }
  /** Refused by a guard with action "reject" of the current snapshot. */
  | { readonly index: number; readonly status: "rejected"; readonly guard_id: string; readonly field: string; readonly reason: string };

export interface BatchResult {
  /** Null when no item was stored. */
  readonly batch_id: string | null;
  readonly stored: number;
  readonly invalid: number;
  readonly rejected: number;
  /** Merkle root (RFC 9162, SHA-256) over the stored observations' leaf hashes, in order; the receipt's evidence holds it. */
  readonly merkle_root: string | null;
  /** The batch's receipt (also written when every item was refused by a guard); null when nothing was receipted. */
  readonly receipt_seq: number | null;
  readonly items: readonly BatchItemResult[];
}

export interface GuardOutcome {
  readonly guard_id: string;
  readonly passed: boolean;
  readonly action: GuardAction;
  /** "hot" when the kernel decided it; "warm" when admission parked it and the warm path did. */
  readonly path: "hot" | "warm";
  readonly ticks: number;
  readonly parked_reason?: string;
}

export interface Observation {
  readonly id: string;
  readonly seq: number;
  readonly event_type: string;
  readonly value: JsonValue;
  readonly sector: Sector;
  readonly metadata: JsonObject;
  readonly observed_at: string;
  readonly created_at: string;
  /** The snapshot whose guards were evaluated at ingest. */
  readonly snapshot_id: string;
  /** True when a guard with action "flag" failed. */
  readonly flagged: boolean;
  readonly guards: readonly GuardOutcome[];
  /** Kernel ticks of the append and guard evaluation. */
  readonly hot_path_ticks: number;
}

export interface ListQuery {
  /** 1..1000, default 100. */
  readonly limit?: number;
  /** Opaque cursor from a previous page's next_cursor. */
  readonly cursor?: string;
}

export interface ObservationListQuery extends ListQuery {
  readonly event_type?: string;
  readonly sector?: Sector;
  readonly since?: string;
  readonly until?: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly next_cursor: string | null;
}

// ---------------------------------------------------------------------------------------------
// Knowledge snapshots

export type GuardAction = "reject" | "flag";

/**
 * A guard is one hot path operation per observation over the rows of one field (see
 * hotpath-port.ts). A field is "value" or "metadata.<key>"; an array field contributes one row per
 * element, anything else one row.
 */
export type GuardCheck =
  /** The field is present (ASK_SP). */
  | { readonly op: "required"; readonly path: string }
  /** The field has the datatype (VALIDATE_DATATYPE_SP); an absent field fails. */
  | { readonly op: "datatype"; readonly path: string; readonly datatype: Datatype }
  /** No element is above max (not COMPARE_O_GT); non-numeric elements fail; absent passes. */
  | { readonly op: "max"; readonly path: string; readonly max: number }
  /** No element is below min (not COMPARE_O_LT); non-numeric elements fail; absent passes. */
  | { readonly op: "min"; readonly path: string; readonly min: number };

export interface Guard {
  readonly id: string;
  /** A sector, or "*" for all. */
  readonly sector: Sector | "*";
  /** An event type, or "*" for all. */
  readonly event_type: string;
  readonly check: GuardCheck;
  readonly action: GuardAction;
}

export interface EventSchema {
  readonly value_type: Datatype;
  /** Metadata keys every observation of the event type carries, with their datatypes. */
  readonly metadata: Readonly<Record<string, Datatype>>;
}

export interface KnowledgeContent {
  readonly thresholds: {
    /** High frequency: more than this many observations of one event type per window. */
    readonly high_frequency: { readonly default: number; readonly by_event_type: Readonly<Record<string, number>> };
    /**
     * Error spike, per sector: at least min_errors errors in the window, error ratio >= ratio, and
     * >= factor x the ratio over the baseline_windows windows before it.
     */
    readonly error_spike: { readonly min_errors: number; readonly ratio: number; readonly factor: number; readonly baseline_windows: number };
    /** Silence: seen within lookback_windows windows before the current one, absent in it. */
    readonly silence: { readonly lookback_windows: number };
    /** Schema mismatch: at least this share of the event type's observations in the window differ from its schema. */
    readonly schema_mismatch: { readonly min_ratio: number };
  };
  readonly schemas: Readonly<Record<string, EventSchema>>;
  readonly guards: readonly Guard[];
  /** Event types known to be retired: silence is not reported for them. */
  readonly inactive_event_types: readonly string[];
}

export type SnapshotStatus = "current" | "candidate" | "superseded" | "rolled_back";

export interface Snapshot {
  readonly id: string;
  readonly parent_id: string | null;
  readonly version: number;
  readonly content: KnowledgeContent;
  /** SHA-256 (hex) of the RFC 8785 canonical JSON of content. */
  readonly content_hash: string;
  readonly proposal_id: string | null;
  readonly created_at: string;
  readonly promoted_at: string | null;
  readonly status: SnapshotStatus;
}

export interface SnapshotTransition {
  readonly kind: "promote" | "rollback";
  readonly from_snapshot_id: string;
  readonly to_snapshot_id: string;
  readonly at: string;
  readonly receipt_seq: number | null;
}

/** Sent to every replica when the current snapshot changes, so they refresh their cache. */
export interface SnapshotChangeEvent {
  readonly kind: "promote" | "rollback";
  readonly snapshot_id: string;
  readonly previous_snapshot_id: string;
  readonly version: number;
}

// ---------------------------------------------------------------------------------------------
// Patterns

export const PATTERN_KINDS = ["high_frequency", "error_spike", "silence", "schema_mismatch"] as const;
export type PatternKind = (typeof PATTERN_KINDS)[number];

export interface Pattern {
  readonly id: string;
  readonly kind: PatternKind;
  readonly event_type: string | null;
  readonly sector: Sector | null;
  readonly window_start: string;
  readonly window_end: string;
  readonly detected_at: string;
  /** How far past its threshold the pattern is (>= 1 means detected). */
  readonly score: number;
  /** The figures the detector computed (counts, ratios, thresholds, example observation ids). */
  readonly evidence: JsonObject;
  /** The snapshot whose thresholds and schemas the detector used. */
  readonly snapshot_id: string;
}

export interface DetectQuery {
  /** Overrides PATTERN_WINDOW_SECONDS for this run (1..86400). */
  readonly window_seconds?: number;
  /** Only this sector's observations (`smoke` only when named); default every sector but smoke. */
  readonly sector?: Sector;
}

export interface DetectionResult {
  readonly window_start: string;
  readonly window_end: string;
  readonly observations_in_window: number;
  readonly patterns: readonly Pattern[];
}

export interface PatternListQuery extends ListQuery {
  readonly kind?: PatternKind;
}

export interface AnalyticsReport {
  readonly window_start: string;
  readonly window_end: string;
  readonly total_observations: number;
  readonly error_observations: number;
  readonly error_ratio: number;
  readonly by_event_type: readonly {
    readonly event_type: string;
    readonly count: number;
    readonly errors: number;
    readonly numeric: { readonly count: number; readonly min: number; readonly max: number; readonly mean: number } | null;
  }[];
  readonly by_sector: readonly { readonly sector: Sector; readonly count: number }[];
  readonly flagged_observations: number;
  readonly current_snapshot_id: string;
}

// ---------------------------------------------------------------------------------------------
// Proposals and validation

export type ProposalChange =
  | { readonly kind: "adjust_threshold"; readonly event_type: string; readonly from: number; readonly to: number }
  | { readonly kind: "add_schema"; readonly event_type: string; readonly schema: EventSchema }
  | { readonly kind: "add_guard"; readonly guard: Guard }
  | { readonly kind: "mark_inactive"; readonly event_type: string };

export type ProposalStatus = "pending" | "passed" | "failed" | "timeout" | "promoted";

export interface Proposal {
  readonly id: string;
  readonly pattern_id: string;
  readonly change: ProposalChange;
  readonly rationale: string;
  /** The candidate snapshot: the base snapshot with the change applied. */
  readonly snapshot_id: string;
  readonly base_snapshot_id: string;
  readonly status: ProposalStatus;
  readonly created_at: string;
}

export interface GenerateQuery {
  /** Patterns to plan from; default: every pattern that has no proposal yet (at most 100). */
  readonly pattern_ids?: readonly string[];
}

export type CheckStage = "static" | "invariant" | "doctrine" | "tick_budget";
export type Enforcement = "mandatory" | "warning" | "advisory";

export interface CheckResult {
  readonly stage: CheckStage;
  /** E.g. "S1", "Q3", "D2", "T1". */
  readonly id: string;
  readonly name: string;
  readonly enforcement: Enforcement;
  readonly passed: boolean;
  readonly detail: string;
  readonly figures?: JsonObject;
}

export type ValidationOutcome = "passed" | "failed" | "timeout";

export interface ValidationReport {
  readonly id: string;
  readonly proposal_id: string;
  readonly snapshot_id: string;
  readonly outcome: ValidationOutcome;
  /** Checks run before the outcome was decided (a timeout leaves the rest out). */
  readonly checks: readonly CheckResult[];
  /** Ids of failed mandatory checks, and of warnings. */
  readonly failures: readonly string[];
  readonly warnings: readonly string[];
  readonly timeout_ms: number;
  readonly started_at: string;
  readonly finished_at: string;
  readonly receipt_seq: number | null;
}

// ---------------------------------------------------------------------------------------------
// MAPE-K

export type MapeKTrigger = "scheduled" | "on_demand";
export type MapeKOutcome = "success" | "partial_success" | "failed";
export type MapeKPhase = "monitor" | "analyze" | "plan" | "execute" | "knowledge";

export interface MapeKPhaseResult {
  readonly phase: MapeKPhase;
  readonly ok: boolean;
  readonly detail: JsonObject;
  readonly error?: string;
  readonly receipt_seq: number | null;
}

export interface MapeKCycle {
  readonly id: string;
  readonly trigger: MapeKTrigger;
  readonly outcome: MapeKOutcome;
  readonly replica_id: string;
  readonly phases: readonly MapeKPhaseResult[];
  readonly started_at: string;
  readonly finished_at: string;
}
