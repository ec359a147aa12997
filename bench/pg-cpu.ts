/** CPU time of a PostgreSQL cluster (postmaster and its children), read from /proc (Linux). */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const USER_HZ = 100;

/** Microseconds of user + system CPU used so far by the cluster whose data directory is given. */
export function postgresCpuUs(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // Fields after "(comm) ": state ppid ... utime(14th field overall) stime(15th).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(entry) !== postmaster && Number(fields[1]) !== postmaster) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1e6) / USER_HZ;
}
