/** Writes `bench/results/<name>.json` with the machine description attached. */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { machineInfo, MachineInfo } from "./machine";

export const RESULTS_DIR = path.resolve(__dirname, "..", "results");

export interface ResultFile<T> {
  readonly benchmark: string;
  readonly machine: MachineInfo;
  readonly data: T;
}

/** Atomically (tmp + rename) writes the result; returns the absolute path written. */
export function writeResult<T>(name: string, data: T, dir: string = RESULTS_DIR): string {
  if (!/^[a-z0-9][a-z0-9_-]*$/i.test(name)) {
    throw new Error(`writeResult: name must be [A-Za-z0-9_-]+ (used as a file name), got "${name}"`);
  }
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const body: ResultFile<T> = { benchmark: name, machine: machineInfo(), data };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(body, null, 2) + "\n");
  renameSync(tmp, file);
  return file;
}
