/**
 * Bad input against the real service: malformed JSON, wrong types, unknown fields, oversized
 * bodies, injection strings, bad ids. Each answer is a 4xx naming the field; the service stays up
 * and nothing is half-written (row counts unchanged).
 */
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let admin: string;
const BODY_LIMIT = 4096;

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_BODY_LIMIT_BYTES: String(BODY_LIMIT) });
  admin = await oidc.roleToken("administrator");
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
});

const counts = async () =>
  (await pg.psql("SELECT (SELECT count(*) FROM observations) || ',' || (SELECT count(*) FROM receipts) || ',' || (SELECT count(*) FROM patterns)", svc.database)).trim();

const valid = { event_type: "api.call", value: 12.5, sector: "finance", metadata: { region: "eu" } };
const post = (path: string, json: unknown) => svc.api(`/api/v1${path}`, { method: "POST", token: admin, json });
const raw = (path: string, body: string, contentType = "application/json") =>
  svc.api(`/api/v1${path}`, { method: "POST", token: admin, body, headers: { "content-type": contentType } });

describe("bad bodies: 400 naming the field, nothing written", () => {
  let before: string;
  beforeAll(async () => {
    before = await counts();
  });

  test.each([
    ["event_type of the wrong type", { ...valid, event_type: 42 }, "body.event_type", /string/],
    ["sector outside the enum", { ...valid, sector: "mars" }, "body.sector", /./],
    ["observed_at that is not a timestamp", { ...valid, observed_at: "yesterday" }, "body.observed_at", /date-time/],
    ["missing sector", { event_type: "api.call", value: 1 }, "body.sector", /required/],
    ["missing value", { event_type: "api.call", sector: "generic" }, "body.value", /required/],
    ["an unknown top-level field", { ...valid, is_admin: true }, "body.is_admin", /unknown field/],
    ["metadata that is not an object", { ...valid, metadata: "eu" }, "body.metadata", /object/],
    ["a metadata key with odd characters", { ...valid, metadata: { "a b": 1 } }, "body.metadata.a b", /unknown field/],
    ["an event_type carrying SQL", { ...valid, event_type: "x'; DROP TABLE observations; --" }, "body.event_type", /pattern/],
    ["an event_type carrying markup", { ...valid, event_type: "<script>alert(1)</script>" }, "body.event_type", /pattern/],
    ["an array instead of an object", [valid], "body", /object/],
  ])("%s", async (_name, body, field, reason) => {
    const response = await post("/observations", body);
    expect(response.status).toBe(400);
    expect(response.body.field).toBe(field);
    expect(response.body.reason).toMatch(reason);
    expect(response.body.message).toContain(field);
  });

  test("numbers sent as strings are not coerced in bodies", async () => {
    const response = await post("/patterns/detect", { window_seconds: "60" });
    expect(response.status).toBe(400);
    expect(response.body.field).toBe("body.window_seconds");
  });

  test("malformed JSON", async () => {
    const response = await raw("/observations", '{"event_type": "api.call", "value": ');
    expect(response.status).toBe(400);
    expect(response.body.field).toBe("body");
    expect(response.body.message).toMatch(/JSON/i);
  });

  test("an empty body declared as JSON", async () => {
    const response = await raw("/observations", "");
    expect(response.status).toBe(400);
    expect(response.body.field).toBe("body");
  });

  test("prototype poisoning keys are refused", async () => {
    const response = await raw("/observations", '{"event_type":"api.call","value":1,"sector":"generic","__proto__":{"admin":true}}');
    expect(response.status).toBe(400);
    expect(response.body.field).toBe("body");
  });

  test("a body over the size limit gets 413", async () => {
    const response = await post("/observations", { ...valid, metadata: { blob: "x".repeat(BODY_LIMIT * 2) } });
    expect(response.status).toBe(413);
    expect(response.body.field).toBe("body");
  });

  test("a non-JSON content type gets 415", async () => {
    const response = await raw("/observations", "event_type=api.call", "application/x-www-form-urlencoded");
    expect(response.status).toBe(415);
  });

  test("an observation time far in the future is refused by the domain, naming the field", async () => {
    const response = await post("/observations", { ...valid, observed_at: "2999-01-01T00:00:00Z" });
    expect(response.status).toBe(400);
    expect(response.body.field).toMatch(/observed_at/);
  });

  test("none of the refused requests wrote a row", async () => {
    expect(await counts()).toBe(before);
  });
});

