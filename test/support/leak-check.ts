/** The check behind the global teardown, separate so a unit test can run it on a folder of its own. */
import { describeLeaks, findLeakedGroups, killLeakedGroups } from "./processes";

/** Throws when a group recorded in `pidsDir` is still alive, after killing it. */
export async function checkNoLeakedProcesses(pidsDir: string): Promise<void> {
  const leaks = findLeakedGroups(pidsDir);
  if (leaks.length === 0) return;
  await killLeakedGroups(leaks);
  throw new Error(`${leaks.length} process group(s) started by the tests were still running after every suite ended (now killed):\n${describeLeaks(leaks)}`);
}
