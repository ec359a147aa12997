import { createAuditWriter } from "../../app/src/audit";
import { auditLogSink, printable } from "../../app/src/server/audit";
import type { QueryResult, Sql } from "../../app/src/db/types";

/** Records the statements the sink sends through the storage seam. */
function recordingSql(): Sql & { calls: { text: string; params: readonly unknown[] }[] } {
  const calls: { text: string; params: readonly unknown[] }[] = [];
  return {
    calls,
    async query<R>(text: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      calls.push({ text, params });
      return { rows: [{ id: 1, occurred_at: new Date() } as unknown as R], rowCount: 1 };
    },
    async exec(): Promise<void> {},
  };
}

describe("authorization audit sink", () => {
  it("escapes control characters of attacker-controlled claims instead of failing the request", async () => {
    expect(printable("a\u0000b\nc\u007f")).toBe("a\\u0000b\\u000ac\\u007f");
    const sql = recordingSql();
    await auditLogSink(createAuditWriter({ db: sql })).record({
      decision: "deny_forbidden",
      method: "GET",
      route: "/api/v1/receipts",
      permission: "READ_RECEIPTS",
      subject: "evil\u0000user\r\n",
      issuer: "https://idp.example",
      roles: [],
      reason: "missing permission",
      requestId: "r1",
      ip: "127.0.0.1",
    });
    expect(sql.calls).toHaveLength(1);
    const params = JSON.stringify(sql.calls[0].params);
    expect(params).toContain("https://idp.example:evil\\\\u0000user\\\\u000d\\\\u000a");
    expect(sql.calls[0].params.flat().some((p) => typeof p === "string" && /[\u0000-\u001f]/.test(p))).toBe(false);
  });
});
