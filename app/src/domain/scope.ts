/**
 * Which observations an analysis reads. Smoke tests and load tests write into the same 7-year
 * ledger as real traffic, in the dedicated sector `smoke`: their observations, and the receipts
 * of those writes (the receipt's signed `sector` field), are marked by it. Analytics, pattern
 * detection and the MAPE-K loop leave that sector out unless a run asks for it by name (the smoke
 * test's own detection, whose patterns and receipt then carry the sector too).
 */
import { SECTORS, SMOKE_SECTOR, type Pattern, type Sector } from "./types";

/** The observations of one sector, or (no sector) every sector except smoke. */
export type ObservationScope = Sector | undefined;

/**
 * SQL condition on the `sector` column (optionally qualified) for a scope. The sector is one of
 * the closed SECTORS (checked here), so it is written as a literal: the queries keep their
 * parameter numbering.
 */
export function scopeCondition(scope: ObservationScope, column = "sector"): string {
  if (scope === undefined) return `${column} <> '${SMOKE_SECTOR}'`;
  if (!(SECTORS as readonly string[]).includes(scope)) throw new Error(`scope: sector ${JSON.stringify(scope)} is not one of ${SECTORS.join(", ")}`);
  return `${column} = '${scope}'`;
}

/** The sector a run's patterns and receipt carry: its scope's, or `generic` for the ledger-wide run. */
export function receiptSector(scope: ObservationScope): Sector {
  return scope ?? "generic";
}

/** A stored pattern's scope, for recounting its evidence: smoke patterns recount smoke, the rest every sector but smoke. */
export function patternScope(pattern: Pick<Pattern, "sector">): ObservationScope {
  return pattern.sector === SMOKE_SECTOR ? SMOKE_SECTOR : undefined;
}
