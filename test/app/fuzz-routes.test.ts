/**
 * Property-based fuzzing of every /api/v1 route's input (path params, query string, body) against
 * the real service on a real PostgreSQL 15, running as the least-privileged login role (member of
 * knhk_service only; migrations ran as the owner: test/app/shell/service.ts).
 *
 * Inputs come from a corpus of hostile strings (NUL, lone surrogates, overlong UTF-8 written as
 * JSON escapes, RTL marks, 64 KB strings), numbers (1e308, -0, huge integers), timestamps (year
 * 0000 and 9999, leap seconds, offsets, expanded years), nesting up to 10,000 levels sent as raw
 * JSON text, and sizes. Properties: never a 5xx, the service never crashes, memory stays bounded,
 * and every refusal is a 4xx whose body names what it refuses (the field; for 404 the entity,
 * for 409 the reason).
 *
 * Fixed seeds in CI; KNHK_FUZZ_RUNS=<n> runs each property n times instead of the default.
 */
import fc from "fast-check";
import { SECTORS } from "../../app/src/domain/types";
import { startPostgres, type TestPostgres } from "../support/postgres";
import { startOidc, type TestOidc } from "./shell/oidc";
import { startTestService, type ServiceUnderTest } from "./shell/service";

jest.setTimeout(600_000);
const RUNS = Number(process.env.KNHK_FUZZ_RUNS ?? 40);
const SEED = 20_260_131;

let pg: TestPostgres;
let oidc: TestOidc;
let svc: ServiceUnderTest;
let admin: string;
let memoryBefore: NodeJS.MemoryUsage;

beforeAll(async () => {
  [pg, oidc] = await Promise.all([startPostgres(), startOidc()]);
  svc = await startTestService(pg, { ...oidc.env(), KNHK_RATE_LIMIT_MAX: "1000000" });
  admin = await oidc.roleToken("administrator");
  memoryBefore = process.memoryUsage();
}, 180_000);

afterAll(async () => {
  await svc?.stop();
  await oidc?.close();
  await pg?.destroy();
});

// ---- the corpus ----------------------------------------------------------------------------

