/**
 * Every process a test starts, started and stopped one way: in its own process group, tracked
 * in a PID file the global teardown (test/support/global-teardown.ts) checks.
 *
 *   const p = spawnTracked("redis-server", ["--port", "6390"], { stdio: "ignore" });
 *   p.signal("SIGKILL");        // a crash drill: the whole group, no waiting
 *   await p.stop();             // SIGTERM to the group, SIGKILL after the grace period, await exit
 *
 * Why groups: a launcher (`npx`, `runuser`, `sh -c`) forwards nothing when it is killed, so its
 * child keeps running (and listening) after the test ends. Signalling `-pid` reaches them all.
 * A process that starts its own session (PostgreSQL under pg_ctl or Patroni) leaves the group:
 * its owner stops it explicitly (pg_ctl stop).
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Environment variable naming the PID folder of this jest run (set by test/support/global-setup.ts). */
export const PIDS_DIR_ENV = "KNHK_TEST_PIDS_DIR";
const DEFAULT_PIDS_DIR = join(__dirname, "..", "..", ".out", "test-pids", "unmanaged");
const DEFAULT_GRACE_MS = 10_000;

export function trackedPidsDir(): string {
  return process.env[PIDS_DIR_ENV] ?? DEFAULT_PIDS_DIR;
}

export interface TrackedProcess {
  readonly child: ChildProcess;
  /** PID of the group leader, which is also the process group id. */
  readonly pid: number;
  /** Resolves when the group leader has exited (whoever ended it). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** Sends `signal` to the whole group without waiting (crash drills). */
  signal(signal: NodeJS.Signals): void;
  /** Ends the whole group: `signal` (SIGTERM), then SIGKILL after `graceMs`; resolves once every member is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface TrackedSpawnOptions extends Omit<SpawnOptions, "detached"> {
  /** Folder of the PID files (default: this run's, see trackedPidsDir()). */
  readonly pidsDir?: string;
}

interface PidRecord {
  readonly pid: number;
  readonly startTime: string | undefined;
  readonly command: string;
}

export function spawnTracked(command: string, args: readonly string[], options: TrackedSpawnOptions = {}): TrackedProcess {
  const { pidsDir = trackedPidsDir(), ...spawnOptions } = options;
  const child = spawn(command, [...args], { ...spawnOptions, detached: true });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    // A command that cannot start never gets a PID and never runs: nothing to stop.
    child.once("error", () => {
      if (child.pid === undefined) {
        done = true;
        resolve({ code: null, signal: null });
      }
    });
  });
  const pid = child.pid;
  const release = pid === undefined ? undefined : recordGroup(pid, describeCommand(command, args), pidsDir);

  const tracked: TrackedProcess = {
    child,
    pid: pid ?? -1,
    exited,
    hasExited: () => done,
    signal(sig) {
      if (pid !== undefined) signalGroup(pid, sig);
    },
    async stop(sig = "SIGTERM", graceMs = DEFAULT_GRACE_MS) {
      if (pid === undefined) return;
      signalGroup(pid, sig);
      const deadline = Date.now() + graceMs;
      while ((!done || groupMembers(pid).length > 0) && Date.now() < deadline) await sleep(50);
      if (!done || groupMembers(pid).length > 0) {
        signalGroup(pid, "SIGKILL");
        await exited;
        while (groupMembers(pid).length > 0) await sleep(50);
      }
      release?.();
    },
  };
  return tracked;
}

/**
 * Puts a process group that something else started (a script that detaches its servers with
 * setsid) under the same leak check: returns the function that takes it off once it is gone.
 */
export function recordGroup(pgid: number, command: string, pidsDir = trackedPidsDir()): () => void {
  mkdirSync(pidsDir, { recursive: true });
  const pidFile = join(pidsDir, `${process.pid}-${pgid}.json`);
  const record: PidRecord = { pid: pgid, startTime: startTimeOf(pgid), command: command.slice(0, 200) };
  writeFileSync(pidFile, JSON.stringify(record));
  return () => rmSync(pidFile, { force: true });
}

/** A process of a group, as /proc shows it. */
export interface GroupMember {
  readonly pid: number;
  readonly command: string;
}

/** Live (not zombie) processes whose process group is `pgid` (Linux /proc). */
export function groupMembers(pgid: number): GroupMember[] {
  const members: GroupMember[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== "Z" && stat.state !== "X") members.push({ pid: Number(entry), command: commandLineOf(Number(entry)) ?? stat.comm });
  }
  return members;
}

export interface LeakedGroup {
  readonly pid: number;
  readonly command: string;
  readonly survivors: readonly GroupMember[];
}

/** Groups recorded in `pidsDir` that still have a live member (a leader whose PID was reused is not one). */
export function findLeakedGroups(pidsDir: string): LeakedGroup[] {
  let files: string[];
  try {
    files = readdirSync(pidsDir).filter((f) => f.endsWith(".json"));
  } catch {
    return [];
  }
  const leaks: LeakedGroup[] = [];
  for (const file of files) {
    let record: PidRecord;
    try {
      record = JSON.parse(readFileSync(join(pidsDir, file), "utf8")) as PidRecord;
    } catch {
      continue; // half-written by a worker that died mid-write: nothing was started after it
    }
    const leaderReused = record.startTime !== undefined && startTimeOf(record.pid) !== undefined && startTimeOf(record.pid) !== record.startTime;
    if (leaderReused) continue;
    const survivors = groupMembers(record.pid);
    if (survivors.length > 0) leaks.push({ pid: record.pid, command: record.command, survivors });
  }
  return leaks;
}

/** SIGKILLs every leaked group and waits until they are gone. */
export async function killLeakedGroups(leaks: readonly LeakedGroup[]): Promise<void> {
  for (const leak of leaks) signalGroup(leak.pid, "SIGKILL");
  const deadline = Date.now() + 10_000;
  while (leaks.some((l) => groupMembers(l.pid).length > 0) && Date.now() < deadline) await sleep(50);
}

export function describeLeaks(leaks: readonly LeakedGroup[]): string {
  return leaks
    .map((l) => `  group ${l.pid} (${l.command}): ${l.survivors.map((s) => `${s.pid} ${s.command}`).join("; ")}`)
    .join("\n");
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is empty already
  }
}

function readStat(pid: number): { comm: string; state: string; pgrp: number; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses: the fields after it start at the last ")".
  const close = text.lastIndexOf(")");
  const comm = text.slice(text.indexOf("(") + 1, close);
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is field 3 (state) of proc(5); pgrp is field 5, starttime field 22.
  return { comm, state: fields[0], pgrp: Number(fields[2]), startTime: fields[19] };
}

function startTimeOf(pid: number): string | undefined {
  return readStat(pid)?.startTime;
}

function commandLineOf(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    return text ? text.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

/** The command and its arguments, cut short: arguments are paths and ports here, never secrets (those go in env). */
function describeCommand(command: string, args: readonly string[]): string {
  return [command, ...args].join(" ").slice(0, 200);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
