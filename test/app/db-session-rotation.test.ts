/**
 * Credential rotation in the database layer (app/src/db/postgres.ts rotate, session.ts) on a real
 * PostgreSQL 15 with password authentication, with users created and revoked by Vault's rendered
 * statements: sessions move to the new credentials holding their advisory locks with no moment a
 * third session could take one; a lock someone waits for is not moved early; a session whose
 * connection was revoked away reconnects on renewed credentials and re-takes its locks (or is
 * lost, if another session took one meanwhile); one that drops on current credentials ends as
 * before; a URL that cannot connect changes nothing.
 */
import { migrate } from "../../app/src/db/migrate";
import { createPostgresDatabase, type PostgresDatabase } from "../../app/src/db/postgres";
import { SessionLostError } from "../../app/src/db/session";
import { waitFor } from "../support/ports";
import type { TestPostgres } from "../support/postgres";
import { backendsByUser, issueDynamicUser, revokeDynamicUser, startPasswordPostgres, type DynamicUser } from "./shell/dynamic-users";

jest.setTimeout(120_000);

let pg: TestPostgres;
const DB = "knhk_rotation";
const open: PostgresDatabase[] = [];

beforeAll(async () => {
  pg = await startPasswordPostgres();
  await pg.createDatabase(DB);
  const owner = createPostgresDatabase({ connectionString: pg.url(DB), max: 1 });
  await migrate(owner); // creates the service role the dynamic users join
  await owner.close();
});

afterAll(async () => {
  for (const db of open) await db.close().catch(() => undefined);
  await pg?.destroy();
});

function database(user: DynamicUser, logs: string[] = []): PostgresDatabase {
  const db = createPostgresDatabase(
    { connectionString: user.url(DB), max: 4, connectionTimeoutMillis: 5000 },
    { log: (level, message, extra) => logs.push(`${level} ${message} ${JSON.stringify(extra ?? {})}`) },
  );
  open.push(db);
  return db;
}

/** A signal a session body awaits. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** The user name of the backend holding the given advisory lock (bigint key), or undefined. */
async function holderOf(key: string): Promise<string | undefined> {
  const out = await pg.psql(
    `SELECT a.usename FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND ((l.classid::int8 << 32) | l.objid::int8) = ${key}`,
    DB,
  );
  return out.trim() || undefined;
}

test("a session moves to the new credentials holding its advisory locks, and no other session can take one meanwhile", async () => {
  const a = await issueDynamicUser(pg, DB, "a");
  const b = await issueDynamicUser(pg, DB, "b");
  const db = database(a);
  const keyText = "knhk.rotation.test";
  const key = (await pg.psql(`SELECT hashtextextended('${keyText}', 0)`, DB)).trim();
  const locked = gate();
  const rotated = gate();
  let afterMove: { user: string; unlocked: boolean[] } | undefined;
  const session = db.session(async (s) => {
    await s.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [keyText]);
    await s.query("SELECT pg_advisory_lock(7, -3)");
    await s.query("SELECT pg_advisory_lock_shared(42)");
    locked.open();
    await rotated.opened;
    const user = (await s.query<{ u: string }>("SELECT current_user::text AS u")).rows[0].u;
    const unlocked = (
      await s.query<{ a: boolean; b: boolean; c: boolean }>(
        "SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS a, pg_advisory_unlock(7, -3) AS b, pg_advisory_unlock_shared(42) AS c",
        [keyText],
      )
    ).rows[0];
    afterMove = { user, unlocked: [unlocked.a, unlocked.b, unlocked.c] };
  });
  await locked.opened;
  expect(await holderOf(key)).toBe(a.name);

  // A third session tries to take each lock for as long as the move takes.
  const thief = createPostgresDatabase({ connectionString: pg.url(DB), max: 1 });
  open.push(thief);
  let stop = false;
  let attempts = 0;
  let stolen = 0;
  const stealing = (async () => {
    while (!stop) {
      const r = (
        await thief.query<{ a: boolean; b: boolean; c: boolean }>(
          "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS a, pg_try_advisory_xact_lock(7, -3) AS b, pg_try_advisory_xact_lock(42) AS c",
          [keyText],
        )
      ).rows[0];
      attempts++;
      stolen += [r.a, r.b, r.c].filter(Boolean).length;
    }
  })();

  await db.rotate(b.url(DB));
  await waitFor("the session to leave the old credentials", async () => !(await backendsByUser(pg, DB)).has(a.name), 30_000, 50);
  stop = true;
  await stealing;
  expect(attempts).toBeGreaterThan(0);
  expect(stolen).toBe(0);
  expect(await holderOf(key)).toBe(b.name);

  rotated.open();
  await session;
  expect(afterMove).toEqual({ user: b.name, unlocked: [true, true, true] });
  expect(await holderOf(key)).toBeUndefined();
  expect(db.poolStats().total).toBeGreaterThanOrEqual(0);
  await revokeDynamicUser(pg, DB, a);
  expect((await db.query<{ u: string }>("SELECT current_user::text AS u")).rows[0].u).toBe(b.name);
});

