/** CPU pinning for benchmark children: lowers run-to-run spread on shared machines. */
import { spawnSync } from "node:child_process";

let tasksetAvailable: boolean | undefined;

export function hasTaskset(): boolean {
  if (tasksetAvailable === undefined) {
    tasksetAvailable = spawnSync("taskset", ["--version"], { stdio: "ignore" }).status === 0;
  }
  return tasksetAvailable;
}

/** [command, ...args] prefixed with `taskset -c <cpu>` when available (and cpu is given). */
export function pinnedCommand(argv: readonly string[], cpu?: number): string[] {
  if (cpu === undefined || !hasTaskset()) return [...argv];
  return ["taskset", "-c", String(cpu), ...argv];
}

/** Pins the current process to one CPU (best effort); returns true when pinned. */
export function pinSelf(cpu: number): boolean {
  if (!hasTaskset()) return false;
  return spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(process.pid)], { stdio: "ignore" }).status === 0;
}
