/**
 * A throwaway S3 API emulator for tests: moto's standalone server (PyPI `moto[server]==5.2.5`,
 * installed by scripts/install-deps.sh) on a free loopback port, state in memory.
 *
 *   const moto = await startMoto();
 *   moto.endpoint                     // http://127.0.0.1:PORT (use path-style addressing)
 *   moto.env                          // AWS_* variables that point an SDK client at it
 *   await moto.reset();               // drop every bucket (POST /moto-api/reset)
 *   await moto.destroy();
 */
import { freePort, waitFor } from "./ports";
import { spawnTracked } from "./processes";

export const MOTO_VERSION = "5.2.5";
/** Dummy credentials: moto accepts any; they exist so the SDK signs requests. */
export const MOTO_CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" } as const;
export const MOTO_REGION = "eu-central-1";

export interface TestMoto {
  readonly port: number;
  readonly endpoint: string;
  readonly env: Readonly<Record<string, string>>;
  reset(): Promise<void>;
  destroy(): Promise<void>;
}

async function responds(endpoint: string): Promise<boolean> {
  const response = await fetch(`${endpoint}/moto-api/data.json`);
  return response.ok;
}

export async function startMoto(): Promise<TestMoto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let output = "";
  const server = spawnTracked("moto_server", ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  server.child.stdout?.on("data", keep);
  server.child.stderr?.on("data", keep);
  const spawnError = new Promise<never>((_, reject) => server.child.once("error", (e) => reject(new Error(`moto_server: ${e.message} (install: pip install 'moto[server]==${MOTO_VERSION}')`))));
  try {
    await Promise.race([waitFor(`moto_server on ${port}`, () => responds(endpoint), 30_000, 100), spawnError]);
  } catch (error) {
    await server.stop("SIGKILL");
    throw new Error(`${(error as Error).message}\n${output}`);
  }
  return {
    port,
    endpoint,
    env: {
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      AWS_REGION: MOTO_REGION,
      AWS_ENDPOINT_URL_S3: endpoint,
    },
    async reset() {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
      if (!response.ok) throw new Error(`moto reset: HTTP ${response.status}`);
    },
    async destroy() {
      await server.stop("SIGTERM", 5000);
    },
  };
}
