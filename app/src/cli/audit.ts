/**
 * `knhk audit log --actor X --action Y --target Z [--outcome W] [--details '{"k":"v"}']`
 * appends one audit event (used by the deploy and rollback scripts) and prints it as JSON.
 * Exit 0 when stored, 2 on bad input (the message names the field).
 *
 * `knhk audit verify-log [--checkpoint <file>] [--format text|json]` replays the audit log's
 * Merkle tree from the entries and compares it with every signed checkpoint (and one an auditor
 * kept): exit 0 when everything holds, 1 when an entry was changed, removed or the log rewritten,
 * 2 on bad usage. `knhk audit verify-bucket --bucket <name>` checks the audit log published under
 * audit/tlog/ from the bucket alone, as `receipts audit` does for the receipt log.
 */
import { parseArgs } from "node:util";
import { AuditInputError, appendAudit } from "../audit";
import type { CliContext } from "./context";
import { auditCommand, LogUsageError, verifyAuditLogCommand } from "./receipt-log";

const USAGE = `usage:
  knhk audit log --actor X --action Y --target Z [--outcome W] [--details JSON-object]
  knhk audit verify-log [--checkpoint <file>] [--format text|json]
  knhk audit verify-bucket --bucket <ledger bucket> [--sample N] [--format text|json]
`;

async function logCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      actor: { type: "string" },
      action: { type: "string" },
      target: { type: "string" },
      outcome: { type: "string" },
      details: { type: "string" },
    },
  });
  for (const flag of ["actor", "action", "target"] as const) {
    if (values[flag] === undefined) throw new AuditInputError(`--${flag}`, "required");
  }
  let details: Record<string, unknown> | undefined;
  if (values.details !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values.details);
    } catch (error) {
      throw new AuditInputError("--details", `is not valid JSON (${(error as Error).message})`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new AuditInputError("--details", "must be a JSON object");
    }
    details = parsed as Record<string, unknown>;
  }
  const record = await appendAudit(ctx.db, {
    actor: values.actor as string,
    action: values.action as string,
    target: values.target as string,
    outcome: values.outcome,
    details,
  });
  ctx.stdout.write(JSON.stringify(record) + "\n");
  return 0;
}

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === "log") return await logCommand(rest, ctx);
    if (command === "verify-log") return await verifyAuditLogCommand(rest, ctx);
    if (command === "verify-bucket") return await auditCommand(rest, ctx, "audit");
    if (command === "help" || command === "--help") {
      ctx.stdout.write(USAGE);
      return 0;
    }
    ctx.stderr.write(`audit: ${command === undefined ? "a command is required" : `unknown command ${JSON.stringify(command)}`}\n${USAGE}`);
    return 2;
  } catch (error) {
    const usage = error instanceof AuditInputError || error instanceof LogUsageError || (error as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS");
    if (!usage) throw error;
    ctx.stderr.write(`audit: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
}
