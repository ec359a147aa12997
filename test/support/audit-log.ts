/**
 * The local API server's audit log (scripts/cluster.sh writes one JSON event per request a
 * ServiceAccount makes): who did which verb on which object, and what the answer was.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface AuditEvent {
  readonly user: string;
  readonly verb: string;
  readonly resource: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly code: number;
  readonly at: string;
}

/**
 * The audit events of `user` (a user name, or every user whose name starts with `prefix`),
 * oldest first: the API server rotates the log (`--audit-log-maxsize`), so the rotated files
 * (`audit-<time>.log`) are read before audit.log.
 */
export function readAudit(stateDir: string, user: string | { readonly prefix: string }): AuditEvent[] {
  const dir = join(stateDir, "logs");
  if (!existsSync(join(dir, "audit.log"))) throw new Error(`no audit log at ${join(dir, "audit.log")} (is the API server started by scripts/cluster.sh?)`);
  const rotated = readdirSync(dir).filter((f) => /^audit-.+\.log$/.test(f)).sort();
  // A cheap text match first: a run's log holds hundreds of thousands of events.
  const mentionsUser = typeof user === "string" ? `"username":${JSON.stringify(user)}` : `"username":${JSON.stringify(user.prefix).slice(0, -1)}`;
  const isUser = (name: string | undefined) => (typeof user === "string" ? name === user : !!name?.startsWith(user.prefix));
  return [...rotated, "audit.log"]
    .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n"))
    .filter((line) => line.trim() && line.includes(mentionsUser))
    .map((line) => JSON.parse(line))
    .filter((e) => e.stage === "ResponseComplete" && isUser(e.user?.username))
    .map((e) => ({
      user: e.user?.username,
      verb: e.verb,
      resource: e.objectRef?.resource ?? "",
      name: e.objectRef?.name,
      namespace: e.objectRef?.namespace,
      code: e.responseStatus?.code ?? 0,
      at: e.stageTimestamp,
    }));
}

/** `resource/verb` of each event, as PolicyRule verbs name them. */
export function resourceVerb(e: AuditEvent): string {
  return `${e.resource}/${e.verb}`;
}
