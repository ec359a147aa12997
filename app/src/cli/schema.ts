/**
 * `knhk schema <command>`: the database schema.
 *
 *   schema migrate   apply this build's migrations (as the schema owner: the pre-deploy migration Job)
 *   schema status    print what is applied; exit 1 when migrations are missing
 */
import { migrate } from "../db/migrate";
import { describeSchemaStatus, schemaStatus } from "../db/schema-status";
import type { CliRun } from "./context";

const USAGE = "usage: knhk schema migrate | status\n";

export const run: CliRun = async (args, ctx) => {
  const [command, ...rest] = args;
  if (!command || command === "--help" || command === "-h") {
    (command ? ctx.stdout : ctx.stderr).write(USAGE);
    return command ? 0 : 2;
  }
  if (rest.length > 0) {
    ctx.stderr.write(`schema ${command}: unexpected argument ${rest[0]}\n${USAGE}`);
    return 2;
  }
  if (command === "migrate") {
    const applied = await migrate(ctx.db);
    const status = await schemaStatus(ctx.db);
    ctx.stdout.write(`${JSON.stringify({ applied, ...status, message: describeSchemaStatus(status) })}\n`);
    return status.ready ? 0 : 1;
  }
  if (command === "status") {
    const status = await schemaStatus(ctx.db);
    ctx.stdout.write(`${JSON.stringify({ ...status, message: describeSchemaStatus(status) })}\n`);
    return status.ready ? 0 : 1;
  }
  ctx.stderr.write(`unknown schema command '${command}'\n${USAGE}`);
  return 2;
};
