/**
 * The process-group helper and the leak check the global teardown runs: a deliberately leaked
 * `sleep` fails the check, an orphaned grandchild (the `npx` case) too, and stop() leaves nothing.
 * Each test uses a PID folder of its own, never the run's.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkNoLeakedProcesses } from "./leak-check";
import { findLeakedGroups, groupMembers, spawnTracked } from "./processes";
import { waitFor } from "./ports";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "knhk-pids-test-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

it("a leaked sleep fails the check, which kills it", async () => {
  const sleeper = spawnTracked("sleep", ["300"], { pidsDir: dir, stdio: "ignore" });
  expect(findLeakedGroups(dir).map((l) => l.command)).toEqual(["sleep 300"]);
  await expect(checkNoLeakedProcesses(dir)).rejects.toThrow(/1 process group\(s\) started by the tests were still running[\s\S]*sleep 300/);
  expect(await sleeper.exited).toMatchObject({ signal: "SIGKILL" });
  expect(groupMembers(sleeper.pid)).toEqual([]);
  await expect(checkNoLeakedProcesses(dir)).resolves.toBeUndefined();
});

it("a child that outlives its launcher is a leak (the npx case), and stop() ends it", async () => {
  const launcher = spawnTracked("sh", ["-c", "sleep 300 & wait"], { pidsDir: dir, stdio: "ignore" });
  await waitFor("the grandchild", async () => groupMembers(launcher.pid).some((m) => m.command.startsWith("sleep")), 10_000, 20);
  process.kill(launcher.pid, "SIGKILL"); // only the launcher, as `child.kill()` did
  await launcher.exited;
  const [leak] = findLeakedGroups(dir);
  expect(leak.survivors.map((s) => s.command)).toEqual(["sleep 300"]);
  await launcher.stop();
  expect(findLeakedGroups(dir)).toEqual([]);
  expect(readdirSync(dir)).toEqual([]);
});

it("stop() escalates to SIGKILL when the group ignores SIGTERM", async () => {
  // An ignored signal stays ignored across exec: the sleep ignores SIGTERM too.
  const stubborn = spawnTracked("sh", ["-c", "trap '' TERM; sleep 300 & wait"], { pidsDir: dir, stdio: "ignore" });
  await waitFor("the grandchild", async () => groupMembers(stubborn.pid).length === 2, 10_000, 20);
  await stubborn.stop("SIGTERM", 300);
  expect(await stubborn.exited).toMatchObject({ signal: "SIGKILL" });
  expect(groupMembers(stubborn.pid)).toEqual([]);
  expect(findLeakedGroups(dir)).toEqual([]);
});

it("a recorded group whose processes all ended is no leak", async () => {
  const quick = spawnTracked("true", [], { pidsDir: dir, stdio: "ignore" });
  await quick.exited;
  expect(findLeakedGroups(dir)).toEqual([]);
});