describe("query strings and ids", () => {
  test.each([
    ["/observations?limit=abc", "querystring.limit"],
    ["/observations?limit=5000", "querystring.limit"],
    ["/observations?limit=0", "querystring.limit"],
    ["/observations?sector=mars", "querystring.sector"],
    ["/observations?since=tomorrow", "querystring.since"],
    ["/observations?debug=1", "querystring.debug"],
    ["/patterns?kind=everything", "querystring.kind"],
    ["/receipts?after_seq=-1", "querystring.after_seq"],
    ["/observations/not-a-uuid", "params.id"],
    ["/snapshots/1%27%20OR%20%271%27=%271", "params.id"],
    ["/receipts/../../etc/passwd", undefined],
  ])("GET %s -> 400 or 404 naming %s", async (path, field) => {
    const response = await svc.api(`/api/v1${path}`, { token: admin });
    if (field) {
      expect(response.status).toBe(400);
      expect(response.body.field).toBe(field);
    } else {
      expect(response.status).toBe(404);
    }
  });

  test.each(["/observations", "/snapshots", "/proposals", "/receipts"])("an unknown id under %s is 404", async (base) => {
    const response = await svc.api(`/api/v1${base}/00000000-0000-4000-8000-000000000000`, { token: admin });
    expect(response.status).toBe(404);
    expect(response.body.error).toBe("not_found");
  });

  test("a validation report for an unknown proposal is 404; validating it is 404", async () => {
    const id = "00000000-0000-4000-8000-00000000abcd";
    expect((await svc.api(`/api/v1/proposals/${id}/validation-report`, { token: admin })).status).toBe(404);
    expect((await post(`/proposals/${id}/validate`, {})).status).toBe(404);
  });

  test("generating from an unknown pattern id is 404; from a malformed one 400 naming the item", async () => {
    const unknown = await post("/proposals/generate", { pattern_ids: ["00000000-0000-4000-8000-000000000001"] });
    expect(unknown.status).toBe(404);
    const malformed = await post("/proposals/generate", { pattern_ids: ["nope"] });
    expect(malformed.status).toBe(400);
    expect(malformed.body.field).toBe("body.pattern_ids.0");
  });
});

describe("state conflicts are 409", () => {
  test("rolling back at the genesis snapshot", async () => {
    const response = await post("/snapshots/rollback", {});
    expect(response.status).toBe(409);
    expect(response.body).toMatchObject({ error: "conflict", reason: "at_genesis" });
  });
  test("promoting the snapshot that is already current", async () => {
    const current = (await svc.api("/api/v1/snapshots/current", { token: admin })).body;
    const response = await post(`/snapshots/${current.id}/promote`, {});
    expect(response.status).toBe(409);
    expect(response.body.reason).toBe("already_current");
  });
});

describe("good input still works and is stored verbatim", () => {
  test("injection text inside metadata is data, not code", async () => {
    const payload = { ...valid, metadata: { note: "'; DROP TABLE receipts; --", html: "<img src=x onerror=alert(1)>" } };
    const created = await post("/observations", payload);
    expect(created.status).toBe(201);
    const fetched = await svc.api(`/api/v1/observations/${created.body.id}`, { token: admin });
    expect(fetched.body.metadata).toEqual(payload.metadata);
    expect(await pg.psql("SELECT count(*) > 0 FROM receipts", svc.database)).toMatch(/t/);
  });

  test("POST actions accept no body at all", async () => {
    const response = await svc.api("/api/v1/patterns/detect", { method: "POST", token: admin });
    expect(response.status).toBe(200);
    expect(response.body).toHaveProperty("patterns");
  });

  test("the service is still up and healthy after all of the above", async () => {
    const health = await svc.api("/health");
    expect(health.status).toBe(200);
    expect(health.body.dependencies.database).toBe("healthy");
  });
});

