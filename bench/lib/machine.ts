/** Describes the machine a benchmark ran on, so figures are read next to their hardware. */
import { readFileSync } from "node:fs";
import * as os from "node:os";

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
  readonly kernel: string;
  readonly date: string;
}

function cpuModelFromProc(): string | undefined {
  try {
    const text = readFileSync("/proc/cpuinfo", "utf8");
    const line = text.split("\n").find((l) => /^model name\s*:/.test(l));
    return line?.split(":").slice(1).join(":").trim() || undefined;
  } catch {
    return undefined;
  }
}

export function machineInfo(): MachineInfo {
  return {
    cpuModel: cpuModelFromProc() ?? os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    date: new Date().toISOString(),
  };
}
