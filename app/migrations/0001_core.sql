-- Warm path storage: knowledge snapshots and the current pointer, observations, patterns,
-- proposals, validation reports and MAPE-K cycles. Ids are UUIDs assigned by the service.

CREATE TABLE knowledge_snapshots (
  id           uuid PRIMARY KEY,
  parent_id    uuid REFERENCES knowledge_snapshots (id),
  version      integer NOT NULL CHECK (version >= 1),
  content      jsonb NOT NULL CHECK (jsonb_typeof(content) = 'object'),
  content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  proposal_id  uuid,
  status       text NOT NULL CHECK (status IN ('current', 'candidate', 'superseded', 'rolled_back')),
  created_at   timestamptz NOT NULL,
  promoted_at  timestamptz,
  seq          bigserial NOT NULL UNIQUE,
  CHECK ((parent_id IS NULL) = (version = 1)),
  CHECK (parent_id IS DISTINCT FROM id)
);
-- Exactly one genesis snapshot, whichever replica creates it first.
CREATE UNIQUE INDEX knowledge_snapshots_one_genesis ON knowledge_snapshots ((parent_id IS NULL)) WHERE parent_id IS NULL;
CREATE INDEX knowledge_snapshots_parent ON knowledge_snapshots (parent_id);

-- The current snapshot: one row, swapped atomically by promotion and rollback.
CREATE TABLE knowledge_current (
  singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  snapshot_id uuid NOT NULL REFERENCES knowledge_snapshots (id),
  changed_at  timestamptz NOT NULL
);

CREATE TABLE snapshot_transitions (
  seq              bigserial PRIMARY KEY,
  kind             text NOT NULL CHECK (kind IN ('promote', 'rollback')),
  from_snapshot_id uuid NOT NULL REFERENCES knowledge_snapshots (id),
  to_snapshot_id   uuid NOT NULL REFERENCES knowledge_snapshots (id),
  at               timestamptz NOT NULL,
  receipt_seq      bigint
);

CREATE TABLE observations (
  seq            bigserial NOT NULL UNIQUE,
  id             uuid PRIMARY KEY,
  event_type     text NOT NULL CHECK (event_type ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  value          jsonb NOT NULL,
  sector         text NOT NULL CHECK (sector IN ('finance', 'healthcare', 'manufacturing', 'logistics', 'generic')),
  metadata       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  observed_at    timestamptz NOT NULL,
  created_at     timestamptz NOT NULL,
  snapshot_id    uuid NOT NULL REFERENCES knowledge_snapshots (id),
  flagged        boolean NOT NULL,
  guards         jsonb NOT NULL CHECK (jsonb_typeof(guards) = 'array'),
  hot_path_ticks integer NOT NULL CHECK (hot_path_ticks >= 0),
  -- An error observation: an error-like event type, or metadata severity/level error|critical|fatal.
  is_error       boolean GENERATED ALWAYS AS (
    event_type ~* '(^|[._:-])(error|errors|failure|failures|failed|fault|faults|exception|exceptions|crash|crashes)($|[._:-])'
    OR lower(coalesce(metadata ->> 'severity', metadata ->> 'level', '')) IN ('error', 'critical', 'fatal')
  ) STORED
);
CREATE INDEX observations_observed_at ON observations (observed_at);
CREATE INDEX observations_type_observed_at ON observations (event_type, observed_at);

CREATE TABLE patterns (
  seq         bigserial NOT NULL UNIQUE,
  id          uuid PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('high_frequency', 'error_spike', 'silence', 'schema_mismatch')),
  event_type  text,
  sector      text CHECK (sector IN ('finance', 'healthcare', 'manufacturing', 'logistics', 'generic')),
  window_start timestamptz NOT NULL,
  window_end  timestamptz NOT NULL,
  detected_at timestamptz NOT NULL,
  score       double precision NOT NULL,
  evidence    jsonb NOT NULL CHECK (jsonb_typeof(evidence) = 'object'),
  snapshot_id uuid NOT NULL REFERENCES knowledge_snapshots (id),
  CHECK (window_start < window_end)
);
CREATE INDEX patterns_kind ON patterns (kind, seq);

CREATE TABLE proposals (
  seq              bigserial NOT NULL UNIQUE,
  id               uuid PRIMARY KEY,
  pattern_id       uuid NOT NULL REFERENCES patterns (id),
  change           jsonb NOT NULL,
  rationale        text NOT NULL,
  snapshot_id      uuid NOT NULL REFERENCES knowledge_snapshots (id),
  base_snapshot_id uuid NOT NULL REFERENCES knowledge_snapshots (id),
  status           text NOT NULL CHECK (status IN ('pending', 'passed', 'failed', 'timeout', 'promoted')),
  created_at       timestamptz NOT NULL
);
CREATE INDEX proposals_pattern ON proposals (pattern_id);

ALTER TABLE knowledge_snapshots
  ADD CONSTRAINT knowledge_snapshots_proposal_fk FOREIGN KEY (proposal_id) REFERENCES proposals (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE validation_reports (
  seq         bigserial NOT NULL UNIQUE,
  id          uuid PRIMARY KEY,
  proposal_id uuid NOT NULL REFERENCES proposals (id),
  snapshot_id uuid NOT NULL REFERENCES knowledge_snapshots (id),
  outcome     text NOT NULL CHECK (outcome IN ('passed', 'failed', 'timeout')),
  checks      jsonb NOT NULL CHECK (jsonb_typeof(checks) = 'array'),
  failures    jsonb NOT NULL,
  warnings    jsonb NOT NULL,
  timeout_ms  integer NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  receipt_seq bigint
);
CREATE INDEX validation_reports_proposal ON validation_reports (proposal_id, seq);

CREATE TABLE mape_k_cycles (
  seq         bigserial NOT NULL UNIQUE,
  id          uuid PRIMARY KEY,
  trigger     text NOT NULL CHECK (trigger IN ('scheduled', 'on_demand')),
  outcome     text NOT NULL CHECK (outcome IN ('success', 'partial_success', 'failed')),
  replica_id  text NOT NULL,
  phases      jsonb NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL
);
