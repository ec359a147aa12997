/**
 * /health reports Vault beside database and Redis: the credentials Vault Agent renders
 * (DATABASE_URL_FILE) present and fresh (rendered within KNHK_VAULT_CREDENTIALS_MAX_AGE_SECONDS).
 * The probe on real files, and the service (its own process, knhk_app on PostgreSQL 15) reporting
 * healthy, then degraded when the file goes stale, then down when it is gone.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeCredentialFile } from "../../app/src/server/vault-credentials";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startKnhkService, type KnhkService } from "../support/knhk-service";
import { startPostgres, type TestPostgres } from "../support/postgres";

const dir = mkdtempSync(join(tmpdir(), "knhk-vault-creds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("probeCredentialFile", () => {
  const file = join(dir, "probe-url");
  const now = Date.now();

  test("present and rendered within the max age: healthy", async () => {
    writeFileSync(file, "postgres://u@h/d");
    expect(await probeCredentialFile(file, 60, () => now)).toEqual({ state: "healthy" });
  });

  test("older than the max age: degraded, saying how old", async () => {
    writeFileSync(file, "postgres://u@h/d");
    utimesSync(file, new Date(now - 120_000), new Date(now - 120_000));
    const result = await probeCredentialFile(file, 60, () => now);
    expect(result.state).toBe("degraded");
    expect(result.reason).toMatch(/rendered 12\d s ago, max 60 s/);
  });

  test("empty or missing: down, naming the file and never its content", async () => {
    writeFileSync(file, "");
    expect(await probeCredentialFile(file, 60, () => now)).toEqual({ state: "down", reason: `${file}: empty or not a file` });
    expect(await probeCredentialFile(join(dir, "absent"), 60, () => now)).toEqual({ state: "down", reason: `${join(dir, "absent")}: ENOENT` });
  });
});

describe("the service's /health", () => {
  let pg: TestPostgres;
  let oidc: TestOidc;
  let service: KnhkService;
  const urlFile = join(dir, "database-url");

  beforeAll(async () => {
    [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
    const database = "knhk_health_vault";
    writeFileSync(urlFile, pg.url(database, "knhk_app"));
    service = await startKnhkService({ pg, database, env: { ...oidc.env(), DATABASE_URL_FILE: urlFile, KNHK_VAULT_CREDENTIALS_MAX_AGE_SECONDS: "600", KNHK_MAPE_K_INTERVAL_SECONDS: "0" } });
  }, 240_000);

  afterAll(async () => {
    await service?.stop();
    await Promise.all([pg?.destroy(), oidc?.close()]);
  });

  const health = async () => (await fetch(`${service.apiUrl}/health`)).json();

  test("vault healthy while the file is fresh, degraded once stale, down when gone; database stays healthy", async () => {
    expect((await health()).dependencies).toEqual({ database: "healthy", redis: "degraded", vault: "healthy" });
    const old = new Date(Date.now() - 3600_000);
    utimesSync(urlFile, old, old);
    expect(await health()).toMatchObject({ status: "degraded", dependencies: { database: "healthy", vault: "degraded" } });
    rmSync(urlFile);
    expect(await health()).toMatchObject({ status: "degraded", dependencies: { database: "healthy", vault: "down" } });
  }, 60_000);
});