const HOSTILE_STRINGS = [
  "",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "x\udbff",
  "\ude00\ud83d",
  "\ud83d\ude00",
  "\u202eevil\u200f",
  "\u00c0\u00af",
  "\u00e0\u0080\u00af",
  "\u00f0\u0080\u0080\u00af",
  "\\u0000",
  "\\ud800",
  "\ufeff\uffff\ufffe",
  "\r\n\t\u001b[31m",
  "'; DROP TABLE observations; --",
  "../../etc/passwd",
  "x".repeat(64 * 1024),
  "\ud800".repeat(2048),
  "\u0000".repeat(2048),
];
/** Any UTF-16 code unit, lone surrogates and NUL included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const hostileString = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ unit: codeUnit, maxLength: 24 }));

const HOSTILE_NUMBERS = [1e308, -1e308, Number.MAX_VALUE, -0, 0, 1, -1, 0.5, 5e-324, 2 ** 53 + 2, -(2 ** 53), 1e15, -1e15, 1e15 + 2, 1e16, 86_400, 86_401, 10_000, 10_001];
const hostileNumber = fc.oneof(fc.constantFrom(...HOSTILE_NUMBERS), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer());

const HOSTILE_TIMESTAMPS = [
  "0000-01-01T00:00:00Z",
  "0000-12-31T23:59:59.999Z",
  "0001-01-01T00:00:00Z",
  "0001-01-01T00:00:00+14:00",
  "9999-12-31T23:59:59Z",
  "9999-12-31T23:59:59.999Z",
  "9999-12-31T23:59:59-14:00",
  "2016-12-31T23:59:60Z",
  "2026-06-30T23:59:60+00:00",
  "+294277-01-01T00:00:00Z",
  "294277-01-01T00:00:00Z",
  "-004713-01-01T00:00:00Z",
  "2026-01-01T00:00:00+23:59",
  "2026-01-01T00:00:00-23:59",
  "2026-01-01t00:00:00z",
  "2026-01-01 00:00:00Z",
  "2026-02-30T00:00:00Z",
  "2026-01-01T00:00:00.123456789Z",
  "2026-01-01T00:00:00",
  "2026-01-01T00:00:00+0100",
];
const anyInstant = fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => new Date(ms).toISOString());
const hostileTimestamp = fc.oneof(fc.constantFrom(...HOSTILE_TIMESTAMPS), anyInstant);

const key = fc.oneof(fc.constantFrom("region", "__proto__", "constructor", "a b", "k\u0000", "k\ud800", "x".repeat(65), ""), hostileString);
const scalar = fc.oneof(hostileString, hostileNumber, hostileTimestamp, fc.boolean(), fc.constant(null));
const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: "small", maxDepth: 4 }, scalar, fc.array(tie("value"), { maxLength: 4 }), fc.dictionary(key, tie("value"), { maxKeys: 4 })),
})).value;
const anything = fc.oneof(scalar, jsonValue);

/** Bodies as raw JSON text: nesting (10,000 levels is about 20 KB), numbers JSON.stringify cannot write, odd escapes. */
const nesting = fc.constantFrom(8, 9, 63, 64, 65, 1000, 10_000);
const rawBody = fc.oneof(
  nesting.map((n) => `{"event_type":"fuzz.deep","sector":"generic","value":${"[".repeat(n)}${"]".repeat(n)}}`),
  nesting.map((n) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`),
  nesting.map((n) => `{"window_seconds":${"[".repeat(n)}${"]".repeat(n)}}`),
  fc.constantFrom("1e309", "-1e309", "123456789012345678901234567890", "-0", "1E+400", "1e-400").map((n) => `{"event_type":"fuzz.num","sector":"generic","value":${n}}`),
  fc.constantFrom('"\\u0000"', '"\\ud800"', '"\\udc00\\ud800"', '"\\u00c0\\u00af"', '"\\uD83D\\uDE00"', '"\\\\u0000"').map((s) => `{"event_type":"fuzz.esc","sector":"generic","value":${s},"metadata":{"note":${s}}}`),
  fc.constantFrom('{"event_type":"fuzz","sector":"generic","value":1', "[", "", "null", '"text"', "{}}", '{"value":1,"value":2}'),
);

// ---- requests --------------------------------------------------------------------------------

/** Percent-encodes every code unit; a lone surrogate as its 3-byte (CESU-8) form, which is not UTF-8. */
function encode(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    if (pair) {
      out += encodeURIComponent(text.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    } else {
      out += encodeURIComponent(text[i]);
    }
  }
  return out;
}

const queryText = fc.oneof(hostileString, hostileTimestamp, hostileNumber.map(String), fc.constantFrom("1", "1000", "1001", "0", "-1", "abc", "finance", "high_frequency"));
const query = (names: readonly string[]) =>
  fc.array(fc.tuple(fc.oneof(fc.constantFrom(...names), key), queryText), { maxLength: 4 }).map((pairs) =>
    pairs.length === 0 ? "" : `?${pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join("&")}`,
  );
const id = fc.oneof(fc.uuid(), hostileString.filter((s) => s.length > 0 && s.length < 2048));

interface FuzzRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  /** JSON text, or undefined for no body. */
  readonly body?: string;
}

/** A body: a value sent as JSON (lone surrogates become \udXXX escapes), raw JSON text, or none. */
const body = (shape: fc.Arbitrary<unknown>) =>
  fc.oneof(shape.map((v) => JSON.stringify(v) as string | undefined), rawBody, fc.constant(undefined), anything.map((v) => JSON.stringify(v)));

const observationBody = fc.record(
  {
    event_type: fc.oneof(fc.constantFrom("fuzz.event", "fuzz.error", "a"), hostileString),
    value: anything,
    sector: fc.oneof(fc.constantFrom(...SECTORS), hostileString),
    metadata: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom("region", "severity"), key), anything, { maxKeys: 4 }), anything),
    observed_at: hostileTimestamp,
  },
  { requiredKeys: [] },
);
/** Batches mix hostile items with well-formed ones, so the per-item paths (stored next to refused) are reached. */
const wellFormedObservation = fc.record({ event_type: fc.constantFrom("fuzz.event", "fuzz.batch"), value: fc.oneof(fc.integer(), hostileString), sector: fc.constantFrom("finance", "generic") });
const batchBody = fc.record(
  { items: fc.oneof(fc.array(fc.oneof(observationBody, wellFormedObservation), { minLength: 1, maxLength: 6 }), fc.array(anything, { maxLength: 3 }), anything) },
  { requiredKeys: [] },
);
const windowBody = fc.record({ window_seconds: fc.oneof(hostileNumber, anything) }, { requiredKeys: [] });

const ROUTES: Record<string, fc.Arbitrary<FuzzRequest>> = {
  "GET /observations": query(["limit", "cursor", "event_type", "sector", "since", "until"]).map((q) => ({ method: "GET", path: `/observations${q}` })),
  "GET /observations/:id": id.map((i) => ({ method: "GET", path: `/observations/${encode(i)}` })),
  "POST /observations": body(observationBody).map((b) => ({ method: "POST", path: "/observations", body: b })),
  // Half the cases are batches with an items array, so the per-item paths are reached often.
  "POST /observations/batch": fc
    .oneof(body(batchBody), batchBody.map((b) => JSON.stringify(b)))
    .map((b) => ({ method: "POST", path: "/observations/batch", body: b })),
  "GET /observations/:id/proof": id.map((i) => ({ method: "GET", path: `/observations/${encode(i)}/proof` })),
  "GET /snapshots": query(["limit", "cursor"]).map((q) => ({ method: "GET", path: `/snapshots${q}` })),
  "GET /snapshots/:id": id.map((i) => ({ method: "GET", path: `/snapshots/${encode(i)}` })),
  "POST /snapshots/:id/promote": fc.tuple(id, body(fc.dictionary(key, anything, { maxKeys: 2 }))).map(([i, b]) => ({ method: "POST", path: `/snapshots/${encode(i)}/promote`, body: b })),
  "POST /snapshots/rollback": body(fc.dictionary(key, anything, { minKeys: 1, maxKeys: 2 })).map((b) => ({ method: "POST", path: "/snapshots/rollback", body: b ?? "[]" })),
  "GET /patterns": query(["limit", "cursor", "kind"]).map((q) => ({ method: "GET", path: `/patterns${q}` })),
  "POST /patterns/detect": body(windowBody).map((b) => ({ method: "POST", path: "/patterns/detect", body: b })),
  "POST /analytics/run": body(windowBody).map((b) => ({ method: "POST", path: "/analytics/run", body: b })),
  "POST /proposals/generate": body(fc.record({ pattern_ids: fc.oneof(fc.array(id, { maxLength: 3 }), anything) }, { requiredKeys: [] })).map((b) => ({
    method: "POST",
    path: "/proposals/generate",
    body: b,
  })),
  "GET /proposals/:id": id.map((i) => ({ method: "GET", path: `/proposals/${encode(i)}` })),
  "POST /proposals/:id/validate": fc
    .tuple(id, body(fc.record({ timeout_ms: fc.oneof(hostileNumber, anything) }, { requiredKeys: [] })))
    .map(([i, b]) => ({ method: "POST", path: `/proposals/${encode(i)}/validate`, body: b })),
  "GET /proposals/:id/validation-report": id.map((i) => ({ method: "GET", path: `/proposals/${encode(i)}/validation-report` })),
  // A valid (empty) body would run a whole MAPE-K cycle per case: only bodies with content are fuzzed.
  "POST /mape-k/execute": fc.oneof(rawBody, anything.map((v) => JSON.stringify(v) ?? "1")).filter((b) => b !== "{}" && b !== "null").map((b) => ({ method: "POST", path: "/mape-k/execute", body: b })),
  "GET /receipts": query(["after_seq", "limit"]).map((q) => ({ method: "GET", path: `/receipts${q}` })),
  "GET /receipts/:id": id.map((i) => ({ method: "GET", path: `/receipts/${encode(i)}` })),
  "GET /receipts/checkpoint": fc.constant({ method: "GET", path: "/receipts/checkpoint" }),
  // Kept under Node's 16 KiB header limit, which answers 431 before the service sees the request.
  "GET /receipts/:id/proof": fc
    .tuple(id, query(["size"]))
    .map(([i, q]): FuzzRequest => ({ method: "GET", path: `/receipts/${encode(i)}/proof${q}` }))
    .filter((r) => r.path.length < 8192),
  "GET /receipts/consistency": query(["from", "to"]).map((q) => ({ method: "GET", path: `/receipts/consistency${q}` })),
  "GET /receipts/tile/*": fc
    .oneof(hostileString, fc.stringMatching(/^[0-9]{1,2}\/(x[0-9]{3}\/){0,2}[0-9]{3}(\.p\/[0-9]{1,3})?$/))
    .map((t) => ({ method: "GET", path: `/receipts/tile/${t.split("/").map(encode).join("/")}` })),
  // Verification of the whole chain is slow; only bodies that ask for a bounded one or are refused.
  "POST /receipts/verify": body(fc.record({ from_checkpoint: fc.oneof(fc.boolean(), anything), limit: fc.oneof(fc.constantFrom(1, 10, 0, -1, 1e308, 10_000_001), anything) }, { requiredKeys: ["limit"] })).map((b) => ({
    method: "POST",
    path: "/receipts/verify",
    body: b ?? '{"limit":1}',
  })),
};

// ---- properties ------------------------------------------------------------------------------

async function send(request: FuzzRequest): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${admin}` };
  if (request.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${svc.service.apiUrl}/api/v1${request.path}`, { method: request.method, headers, body: request.body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the assertions below report it
  }
  return { status: response.status, body: parsed };
}

/** Never a 5xx; a refusal names what it refuses. */
function checkAnswer(request: FuzzRequest, answer: { status: number; body: any }): void {
  const seen = { route: `${request.method} ${request.path.slice(0, 200)}`, status: answer.status, body: answer.body };
  expect({ ...seen, serverError: answer.status >= 500 }).toEqual({ ...seen, serverError: false });
  // A batch's per-item results: each refused item names a field of its own position.
  if (Array.isArray(answer.body?.items) && request.path === "/observations/batch") {
    for (const [i, item] of (answer.body.items as any[]).entries()) {
      expect(item.index).toBe(i);
      if (item.status !== "stored") expect({ i, field: item.field }).toEqual({ i, field: expect.stringMatching(new RegExp(`^items\\.${i}(\\.|$)`)) });
    }
  }
  if (answer.status < 400) return;
  expect(seen).toEqual({ ...seen, body: expect.any(Object) });
  if (answer.status === 404) {
    expect(answer.body).toEqual(expect.objectContaining({ error: "not_found", message: expect.any(String) }));
  } else if (answer.status === 409) {
    expect(answer.body).toEqual(expect.objectContaining({ error: "conflict", reason: expect.any(String) }));
  } else {
    expect([400, 413, 415]).toContain(answer.status);
    expect(answer.body).toEqual(expect.objectContaining({ field: expect.stringMatching(/^(body|params|querystring|url|[a-z_]+)/) }));
    expect(answer.body.message).toContain(answer.body.field);
  }
}

describe("every route's input, fuzzed", () => {
  const statuses: Record<string, Record<number, number>> = {};

  test.each(Object.keys(ROUTES))("%s: never a 5xx, every refusal names its field", async (route) => {
    statuses[route] = {};
    await fc.assert(
      fc.asyncProperty(ROUTES[route], async (request) => {
        const answer = await send(request);
        statuses[route][answer.status] = (statuses[route][answer.status] ?? 0) + 1;
        checkAnswer(request, answer);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  });

  test("the corpus reached the database and the validators, not just the schemas (some requests succeeded, some were refused)", () => {
    const all = Object.values(statuses).flatMap((s) => Object.entries(s));
    const count = (pred: (status: number) => boolean) => all.filter(([s]) => pred(Number(s))).reduce((n, [, c]) => n + c, 0);
    expect(count((s) => s < 300)).toBeGreaterThan(0);
    expect(count((s) => s === 400)).toBeGreaterThan(0);
    expect(statuses["POST /observations"][201] ?? 0).toBeGreaterThan(0);
    expect(statuses["POST /observations/batch"][201] ?? 0).toBeGreaterThan(0);
  });
});

describe("the named hostile inputs, each once", () => {
  test.each(HOSTILE_TIMESTAMPS)("observed_at %s is a 201 or a 400 naming observed_at", async (ts) => {
    const answer = await send({ method: "POST", path: "/observations", body: JSON.stringify({ event_type: "fuzz.ts", sector: "generic", value: 1, observed_at: ts }) });
    checkAnswer({ method: "POST", path: "/observations" }, answer);
    if (answer.status !== 201) expect(answer.body.field).toMatch(/observed_at$/);
  });

  test("10,000 levels of nesting in a ~20 KB body, at the default body limit, are a 400 naming the body", async () => {
    const deep = `{"event_type":"fuzz.deep","sector":"generic","value":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
    expect(deep.length).toBeGreaterThan(20_000);
    const answer = await send({ method: "POST", path: "/observations", body: deep });
    expect(answer).toEqual({ status: 400, body: expect.objectContaining({ field: "body", reason: expect.stringMatching(/deeper than/) }) });
  });

  test("values 1e308 are refused at ingest, so analytics over every window still answers 200", async () => {
    for (const value of [1e308, 1e308]) {
      const answer = await send({ method: "POST", path: "/observations", body: JSON.stringify({ event_type: "fuzz.huge", sector: "generic", value }) });
      expect(answer).toEqual({ status: 400, body: expect.objectContaining({ field: "body.value" }) });
    }
    expect((await send({ method: "POST", path: "/analytics/run", body: '{"window_seconds":86400}' })).status).toBe(200);
  });
});

describe("after the run", () => {
  test("the service is up, serves valid requests, and its database connection is healthy", async () => {
    const health = await svc.api("/health");
    expect(health).toMatchObject({ status: 200, body: { dependencies: { database: "healthy" } } });
    const created = await svc.api("/api/v1/observations", { method: "POST", token: admin, json: { event_type: "fuzz.after", sector: "generic", value: 1 } });
    expect(created.status).toBe(201);
  });

  test("memory stayed bounded (generous: the service runs in this process)", () => {
    const now = process.memoryUsage();
    expect((now.rss - memoryBefore.rss) / 2 ** 20).toBeLessThan(768);
    expect((now.heapUsed - memoryBefore.heapUsed) / 2 ** 20).toBeLessThan(512);
  });

  test("the receipt chain the fuzzed requests extended still verifies", async () => {
    const verified = await svc.api("/api/v1/receipts/verify", { method: "POST", token: admin, json: {} });
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ ok: true });
  });
});
