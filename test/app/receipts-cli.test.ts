/** `knhk receipts verify-chain` and `knhk receipts export` against PostgreSQL 15. */
import canonicalize from "canonicalize";
import { createHash, verify } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../app/src/cli/receipts";
import type { CliContext } from "../../app/src/cli/context";
import { createLedger, loadSigner, type Receipt } from "../../app/src/receipts";
import { publicKeyFromRaw as publicKeyOf } from "../../app/src/receipts/keys";
import { capturedStreams } from "../support/streams";
import { asOwnerBypassingTriggers, startLedgerPostgres, type LedgerPostgres } from "./receipts-support";

jest.setTimeout(180_000);
let env: LedgerPostgres;
let receipts: Receipt[];
let publicKey: string;

beforeAll(async () => {
  env = await startLedgerPostgres();
  const signer = await loadSigner({ db: env.service, registrar: env.owner, env: {}, log: () => undefined });
  publicKey = signer.publicKey;
  const ledger = createLedger({ db: env.service, signer });
  receipts = await Promise.all(
    Array.from({ length: 250 }, (_, i) => ledger.append({ operation: "test.cli", outcome: "success", evidence: { i, text: "é\"\n" }, sector: "cli" })),
  );
  await ledger.close();
});
afterAll(async () => {
  await env?.close();
});

function cli() {
  const { stdout, stderr, out, err } = capturedStreams();
  const ctx: CliContext = { db: env.service, env: {}, stdout, stderr };
  return { ctx, out, err };
}

describe("verify-chain", () => {
  test("--format json prints the report and exits 0 on an intact chain", async () => {
    const c = cli();
    expect(await run(["verify-chain", "--format", "json"], c.ctx)).toBe(0);
    const report = JSON.parse(c.out());
    expect(report).toMatchObject({
      total_count: 250,
      verified_count: 250,
      signature_failures: [],
      chain_breaks: [],
      retrocausation_violations: [],
      last_verified_timestamp: receipts.find((r) => r.seq === 250)?.created_at,
    });
  });

  test("--limit and --incremental", async () => {
    const limited = cli();
    expect(await run(["verify-chain", "--format", "json", "--limit", "10"], limited.ctx)).toBe(0);
    expect(JSON.parse(limited.out()).total_count).toBe(10);
    const full = cli();
    expect(await run(["verify-chain"], full.ctx)).toBe(0);
    expect(full.out()).toMatch(/chain intact/);
    const incremental = cli();
    expect(await run(["verify-chain", "--incremental", "--format", "json"], incremental.ctx)).toBe(0);
    expect(JSON.parse(incremental.out())).toMatchObject({ incremental: true, total_count: 0 });
  });

  test("a tampered receipt: exit 1, its id and kind in both formats", async () => {
    const victim = receipts.find((r) => r.seq === 77) as Receipt;
    await asOwnerBypassingTriggers(env.owner, "UPDATE receipts SET signature = $1 WHERE seq = 77", [receipts.find((r) => r.seq === 78)?.signature]);
    try {
      const json = cli();
      expect(await run(["verify-chain", "--format", "json"], json.ctx)).toBe(1);
      expect(JSON.parse(json.out()).signature_failures).toEqual([expect.objectContaining({ id: victim.id, seq: 77, kind: "signature_invalid" })]);
      const text = cli();
      expect(await run(["verify-chain"], text.ctx)).toBe(1);
      expect(text.out()).toContain(`seq 77 id ${victim.id}: signature_invalid`);
      expect(text.out()).toMatch(/CHAIN FAILED VERIFICATION/);
    } finally {
      await asOwnerBypassingTriggers(env.owner, "UPDATE receipts SET signature = $1 WHERE seq = 77", [victim.signature]);
    }
  });

  test.each([
    [["verify-chain", "--format", "xml"], /--format: must be text or json/],
    [["verify-chain", "--limit", "0"], /--limit: must be a positive integer/],
    [["verify-chain", "--limit", "ten"], /--limit: must be a positive integer/],
    [["verify-chain", "--bogus"], /Unknown option '--bogus'/],
    [["export"], /--out: required/],
    [["export", "--out", "-", "--after-seq", "-1"], /--after-seq/],
    [["explode"], /unknown receipts command "explode"/],
  ])("bad usage %# exits 2", async (args, message) => {
    const c = cli();
    expect(await run(args, c.ctx)).toBe(2);
    expect(c.err()).toMatch(message);
  });
});

describe("export", () => {
  test("NDJSON to stdout after a seq; each line verifies on its own with RFC 8785 + SHA-256 + ed25519", async () => {
    const c = cli();
    expect(await run(["export", "--out", "-", "--after-seq", "200"], c.ctx)).toBe(0);
    const lines = c.out().trim().split("\n").map((l) => JSON.parse(l) as Receipt);
    expect(lines.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 201 + i));
    expect(c.err()).toMatch(/exported 50 receipts \(seq 201\.\.250\)/);
    const key = publicKeyOf(publicKey);
    for (const r of lines) {
      const { seq, operation, outcome, evidence, sector, created_at, parent_hash, key_version } = r;
      const hash = createHash("sha256").update(canonicalize({ seq, operation, outcome, evidence, sector, created_at, parent_hash, key_version }) as string).digest("hex");
      expect(hash).toBe(r.hash);
      expect(verify(null, Buffer.from(hash, "hex"), key, Buffer.from(r.signature, "base64"))).toBe(true);
    }
    for (let i = 1; i < lines.length; i++) expect(lines[i].parent_hash).toBe(lines[i - 1].hash);
  });

  test("to a directory: one file named by its seq range", async () => {
    const dir = mkdtempSync(join(tmpdir(), "knhk-export-"));
    const c = cli();
    expect(await run(["export", "--out", dir], c.ctx)).toBe(0);
    expect(readdirSync(dir)).toEqual(["receipts-1-250.ndjson"]);
    const lines = readFileSync(join(dir, "receipts-1-250.ndjson"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(250);
    expect(JSON.parse(lines[0])).toEqual(receipts.find((r) => r.seq === 1));
  });
});
