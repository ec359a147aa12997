/**
 * The search behind "highest sustained load": climb a ladder of load levels until one fails,
 * then bisect between the last level that held and the first that did not, within a step budget.
 */

export interface LadderStep {
  /** Load level (connections, or an offered rate). */
  readonly level: number;
  /** The step met every condition (all responses good, latency under target). */
  readonly sustained: boolean;
  readonly throughputPerSecond: number;
}

export interface LadderResult<S extends LadderStep> {
  /** Every measured step in the order it ran. */
  readonly steps: S[];
  /** The sustained step with the highest throughput (more load can hold latency and not add throughput). */
  readonly best: S | null;
}

export async function climbLadder<S extends LadderStep>(
  ladder: readonly number[],
  maxSteps: number,
  measure: (level: number) => Promise<S>,
): Promise<LadderResult<S>> {
  if (ladder.length === 0) throw new Error("climbLadder: the ladder needs at least one level");
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new Error(`climbLadder: maxSteps must be a positive integer, got ${maxSteps}`);
  ladder.forEach((level, i) => {
    if (!(level > 0) || (i > 0 && level <= ladder[i - 1])) throw new Error(`climbLadder: levels must be positive and increasing, got ${ladder.join(", ")}`);
  });
  const steps: S[] = [];
  let good: S | undefined;
  let bad: S | undefined;
  for (const level of ladder) {
    if (steps.length >= maxSteps) break;
    const step = await measure(level);
    steps.push(step);
    if (!step.sustained) {
      bad = step;
      break;
    }
    good = step;
  }
  while (good && bad && bad.level - good.level > 1 && steps.length < maxSteps) {
    const step = await measure(Math.floor((good.level + bad.level) / 2));
    steps.push(step);
    if (step.sustained) good = step;
    else bad = step;
  }
  const best = steps.filter((s) => s.sustained).sort((a, b) => b.throughputPerSecond - a.throughputPerSecond)[0] ?? null;
  return { steps, best };
}
