/** Wires the domain modules together (createDomain in index.ts is the public entry). */
import { hostname } from "node:os";
import type { DomainContext } from "./context";
import type { Domain, DomainDeps } from "./index";
import { GENESIS_CONTENT } from "./knowledge";
import { createMapeK } from "./loop";
import { noMetrics } from "./metrics";
import { createObservationService } from "./observations";
import { createAnalyticsService, createPatternService } from "./patterns";
import { systemClock } from "./ports";
import { createProposalCore } from "./proposals";
import { createSnapshotService } from "./snapshots";
import { createValidationService } from "./validation";

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`settings.${name} must be a positive integer, got ${value}`);
  return value;
}

export function buildDomain(deps: DomainDeps): Domain {
  const s = deps.settings;
  const ctx: DomainContext = {
    db: deps.db,
    ledger: deps.ledger,
    kernel: deps.kernel,
    clock: deps.clock ?? systemClock,
    metrics: deps.metrics ?? noMetrics,
    broadcaster: deps.broadcaster,
    replicaId: s.replicaId ?? `${hostname()}-${process.pid}`,
    windowSeconds: positive("patternWindowSeconds", s.patternWindowSeconds),
    validationTimeoutMs: positive("validationTimeoutMs", s.validationTimeoutMs),
    mapeKIntervalMs: positive("mapeKIntervalMs", s.mapeKIntervalMs),
    autoPromote: s.autoPromote ?? true,
    genesisContent: s.genesisContent ?? GENESIS_CONTENT,
  };
  const snapshots = createSnapshotService(ctx);
  const patterns = createPatternService(ctx, snapshots);
  const proposalCore = createProposalCore(ctx);
  const validation = createValidationService(ctx);
  const mapeK = createMapeK(ctx, { snapshots, patterns, proposals: proposalCore, validation }, s.leadership);
  let initialised: Promise<void> | undefined;
  return {
    observations: createObservationService(ctx, snapshots),
    patterns: { list: patterns.list, get: patterns.get, detect: patterns.detect },
    analytics: createAnalyticsService(ctx, snapshots),
    proposals: {
      generate: async (query) => (await proposalCore.generateDetailed(query)).proposals,
      get: proposalCore.get,
      rebase: proposalCore.rebase,
      validate: validation.validate,
      validationReport: validation.validationReport,
    },
    snapshots: { list: snapshots.list, get: snapshots.get, current: snapshots.current, promote: snapshots.promote, rollback: snapshots.rollback, invalidate: snapshots.invalidate },
    mapeK,
    init() {
      // Receipts a crashed process staged but never appended go into the chain before anything
      // is served (and the ledger takes its outbox owner lock before the first request stages).
      initialised ??= (async () => {
        await ctx.ledger.recover();
        await snapshots.ensureGenesis();
      })().catch((error) => {
        initialised = undefined;
        throw error;
      });
      return initialised;
    },
  };
}
