/**
 * The local API server's audit log (scripts/cluster.sh writes one JSON event per request a
 * ServiceAccount makes): who did which verb on which object, and what the answer was.
 */
import { existsSync, readFileSync } from "node:fs";
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

export function readAudit(stateDir: string, user?: string): AuditEvent[] {
  const file = join(stateDir, "logs", "audit.log");
  if (!existsSync(file)) throw new Error(`no audit log at ${file} (is the API server started by scripts/cluster.sh?)`);
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line))
    .filter((e) => e.stage === "ResponseComplete" && (!user || e.user?.username === user))
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
