/** jest globalSetup: a PID folder for this run, inherited by the workers through the environment. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PIDS_DIR_ENV } from "./processes";

export default function globalSetup(): void {
  // One folder per run: engineers running jest side by side must not see each other's processes.
  const dir = join(__dirname, "..", "..", ".out", "test-pids", `run-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  process.env[PIDS_DIR_ENV] = dir;
}
