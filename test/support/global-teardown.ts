/**
 * jest globalTeardown: the run fails when a process a suite started (spawnTracked) is still
 * alive; the leftovers are killed so they do not hold ports until someone notices.
 */
import { rmSync } from "node:fs";
import { checkNoLeakedProcesses } from "./leak-check";
import { PIDS_DIR_ENV } from "./processes";

export default async function globalTeardown(): Promise<void> {
  const dir = process.env[PIDS_DIR_ENV];
  if (!dir) throw new Error(`${PIDS_DIR_ENV} is not set: test/support/global-setup.ts did not run`);
  await checkNoLeakedProcesses(dir);
  rmSync(dir, { recursive: true, force: true });
}