test("a lock another backend waits for is not moved (the waiter would get it first); the session moves once it is free of waiters", async () => {
  const a = await issueDynamicUser(pg, DB, "a");
  const b = await issueDynamicUser(pg, DB, "b");
  const logs: string[] = [];
  const db = database(a, logs);
  const held = gate();
  const release = gate();
  const moved = gate();
  const key = "4242";
  const session = db.session(async (s) => {
    await s.query(`SELECT pg_advisory_lock(${key})`);
    held.open();
    await release.opened;
    await s.query(`SELECT pg_advisory_unlock(${key})`);
    // Still in the session: it now holds no contended lock and moves.
    await moved.opened;
    return (await s.query<{ u: string }>("SELECT current_user::text AS u")).rows[0].u;
  });
  await held.opened;
  const waiter = createPostgresDatabase({ connectionString: pg.url(DB), max: 1 });
  open.push(waiter);
  const waiting = waiter.session(async (s) => {
    await s.query(`SELECT pg_advisory_lock(${key})`);
    const holder = await holderOf(key);
    await s.query(`SELECT pg_advisory_unlock(${key})`);
    return holder;
  });
  await waitFor("the waiter to queue", async () => (await pg.psql(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`, DB)).trim() === "1", 10_000, 20);

  await db.rotate(b.url(DB));
  await waitFor("the postponed move to be logged", async () => logs.some((l) => l.includes("not moved") && l.includes("waits for one of its advisory locks")), 10_000, 20);
  expect(await holderOf(key)).toBe(a.name);

  release.open();
  expect(await waiting).toBe("postgres"); // the waiter got the lock from the session's own unlock
  await waitFor("the session to move", async () => !(await backendsByUser(pg, DB)).has(a.name), 15_000, 50);
  moved.open();
  expect(await session).toBe(b.name);
});

test("a session revoked away before the renewal arrives reconnects on the renewed credentials and re-takes its lock", async () => {
  const a = await issueDynamicUser(pg, DB, "a");
  const logs: string[] = [];
  const db = database(a, logs);
  const key = "5150";
  const held = gate();
  const done = gate();
  const session = db.session(async (s) => {
    await s.query(`SELECT pg_advisory_lock(${key})`);
    held.open();
    await done.opened;
    return (await s.query<{ u: string; mine: boolean }>(`SELECT current_user::text AS u, pg_advisory_unlock(${key}) AS mine`)).rows[0];
  });
  await held.opened;
  await revokeDynamicUser(pg, DB, a); // the lease expired first: the session's backend is gone
  expect(await holderOf(key)).toBeUndefined();
  await expect(db.query("SELECT 1")).rejects.toThrow();

  const b = await issueDynamicUser(pg, DB, "b");
  await db.rotate(b.url(DB));
  await waitFor("the session to re-take its lock", async () => (await holderOf(key)) === b.name, 15_000, 50);
  expect(logs.some((l) => l.includes("re-established after its connection dropped"))).toBe(true);
  done.open();
  expect(await session).toEqual({ u: b.name, mine: true });
});

test("a session whose lock another session took while it was disconnected is lost: its queries fail with SessionLostError", async () => {
  const a = await issueDynamicUser(pg, DB, "a");
  const db = database(a);
  const key = "6160";
  const held = gate();
  const done = gate();
  const session = db.session(async (s) => {
    await s.query(`SELECT pg_advisory_lock(${key})`);
    held.open();
    await done.opened;
    return s.query("SELECT 1");
  });
  await held.opened;
  await revokeDynamicUser(pg, DB, a);
  const other = createPostgresDatabase({ connectionString: pg.url(DB), max: 1 });
  open.push(other);
  const taken = gate();
  const finished = gate();
  const holding = other.session(async (s) => {
    await s.query(`SELECT pg_advisory_lock(${key})`);
    taken.open();
    await finished.opened;
    await s.query(`SELECT pg_advisory_unlock(${key})`);
  });
  await taken.opened;
  const b = await issueDynamicUser(pg, DB, "b");
  await db.rotate(b.url(DB));
  done.open();
  await expect(session).rejects.toBeInstanceOf(SessionLostError);
  finished.open();
  await holding;
});

test("a connection that drops while its credentials are still current ends the session as before: its next query fails", async () => {
  const a = await issueDynamicUser(pg, DB, "a");
  const db = database(a);
  const key = "7170";
  const held = gate();
  const done = gate();
  const session = db.session(async (s) => {
    await s.query(`SELECT pg_advisory_lock(${key})`);
    held.open();
    await done.opened;
    return s.query("SELECT 1");
  });
  await held.opened;
  await pg.psql(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = ${key}`, DB);
  await waitFor("the lock to be free", async () => (await holderOf(key)) === undefined, 10_000, 20);
  done.open();
  await expect(session).rejects.toThrow(/terminat/i);
  expect(await holderOf(key)).toBeUndefined();
  expect((await db.query<{ u: string }>("SELECT current_user::text AS u")).rows[0].u).toBe(a.name);
});

test("rotate refuses credentials that cannot connect, and the database keeps the old ones", async () => {
  const a = await issueDynamicUser(pg, DB, "a");
  const db = database(a);
  const wrong = a.url(DB).replace(encodeURIComponent(a.password), "not-the-password");
  await expect(db.rotate(wrong)).rejects.toThrow(/password authentication failed/);
  await expect(db.rotate(`postgres://nobody:x@127.0.0.1:${pg.port}/${DB}`)).rejects.toThrow();
  expect((await db.query<{ u: string }>("SELECT current_user::text AS u")).rows[0].u).toBe(a.name);
});
