/**
 * `npm run service`: starts the KNHK service (API on KNHK_PORT, /metrics on KNHK_METRICS_PORT).
 * With no DATABASE_URL it runs on embedded PGlite; with no Redis on in-process fallbacks.
 * SIGTERM/SIGINT: graceful stop within KNHK_SHUTDOWN_TIMEOUT_MS, else exit 1.
 */
import { ConfigError } from "./config";
import { startService } from "./server/service";

async function main(): Promise<void> {
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService(process.env);
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : `start-up failed: ${(error as Error).stack ?? String(error)}`;
    process.stderr.write(`${JSON.stringify({ level: "fatal", time: new Date().toISOString(), msg: message })}\n`);
    process.exit(1);
  }
  const shutdown = (signal: string) => {
    process.stderr.write(`${JSON.stringify({ level: "info", time: new Date().toISOString(), msg: `${signal}: shutting down` })}\n`);
    const timer = setTimeout(() => {
      process.stderr.write(`${JSON.stringify({ level: "error", msg: "graceful shutdown timed out" })}\n`);
      process.exit(1);
    }, service.config.shutdownTimeoutMs);
    timer.unref();
    service.stop().then(
      () => process.exit(0),
      (error) => {
        process.stderr.write(`${JSON.stringify({ level: "error", msg: `shutdown failed: ${String(error)}` })}\n`);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

void main();
