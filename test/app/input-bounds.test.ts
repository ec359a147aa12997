/** The request boundary's pure checks: storable text, depth on raw JSON text, the numeric bound, timestamp bounds. */
import { unstorableReason } from "../../app/src/db/storable-text";
import { findUnstorable, jsonDepthExceeds, MAX_ABS_NUMBER, MAX_BODY_DEPTH, storableText } from "../../app/src/server/storable";
import { instantProblem } from "../../app/src/server/timestamps";

describe("unstorableReason: what PostgreSQL text and jsonb cannot hold", () => {
  test.each([
    ["a NUL", "a\u0000b", /NUL/],
    ["a lone high surrogate", "a\ud800b", /surrogate/],
    ["a lone high surrogate at the end", "ab\udbff", /surrogate/],
    ["a lone low surrogate", "\udc00ab", /surrogate/],
    ["two high surrogates", "\ud83d\ud83d", /surrogate/],
    ["a pair in the wrong order", "\ude00\ud83d", /surrogate/],
  ])("refuses %s", (_name, text, reason) => expect(unstorableReason(text)).toMatch(reason));

  test.each([
    ["a surrogate pair", "\ud83d\ude00"],
    ["RTL marks", "\u202eevil\u200f"],
    ["overlong UTF-8 sent as JSON escapes (Latin-1 text)", "\u00c0\u00af\u00e0\u0080\u00af"],
    ["the text of an escape", "\\u0000 \\ud800"],
    ["other control characters (text can hold them)", "\u0001\u001f\u007f"],
  ])("accepts %s", (_name, text) => expect(unstorableReason(text)).toBeNull());
});

describe("storableText: attacker text made recordable", () => {
  test("control characters and lone surrogates become visible escapes; pairs stay", () => {
    expect(storableText("a\u0000b\ud800c\udc00d\ud83d\ude00\n")).toBe("a\\u0000b\\ud800c\\udc00d\ud83d\ude00\\u000a");
    expect(unstorableReason(storableText("\ud800\u0000".repeat(100)))).toBeNull();
  });
  test("it is cut to the limit, never between the halves of a pair", () => {
    expect(storableText("x".repeat(1000), 10)).toBe("x".repeat(10));
    const cut = storableText(`${"x".repeat(9)}\ud83d\ude00`, 10);
    expect(cut).toBe("x".repeat(9));
    expect(unstorableReason(cut)).toBeNull();
  });
});

describe("jsonDepthExceeds: on raw text, without recursion", () => {
  test("counts nesting of arrays and objects", () => {
    expect(jsonDepthExceeds("[[[]]]", 3)).toBe(false);
    expect(jsonDepthExceeds("[[[[]]]]", 3)).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":[{}]}}', 3)).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":[1]},"c":[2]}', 3)).toBe(false);
  });
  test("brackets inside strings, and escaped quotes, do not count", () => {
    expect(jsonDepthExceeds('["[[[[[[", "\\"[[[[[[", "\\\\"]', 1)).toBe(false);
    expect(jsonDepthExceeds('["\\\\", [[1]]]', 2)).toBe(true);
  });
  test("100,000 levels are found without a stack overflow", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    expect(jsonDepthExceeds(deep, MAX_BODY_DEPTH)).toBe(true);
  });
});

describe("findUnstorable: a parsed request part, walked iteratively", () => {
  test("names the first offending field, key or number", () => {
    expect(findUnstorable({ a: "ok", b: { c: ["x", "y\u0000"] } }, "body")).toEqual({ field: "body.b.c.1", reason: expect.stringMatching(/NUL/) });
    expect(findUnstorable({ metadata: { "k\ud800": 1 } }, "body")).toEqual({ field: "body.metadata.k\\ud800", reason: expect.stringMatching(/^key .*surrogate/) });
    expect(findUnstorable({ value: 1e308 }, "body")).toEqual({ field: "body.value", reason: expect.stringContaining(String(MAX_ABS_NUMBER)) });
    expect(findUnstorable({ first: "\u0000", second: "\u0000" }, "body")?.field).toBe("body.first");
  });
  test("numbers up to the bound, -0 and paired surrogates are fine", () => {
    expect(findUnstorable({ a: MAX_ABS_NUMBER, b: -MAX_ABS_NUMBER, c: -0, d: "\ud83d\ude00", e: null, f: true }, "body")).toBeNull();
    expect(findUnstorable({ a: -MAX_ABS_NUMBER * 1.0000001 }, "body")?.field).toBe("body.a");
  });
  test("depth beyond the limit is refused (an object built in code, 100,000 levels)", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(findUnstorable(deep, "body")).toEqual({ field: `body${".0".repeat(MAX_BODY_DEPTH)}`, reason: expect.stringMatching(/deeper than/) });
  });
});

describe("instantProblem: the timestamps a request may name", () => {
  test.each(["0001-01-01T00:00:00Z", "2026-02-28T12:00:00.123456+05:30", "9999-12-31T23:59:59.999Z", "1970-01-01T00:00:00-14:00"])("accepts %s", (text) =>
    expect(instantProblem(text)).toBeNull(),
  );
  test.each([
    ["year 0000", "0000-01-01T00:00:00Z", /from 0001/],
    ["an offset that moves year 1 into year 0", "0001-01-01T00:00:00+01:00", /from 0001/],
    ["an offset that moves 9999 into 10000", "9999-12-31T23:59:59-01:00", /from 0001/],
    ["a leap second", "2016-12-31T23:59:60Z", /leap/],
  ])("refuses %s", (_name, text, reason) => expect(instantProblem(text)).toMatch(reason));
});