describe("input PostgreSQL cannot store: 400 naming the field, never 500", () => {
  let before: string;
  beforeAll(async () => {
    before = await counts();
  });

  // Sent as JSON text: JSON.stringify writes a lone surrogate as the escape \udXXX, NUL as \u0000.
  test.each([
    ["a NUL in the value", { ...valid, value: "a\u0000b" }, "body.value"],
    ["a lone surrogate in the value", { ...valid, value: "a\ud800" }, "body.value"],
    ["a lone surrogate deep in the value", { ...valid, value: { list: [1, { text: "\udc00" }] } }, "body.value.list.1.text"],
    ["a NUL in an object key of the value", { ...valid, value: { "k\u0000": 1 } }, "body.value.k\\u0000"],
    ["a lone surrogate in an object key of the value", { ...valid, value: { "k\ud83d": 1 } }, "body.value.k\\ud83d"],
    ["a NUL in a metadata value", { ...valid, metadata: { region: "eu\u0000" } }, "body.metadata.region"],
    ["a lone surrogate in a metadata value", { ...valid, metadata: { region: "\udfff" } }, "body.metadata.region"],
    ["a NUL in the event type", { ...valid, event_type: "api\u0000call" }, "body.event_type"],
  ])("%s", async (_name, body, field) => {
    const response = await post("/observations", body);
    expect(response.status).toBe(400);
    expect(response.body.field).toBe(field);
    expect(response.body.message).toContain(field);
  });

  // 10,000 levels at the default body limit: test/app/fuzz-routes.test.ts.
  test("2,000 levels of nesting (within this service's 4 KB limit) are refused before anything recurses", async () => {
    const deep = "[".repeat(2_000) + "]".repeat(2_000);
    const response = await svc.api("/api/v1/observations", {
      method: "POST",
      token: admin,
      body: `{"event_type":"api.call","sector":"finance","value":${deep}}`,
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(400);
    expect(response.body.field).toBe("body");
    expect(response.body.reason).toMatch(/deeper than 64 levels/);
  });

  test.each([
    ["year 0000", "0000-01-01T00:00:00Z"],
    ["an offset into year 0", "0001-01-01T00:30:00+01:00"],
    ["a leap second", "2016-12-31T23:59:60Z"],
    ["an expanded year beyond PostgreSQL's 294276", "+294277-01-01T00:00:00Z"],
  ])("observed_at of %s", async (_name, observedAt) => {
    const response = await post("/observations", { ...valid, observed_at: observedAt });
    expect(response.status).toBe(400);
    expect(response.body.field).toBe("body.observed_at");
  });

  test.each([
    ["since", "0000-01-01T00:00:00Z"],
    ["until", "0000-06-01T00:00:00Z"],
    ["since", "2016-12-31T23:59:60Z"],
    ["until", "9999-12-31T23:59:59-10:00"],
  ])("a list filter %s=%s", async (filter, value) => {
    const response = await svc.api(`/api/v1/observations?${filter}=${encodeURIComponent(value)}`, { token: admin });
    expect(response.status).toBe(400);
    expect(response.body.field).toBe(`querystring.${filter}`);
  });

  test("the bounds themselves are accepted", async () => {
    const list = await svc.api(`/api/v1/observations?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59.999Z&limit=1`, { token: admin });
    expect(list.status).toBe(200);
    const old = await post("/observations", { ...valid, event_type: "api.bounds", observed_at: "0001-01-01T00:00:00Z" });
    expect(old.status).toBe(201);
    expect(old.body.observed_at).toBe("0001-01-01T00:00:00.000Z");
    before = await counts();
  });

  test.each([
    ["1e308", 1e308, "body.value"],
    ["-1e308", -1e308, "body.value"],
    ["a number just past the bound", 1.0000001e15, "body.value"],
    ["a huge number in metadata", 1e300, "body.metadata.region"],
  ])("a value of %s is beyond the documented bound of 1e15", async (_name, n, field) => {
    const body = field === "body.value" ? { ...valid, value: n } : { ...valid, metadata: { region: n } };
    const response = await post("/observations", body);
    expect(response.status).toBe(400);
    expect(response.body.field).toBe(field);
    expect(response.body.reason).toMatch(/1000000000000000/);
  });

  test("a huge integer written as JSON text is refused too", async () => {
    const response = await raw("/observations", '{"event_type":"api.call","sector":"finance","value":123456789012345678901234567890}');
    expect(response.status).toBe(400);
    expect(response.body.field).toBe("body.value");
  });

  test("a hostile id or query string is a 400 naming it", async () => {
    for (const [path, field] of [
      ["/observations/%00", "params.id"],
      // A lone surrogate as (CESU-8) percent-encoding is not UTF-8: the URL itself is refused.
      ["/snapshots/%ED%A0%80", "url"],
      ["/observations?event_type=a%00b", "querystring.event_type"],
    ]) {
      const response = await svc.api(`/api/v1${path}`, { token: admin });
      expect({ path, status: response.status, field: response.body.field }).toEqual({ path, status: 400, field });
    }
  });

  test("none of these wrote a row", async () => {
    expect(await counts()).toBe(before);
  });
});

describe("analytics cannot be poisoned by large stored values", () => {
  test("observations of +-1e308 stored directly by SQL: analytics still answers 200 with their exact extremes", async () => {
    const snapshot = (await svc.api("/api/v1/snapshots/current", { token: admin })).body.id;
    // Bypasses the ingest bound, as rows stored before it existed would.
    await pg.psql(
      `INSERT INTO observations (id, event_type, value, sector, metadata, observed_at, created_at, snapshot_id, flagged, guards, hot_path_ticks)
       SELECT gen_random_uuid(), 'api.poison', v::jsonb, 'finance', '{}', now() - interval '1 second', now(), '${snapshot}', false, '[]', 0
       FROM unnest(ARRAY['1e308', '1e308', '-1e308', '1.7976931348623157e308']) v`,
      svc.database,
    );
    const response = await post("/analytics/run", { window_seconds: 3600 });
    expect(response.status).toBe(200);
    const poison = response.body.by_event_type.find((e: { event_type: string }) => e.event_type === "api.poison");
    expect(poison.numeric.count).toBe(4);
    expect(poison.numeric.max).toBe(1.7976931348623157e308);
    expect(poison.numeric.min).toBe(-1e308);
    // (1e308 + 1e308 - 1e308 + 1.797...e308) / 4, computed without overflowing as JavaScript would.
    const expectedMean = 1e308 / 4 + 1.7976931348623157e308 / 4;
    expect(Math.abs(poison.numeric.mean / expectedMean - 1)).toBeLessThan(1e-12);
  });
});
