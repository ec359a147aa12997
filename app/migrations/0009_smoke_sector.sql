-- Smoke and load tests write into the same ledger as real traffic, in the dedicated sector
-- `smoke` (app/src/domain/scope.ts): analytics, pattern detection and the MAPE-K loop leave it out.
ALTER TABLE observations DROP CONSTRAINT observations_sector_check;
ALTER TABLE observations ADD CONSTRAINT observations_sector_check
  CHECK (sector IN ('finance', 'healthcare', 'manufacturing', 'logistics', 'generic', 'smoke'));
ALTER TABLE patterns DROP CONSTRAINT patterns_sector_check;
ALTER TABLE patterns ADD CONSTRAINT patterns_sector_check
  CHECK (sector IN ('finance', 'healthcare', 'manufacturing', 'logistics', 'generic', 'smoke'));
