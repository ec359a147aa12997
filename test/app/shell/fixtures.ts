/** Domain fixtures made through the running service's own domain (not over HTTP). */
import type { Domain, Proposal } from "../../../app/src/domain";

let counter = 0;

/** A proposal that passed validation, built on the current snapshot: ready to promote. */
export async function passedProposal(domain: Domain): Promise<Proposal> {
  const eventType = `fixture.burst_${process.pid}_${++counter}`;
  const current = await domain.snapshots.current();
  const threshold = current.content.thresholds.high_frequency.by_event_type[eventType] ?? current.content.thresholds.high_frequency.default;
  for (let i = 0; i <= threshold; i++) {
    await domain.observations.create({ event_type: eventType, sector: "generic", value: i });
  }
  const detection = await domain.patterns.detect();
  const pattern = detection.patterns.find((p) => p.event_type === eventType && p.kind === "high_frequency");
  if (!pattern) throw new Error(`fixture: no high_frequency pattern for ${eventType}`);
  const [proposal] = await domain.proposals.generate({ pattern_ids: [pattern.id] });
  const report = await domain.proposals.validate(proposal.id, { timeoutMs: 10_000 });
  if (report.outcome !== "passed") throw new Error(`fixture: validation ${report.outcome}: ${JSON.stringify(report.failures)}`);
  return proposal;
}

/** Makes sure the current snapshot has a parent, so a rollback can succeed. */
export async function promotedSnapshot(domain: Domain): Promise<void> {
  const proposal = await passedProposal(domain);
  await domain.snapshots.promote(proposal.snapshot_id);
}
