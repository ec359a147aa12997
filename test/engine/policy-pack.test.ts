/**
 * The CrossGuard pack in policy/ run by the real engine (`pulumi preview --policy-pack policy`):
 * the clean local stack passes; a mandatory rule that the stack breaks fails the preview with
 * the policy's name in the output.
 */
import * as fs from "node:fs";
import { Workspace } from "./engine";

const ENGINE_TIMEOUT = 15 * 60_000;
const STACK = "local";

describe("the policy pack in the real Pulumi engine", () => {
  let ws: Workspace;

  beforeAll(async () => {
    ws = await Workspace.withStack(STACK);
  }, ENGINE_TIMEOUT);

  afterAll(() => ws?.remove());

  test(
    "a preview of the clean local stack passes every policy",
    async () => {
      const result = await ws.pulumi(["preview", "--stack", STACK, "--policy-pack", "policy"]);
      const output = result.stdout + result.stderr;
      expect({ code: result.code, output }).toEqual({ code: 0, output: expect.stringContaining("Policies:") });
      expect(output).toMatch(/knhk@v[\w.-]+/);
      expect(output).not.toMatch(/mandatory/);
    },
    ENGINE_TIMEOUT,
  );

  test(
    "a preview fails naming the mandatory policy the stack breaks",
    async () => {
      // Count `local` as a production environment: its single app replica breaks the production HA rule.
      const config = ws.path("policy-config.json");
      fs.writeFileSync(config, JSON.stringify({ "prod-app-high-availability": { productionEnvironments: ["local"] } }));

      const result = await ws.pulumi([
        "preview", "--stack", STACK, "--policy-pack", "policy", "--policy-pack-config", config,
      ]);
      const output = result.stdout + result.stderr;
      expect(result.code).not.toBe(0);
      expect(output).toContain("prod-app-high-availability");
      expect(output).toMatch(/mandatory/);
    },
    ENGINE_TIMEOUT,
  );
});
