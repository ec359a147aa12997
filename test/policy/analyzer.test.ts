/**
 * The pack as the engine loads it: `policy/` run by @pulumi/pulumi's policy-pack runner (the
 * same entry point the Node.js language host uses, TypeScript compiled and type-checked by its
 * ts-node), then asked over the analyzer gRPC protocol for its policies and to analyze a
 * resource. The full engine run (`pulumi preview --policy-pack policy`) is in the engine tests.
 */
import { join } from "node:path";
import { ALL_POLICIES } from "../../policy/policies/all";
import { spawnTracked, type TrackedProcess } from "../support/processes";
import { byName, cleanStack } from "./fixtures";

/* eslint-disable @typescript-eslint/no-require-imports */
const grpc = require("@grpc/grpc-js");
const { Struct } = require("google-protobuf/google/protobuf/struct_pb");
const { Empty } = require("google-protobuf/google/protobuf/empty_pb");
const analyzerRpc = require("@pulumi/pulumi/proto/analyzer_grpc_pb");
const analyzerPb = require("@pulumi/pulumi/proto/analyzer_pb");

const REPO = join(__dirname, "..", "..");
const LEVELS = ["advisory", "mandatory", "disabled", "remediate"];

let pack: TrackedProcess | undefined;
let client: any;
const stderr: string[] = [];

beforeAll(async () => {
  const runner = spawnTracked(process.execPath, [join(REPO, "node_modules/@pulumi/pulumi/cmd/run-policy-pack"), "--typescript=true", "127.0.0.1:1", "."], {
    cwd: join(REPO, "policy"),
    stdio: ["ignore", "pipe", "pipe"],
  });
  pack = runner;
  runner.child.stderr!.on("data", (d) => stderr.push(String(d)));
  const port = await new Promise<number>((resolve, reject) => {
    runner.child.stdout!.once("data", (d) => resolve(Number(String(d).trim())));
    runner.child.once("exit", (code) => reject(new Error(`policy pack exited ${code}: ${stderr.join("")}`)));
  });
  client = new analyzerRpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  await pack?.stop("SIGTERM");
});

const call = <T>(method: string, request: unknown): Promise<T> =>
  new Promise((resolve, reject) => client[method](request, (error: Error | null, response: T) => (error ? reject(error) : resolve(response))));

async function analyze(resource: { type: string; name: string; urn: string; props: Record<string, unknown> }) {
  const request = new analyzerPb.AnalyzeRequest();
  request.setType(resource.type);
  request.setName(resource.name);
  request.setUrn(resource.urn);
  request.setProperties(Struct.fromJavaScript(resource.props));
  request.setOptions(new analyzerPb.AnalyzerResourceOptions());
  const response = await call<any>("analyze", request);
  return response.getDiagnosticsList().map((d: any) => ({ policy: d.getPolicyname(), level: LEVELS[d.getEnforcementlevel()], message: d.getMessage() }));
}

test("the engine sees every policy of the pack with its enforcement level", async () => {
  const info = await call<any>("getAnalyzerInfo", new Empty());
  expect(info.getName()).toBe("knhk");
  const seen = info.getPoliciesList().map((p: any) => [p.getName(), LEVELS[p.getEnforcementlevel()]]);
  expect(seen).toEqual(ALL_POLICIES.map((p) => [p.name, p.enforcementLevel]));
});

test("a clean Deployment passes; an unpinned image is a mandatory violation", async () => {
  const deployment = byName(cleanStack("prod"), "app-blue");
  expect(await analyze(deployment)).toEqual([]);
  const props = structuredClone(deployment.props) as any;
  props.spec.template.spec.containers[0].image = "ghcr.io/knhk/knhk:latest";
  expect(await analyze({ ...deployment, props })).toEqual([
    {
      policy: "image-pinned",
      level: "mandatory",
      message: expect.stringContaining(`Deployment knhk/knhk-blue: container "knhk" (containers[0]) image "ghcr.io/knhk/knhk:latest" must be pinned: 'latest' is not allowed`),
    },
  ]);
}, 30_000);
