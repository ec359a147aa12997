/** The highest-sustained-load search: climb, bisect after the first failure, respect the budget. */
import { climbLadder, type LadderStep } from "../../bench/lib/ladder";

/** A fake system that holds its latency up to `limit` and peaks in throughput at `peak`. */
function system(limit: number, peak = Infinity) {
  const measured: number[] = [];
  const measure = async (level: number): Promise<LadderStep> => {
    measured.push(level);
    return { level, sustained: level <= limit, throughputPerSecond: 100 * Math.min(level, peak) - (level > peak ? level : 0) };
  };
  return { measured, measure };
}

test("climbs until a level fails, then bisects to the highest level that holds", async () => {
  const s = system(5);
  const result = await climbLadder([1, 2, 4, 8, 16], 10, s.measure);
  expect(s.measured).toEqual([1, 2, 4, 8, 6, 5]);
  expect(result.best?.level).toBe(5);
  expect(result.steps.map((x) => x.sustained)).toEqual([true, true, true, false, false, true]);
});

test("stops within the step budget and reports the best level found so far", async () => {
  const s = system(5);
  const result = await climbLadder([1, 2, 4, 8, 16], 4, s.measure);
  expect(s.measured).toEqual([1, 2, 4, 8]);
  expect(result.best?.level).toBe(4);
});

test("the best step is the fastest sustained one, not the highest level", async () => {
  const s = system(16, 4);
  const result = await climbLadder([1, 2, 4, 8, 16], 10, s.measure);
  expect(result.best?.level).toBe(4);
});

test("nothing sustained: no best step, and no bisection below the first level", async () => {
  const s = system(0);
  const result = await climbLadder([1, 2, 4], 10, s.measure);
  expect(s.measured).toEqual([1]);
  expect(result.best).toBeNull();
});

test("a ladder that is empty or not increasing is refused", async () => {
  const s = system(5);
  await expect(climbLadder([], 3, s.measure)).rejects.toThrow(/at least one level/);
  await expect(climbLadder([1, 4, 2], 3, s.measure)).rejects.toThrow(/increasing/);
  await expect(climbLadder([1, 2], 0, s.measure)).rejects.toThrow(/maxSteps/);
});
