/**
 * DATABASE_URL_FILE as an input surface: the file's parser (hostile content never throws and no
 * message repeats a password), reading it (missing, unreadable, oversized, not UTF-8), the watcher
 * that follows it (rename rewrites, garbage, empty and missing files, refused credentials, the
 * poll when the folder cannot be watched), start-up's first read, and the configuration rules.
 */
import fc from "fast-check";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, describeConfig, loadConfig } from "../../app/src/config/env";
import { watchCredentialFile, type CredentialReloadOutcome } from "../../app/src/db/credential-file";
import { databaseKind, readInitialDatabaseUrl } from "../../app/src/db/open";
import { MAX_URL_FILE_BYTES, describeDatabaseUrl, parseDatabaseUrlText, readDatabaseUrlFile, redactPassword } from "../../app/src/db/url-file";
import { waitFor } from "../support/ports";
import { renderFile } from "./shell/dynamic-users";

const CA = "/etc/knhk/postgres-ca/ca.crt";
const GOOD = `postgres://v-knhk-app-a1:S3cr3t-pa55@postgres-primary.knhk.svc:5432/knhk?sslmode=verify-full&sslrootcert=${CA}`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "knhk-url-file-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("no ConfigError");
}

describe("the file's content", () => {
  test("one postgres:// URL, with or without a line break; empty is 'being rewritten', not an error", () => {
    expect(parseDatabaseUrlText(GOOD)).toEqual({ kind: "url", url: GOOD });
    expect(parseDatabaseUrlText(`${GOOD}\n`)).toEqual({ kind: "url", url: GOOD });
    expect(parseDatabaseUrlText(`  ${GOOD}\r\n\n`)).toEqual({ kind: "url", url: GOOD });
    expect(parseDatabaseUrlText("postgresql://u@h/db")).toEqual({ kind: "url", url: "postgresql://u@h/db" });
    expect(parseDatabaseUrlText("")).toEqual({ kind: "absent", why: "empty" });
    expect(parseDatabaseUrlText(" \n\t\n")).toEqual({ kind: "absent", why: "empty" });
  });

  const refusals: [string, string][] = [
    ["garbage", "is not a postgres:// or postgresql:// URL"],
    ["mysql://u:p@h/db", "is not a postgres:// or postgresql:// URL"],
    [`${GOOD}\n${GOOD}`, "must hold one URL on one line"],
    ["postgres://u:p@h/db extra", "contains whitespace or control characters"],
    ["postgres://u:p\u0000@h/db", "contains whitespace or control characters"],
    ["postgres://u:p@h:99999/db", "is not a valid URL"],
    ["postgres://u:%zz@h/db", "has a malformed percent-escape"],
    ["postgres://u:p@/db", "is not a valid URL"],
    ["postgres:///db", "names no host"],
    ["postgres://@h/db", "names no user"],
    ["postgres://h:5432/db", "names no user"],
    ["postgres://u:p@h:5432", "names no database"],
    ["postgres://u:p@h/db?sslmode=verify-fool", "sslmode must be one of disable, prefer, require, verify-ca, verify-full, no-verify"],
    ["p".repeat(MAX_URL_FILE_BYTES + 1), `is larger than ${MAX_URL_FILE_BYTES} bytes`],
  ];
  const title = (text: string) => (text.length > 60 ? `${JSON.stringify(text.slice(0, 20))}... (${text.length} characters)` : JSON.stringify(text));
  test.each(refusals.map(([text, reason]) => [title(text), text, reason]))("%s is refused", (_title, text, reason) => {
    expect(parseDatabaseUrlText(text)).toEqual({ kind: "invalid", reason });
  });

  test("any text: the parser never throws, and a refusal never repeats the text's password", () => {
    const password = fc.string({ minLength: 8, maxLength: 40 }).filter((p) => p.trim().length >= 8);
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), password, fc.string({ maxLength: 50 }), (before, secret, after) => {
        const text = `${before}postgres://user:${secret}@host/db${after}`;
        const parsed = parseDatabaseUrlText(text);
        if (parsed.kind === "invalid") {
          expect(parsed.reason).not.toContain(secret);
          expect(parsed.reason.length).toBeLessThan(120);
        }
      }),
      { numRuns: 500 },
    );
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 300 }), (text) => void parseDatabaseUrlText(text)));
  });

  test("any user, password and database, percent-encoded: accepted as is; the log description names the user and never the password", () => {
    const part = fc.string({ minLength: 1, maxLength: 30 });
    fc.assert(
      // "." and ".." are dot segments of a URL path (even percent-encoded): no URL can name such a database.
      fc.property(part, part.filter((p) => p.length >= 4), part.filter((d) => d !== "." && d !== ".."), (user, password, db) => {
        const url = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:5432/${encodeURIComponent(db)}?sslmode=verify-full`;
        expect(parseDatabaseUrlText(url)).toEqual({ kind: "url", url });
        const description = describeDatabaseUrl(url);
        expect(description.user).toBe(user);
        expect(description.host).toBe("127.0.0.1:5432");
        if (!user.includes(password) && !db.includes(password) && !"127.0.0.1:5432".includes(password)) {
          expect(JSON.stringify(description)).not.toContain(JSON.stringify(password).slice(1, -1));
        }
        const message = `failed for ${password} and ${encodeURIComponent(password)}`;
        expect(redactPassword(message, url)).not.toContain(password);
      }),
      { numRuns: 300 },
    );
  });
});

describe("reading the file", () => {
  test("missing, a folder, oversized, not UTF-8, or a URL: each with a fingerprint that tells rewrites apart", () => {
    const file = join(dir, "database-url");
    expect(readDatabaseUrlFile(file)).toMatchObject({ kind: "absent", why: "missing" });
    mkdirSync(join(dir, "folder"));
    expect(readDatabaseUrlFile(join(dir, "folder"))).toMatchObject({ kind: "invalid", reason: "cannot be read (EISDIR)" });
    writeFileSync(file, Buffer.alloc(MAX_URL_FILE_BYTES + 1, 0x61));
    expect(readDatabaseUrlFile(file)).toMatchObject({ kind: "invalid", reason: `is larger than ${MAX_URL_FILE_BYTES} bytes` });
    writeFileSync(file, Buffer.from([0x70, 0x6f, 0xff, 0xfe]));
    expect(readDatabaseUrlFile(file)).toMatchObject({ kind: "invalid", reason: "is not UTF-8 text" });
    writeFileSync(file, GOOD);
    const first = readDatabaseUrlFile(file);
    expect(first).toMatchObject({ kind: "url", url: GOOD });
    writeFileSync(file, `${GOOD}\n`);
    expect(readDatabaseUrlFile(file).fingerprint).not.toBe(first.fingerprint);
  });

  test("at start-up: a missing file is waited for, garbage stops start-up naming DATABASE_URL_FILE (and not the content)", async () => {
    const file = join(dir, "database-url");
    setTimeout(() => renderFile(file, GOOD), 300);
    await expect(readInitialDatabaseUrl(file, 10_000)).resolves.toBe(GOOD);
    renderFile(file, "S3cr3t-pa55 is not a URL");
    const error = await readInitialDatabaseUrl(file, 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe("DATABASE_URL_FILE");
    expect((error as ConfigError).message).toContain("is not a postgres:// or postgresql:// URL");
    expect((error as ConfigError).message).not.toContain("S3cr3t");
    renderFile(file, "");
    await expect(readInitialDatabaseUrl(file, 500)).rejects.toThrow(/DATABASE_URL_FILE: .* is empty \(waited 500 ms\)/);
  });
});

describe("following the file", () => {
  function follow(file: string, options: { failRotate?: () => boolean; pollMs?: number } = {}) {
    const rotations: string[] = [];
    const outcomes: CredentialReloadOutcome[] = [];
    const logs: string[] = [];
    const watch = watchCredentialFile({
      path: file,
      initialUrl: GOOD,
      rotate: async (url) => {
        if (options.failRotate?.()) throw new Error(`password authentication failed for user "b" (${new URL(url).password})`);
        rotations.push(url);
      },
      log: (level, message, extra) => logs.push(`${level} ${message} ${JSON.stringify(extra ?? {})}`),
      onOutcome: (outcome) => outcomes.push(outcome),
      pollMs: options.pollMs ?? 60_000,
      settleMs: 20,
    });
    return { watch, rotations, outcomes, logs };
  }

  test("a rename rewrite rotates to the new URL; the log names the new user, never the password or the URL", async () => {
    const file = join(dir, "database-url");
    renderFile(file, GOOD);
    const f = follow(file);
    try {
      const next = GOOD.replace("v-knhk-app-a1:S3cr3t-pa55", "v-knhk-app-b2:N3w-pa55w0rd");
      renderFile(file, `${next}\n`);
      await waitFor("the watcher to apply the rewrite", async () => f.rotations.length === 1, 10_000, 20);
      expect(f.rotations).toEqual([next]);
      expect(f.outcomes).toEqual(["applied"]);
      const joined = f.logs.join("\n");
      expect(joined).toContain('"user":"v-knhk-app-b2"');
      expect(joined).toContain("DATABASE_URL_FILE");
      expect(joined).not.toContain("N3w-pa55w0rd");
      expect(joined).not.toContain("S3cr3t");
      expect(joined).not.toContain("postgres://");
      expect(f.watch.describe()).toMatch(/^credentials from DATABASE_URL_FILE .* \(user v-knhk-app-b2, loaded /);
      // The same content again is not a change.
      await f.watch.check();
      expect(f.rotations).toHaveLength(1);
    } finally {
      await f.watch.close();
    }
  });

  test("garbage keeps the last good URL, is logged once naming DATABASE_URL_FILE and counted once; empty and missing files are waited out", async () => {
    const file = join(dir, "database-url");
    renderFile(file, GOOD);
    const f = follow(file);
    try {
      renderFile(file, "S3cr3t-pa55\n");
      await waitFor("the refusal", async () => f.outcomes.length === 1, 10_000, 20);
      await f.watch.check();
      await f.watch.check();
      expect(f.outcomes).toEqual(["invalid"]);
      expect(f.rotations).toEqual([]);
      const refusal = f.logs.filter((l) => l.startsWith("warn DATABASE_URL_FILE: the file is not a postgres:// or postgresql:// URL; keeping the current database credentials"));
      expect(refusal).toHaveLength(1);
      expect(f.logs.join("\n")).not.toContain("S3cr3t");
      expect(f.watch.describe()).toContain("newer content refused: the file is not a postgres:// or postgresql:// URL");

      renderFile(file, "");
      await f.watch.check();
      rmSync(file);
      await f.watch.check();
      expect(f.outcomes).toEqual(["invalid"]);
      expect(f.rotations).toEqual([]);
      expect(f.logs.filter((l) => l.includes("DATABASE_URL_FILE is empty"))).toHaveLength(1);
      expect(f.logs.filter((l) => l.includes("DATABASE_URL_FILE is missing"))).toHaveLength(1);

      // Another garbage is another refusal; the good URL again is simply the current one.
      renderFile(file, "still not a url");
      await f.watch.check();
      expect(f.outcomes).toEqual(["invalid", "invalid"]);
      renderFile(file, GOOD);
      await f.watch.check();
      expect(f.rotations).toEqual([]);
      expect(f.watch.describe()).not.toContain("refused");
    } finally {
      await f.watch.close();
    }
  });

  test("credentials that cannot connect are refused once (without the password in the log) and retried until they work", async () => {
    const file = join(dir, "database-url");
    renderFile(file, GOOD);
    let failing = true;
    const f = follow(file, { failRotate: () => failing });
    try {
      const next = GOOD.replace("S3cr3t-pa55", "N3w-pa55w0rd");
      renderFile(file, next);
      await waitFor("the refusal", async () => f.outcomes.length === 1, 10_000, 20);
      await f.watch.check();
      expect(f.outcomes).toEqual(["probe_failed"]);
      const joined = f.logs.join("\n");
      expect(joined).toContain("DATABASE_URL_FILE: connecting with the new credentials failed: password authentication failed");
      expect(joined).not.toContain("N3w-pa55w0rd");
      failing = false;
      await f.watch.check();
      expect(f.rotations).toEqual([next]);
      expect(f.outcomes).toEqual(["probe_failed", "applied"]);
    } finally {
      await f.watch.close();
    }
  });

  test("when the folder cannot be watched (it does not exist yet), the periodic re-read still picks the file up", async () => {
    const folder = join(dir, "secrets");
    const file = join(folder, "database-url");
    const f = follow(file, { pollMs: 100 });
    try {
      mkdirSync(folder);
      const next = GOOD.replace("v-knhk-app-a1", "v-knhk-app-c3");
      renderFile(file, next);
      await waitFor("the poll to apply the file", async () => f.rotations.length === 1, 10_000, 20);
      expect(f.rotations).toEqual([next]);
    } finally {
      await f.watch.close();
    }
  });
});

describe("configuration", () => {
  test("DATABASE_URL_FILE and DATABASE_URL together stop start-up naming DATABASE_URL_FILE", () => {
    const error = configError({ DATABASE_URL: "postgres://u@h/db", DATABASE_URL_FILE: "/vault/secrets/database-url" });
    expect(error.variable).toBe("DATABASE_URL_FILE");
    expect(error.message).toBe("invalid configuration: DATABASE_URL_FILE: set either DATABASE_URL or DATABASE_URL_FILE, not both");
  });

  test("DATABASE_URL_FILE alone: a postgres database read from the file; DATABASE_MIGRATION_URL may go with it; the summary names the file only", () => {
    const config = loadConfig({ DATABASE_URL_FILE: "/vault/secrets/database-url", DATABASE_MIGRATION_URL: "postgres://owner:pw@h/db" });
    expect(config.database).toMatchObject({ url: undefined, urlFile: "/vault/secrets/database-url", migrationUrl: "postgres://owner:pw@h/db" });
    expect(databaseKind(config.database)).toBe("postgres");
    expect(databaseKind(loadConfig({}).database)).toBe("pglite");
    expect(describeConfig(config).database).toBe("from DATABASE_URL_FILE /vault/secrets/database-url");
    expect(configError({ DATABASE_MIGRATION_URL: "postgres://owner@h/db" }).variable).toBe("DATABASE_MIGRATION_URL");
    expect(configError({ DATABASE_URL_FILE: "a\nb" }).variable).toBe("DATABASE_URL_FILE");
  });

  test("KNHK_COLOR and KNHK_ACTIVE_COLOR_FILE go together; each alone names the missing one; a colour is blue or green", () => {
    expect(configError({ KNHK_COLOR: "blue" })).toMatchObject({ variable: "KNHK_ACTIVE_COLOR_FILE", reason: "required when KNHK_COLOR is set" });
    expect(configError({ KNHK_ACTIVE_COLOR_FILE: "/etc/knhk/active-color/color" })).toMatchObject({ variable: "KNHK_COLOR", reason: "required when KNHK_ACTIVE_COLOR_FILE is set" });
    expect(configError({ KNHK_COLOR: "red", KNHK_ACTIVE_COLOR_FILE: "/f" })).toMatchObject({ variable: "KNHK_COLOR", reason: "must be blue or green" });
    expect(loadConfig({ KNHK_COLOR: "green", KNHK_ACTIVE_COLOR_FILE: "/etc/knhk/active-color/color" }).leadership).toEqual({
      color: "green",
      activeColorFile: "/etc/knhk/active-color/color",
    });
    expect(loadConfig({}).leadership).toBeUndefined();
  });
});
