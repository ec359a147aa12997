/**
 * The release's only way of changing what runs: edits of `knhk:app` in `Pulumi.<stack>.yaml`
 * (one colour's version, the active colour). Comments and layout of the file are kept; every edit
 * is read back through the program's own schema (`appSection`) before its text is returned, so a
 * release can never write a value the program would refuse or read differently.
 */
import { isMap, isScalar, parse as parseYaml, parseDocument, Scalar, type Document } from "yaml";
import { CONFIG_NAMESPACE } from "../../../infra/config";
import { appSection } from "../../../infra/config/app";
import { versionProblem } from "../../../infra/config/common";
import { RefusedError, UsageError } from "../deploy/errors";
import { otherColor, type AppState, type Color } from "../deploy/ports";

/** The stack file's key of the service section. */
export const APP_KEY = `${CONFIG_NAMESPACE}:app`;

export const stackFileName = (stack: string): string => `Pulumi.${stack}.yaml`;

/** What an edit changed: the key path under `knhk:app`, old and new value. */
export interface StackEdit {
  readonly text: string;
  readonly key: string;
  readonly from: string;
  readonly to: string;
  readonly before: AppState;
  readonly after: AppState;
}

function parse(text: string, file: string): Document.Parsed {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) throw new RefusedError(`${file}: not valid YAML: ${doc.errors[0].message}`);
  return doc;
}

/** `knhk:app` of a stack file, schema defaults applied; errors name the key. */
export function readAppState(text: string, file = "stack file"): AppState {
  const doc = parse(text, file);
  const config = doc.get("config");
  if (config !== undefined && !isMap(config)) throw new RefusedError(`${file}: config must be a mapping`);
  const raw = doc.getIn(["config", APP_KEY]);
  const value = raw === undefined ? {} : (raw as { toJSON?: () => unknown }).toJSON?.() ?? raw;
  const parsed = appSection.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${[APP_KEY, ...i.path.map(String)].join(".")}: ${i.message}`);
    throw new RefusedError(`${file}: ${problems.join("; ")}`);
  }
  return { activeColor: parsed.data.activeColor, versions: { ...parsed.data.versions } };
}

/**
 * Plain unless a YAML 1.1 reader would take it for something else: the stringifier already quotes
 * what YAML 1.2 reads as a number or boolean, but the engine's reader also resolves 1.1 forms
 * such as `1_000` or `yes`.
 */
function scalarType(value: string): Scalar.Type {
  return parseYaml(value, { version: "1.1" }) === value ? Scalar.PLAIN : Scalar.QUOTE_DOUBLE;
}

/** Sets `knhk:app.<path>` keeping the node (and its comments) when one is there. */
function setApp(doc: Document.Parsed, path: readonly string[], value: string): void {
  const at = ["config", APP_KEY, ...path];
  const node = doc.getIn(at, true);
  if (isScalar(node)) {
    node.value = value;
    // A tag on the old value must not change how the new one is read.
    node.tag = undefined;
    node.type = scalarType(value);
  } else {
    const scalar = doc.createNode(value) as Scalar;
    scalar.type = scalarType(value);
    doc.setIn(at, scalar);
  }
}

function edit(text: string, file: string, path: readonly string[], value: string): StackEdit {
  const before = readAppState(text, file);
  const doc = parse(text, file);
  const key = [APP_KEY, ...path].join(".");
  const from = path[0] === "activeColor" ? before.activeColor : before.versions[path[1] as Color];
  // No versions mapping yet (schema defaults in force): write both colours, or the other one would be missing.
  if (path[0] === "versions" && doc.getIn(["config", APP_KEY, "versions"]) === undefined) {
    for (const c of ["blue", "green"] as const) setApp(doc, ["versions", c], c === path[1] ? value : before.versions[c]);
  } else {
    setApp(doc, path, value);
  }
  const out = doc.toString();
  const after = readAppState(out, file);
  const read = path[0] === "activeColor" ? after.activeColor : after.versions[path[1] as Color];
  if (read !== value) throw new Error(`${file}: ${key} reads back as ${JSON.stringify(read)} after writing ${JSON.stringify(value)}`);
  return { text: out, key, from, to: value, before, after };
}

/** Throws a usage error naming `--version` when it is not a pinned tag or digest. */
export function checkVersion(version: string): void {
  const problem = versionProblem(version);
  if (problem) throw new UsageError(`--version ${JSON.stringify(version)} ${problem}`);
}

/**
 * Step 1 of a release: the version goes to the idle colour (`knhk:app.versions.<idle>`); live
 * traffic is untouched. Refuses the version already serving, and a no-op.
 */
export function stageVersion(text: string, version: string, file = "stack file"): StackEdit {
  checkVersion(version);
  const state = readAppState(text, file);
  const idle = otherColor(state.activeColor);
  if (state.versions[state.activeColor] === version) {
    throw new RefusedError(`${file}: ${version} is already the active version (${APP_KEY}.versions.${state.activeColor}, ${state.activeColor} serves); nothing to release`);
  }
  if (state.versions[idle] === version) {
    throw new RefusedError(`${file}: ${version} is already staged on the idle colour (${APP_KEY}.versions.${idle}); switch with \`npm run release -- switch\``);
  }
  return edit(text, file, ["versions", idle], version);
}

/**
 * Step 2: traffic to the idle colour (`knhk:app.activeColor`). With `version`, refuses unless the
 * idle colour runs exactly that version (the one the smoke test passed).
 */
export function switchColor(text: string, version: string | undefined, file = "stack file"): StackEdit {
  if (version !== undefined) checkVersion(version);
  const state = readAppState(text, file);
  const idle = otherColor(state.activeColor);
  if (version !== undefined && state.versions[idle] !== version) {
    throw new RefusedError(`${file}: the idle colour ${idle} runs ${state.versions[idle]} (${APP_KEY}.versions.${idle}), not ${version}; not switching`);
  }
  if (state.versions[idle] === state.versions[state.activeColor] && version !== undefined) {
    throw new RefusedError(`${file}: ${version} already serves on ${state.activeColor}; nothing to switch`);
  }
  return edit(text, file, ["activeColor"], idle);
}

/** Traffic back to the other colour; with `from`, only when `from` is the active colour. */
export function rollbackColor(text: string, from: Color | undefined, file = "stack file"): StackEdit {
  const state = readAppState(text, file);
  if (from !== undefined && state.activeColor !== from) {
    throw new RefusedError(`${file}: ${APP_KEY}.activeColor is ${state.activeColor}, not ${from}; nothing to roll back`);
  }
  return edit(text, file, ["activeColor"], otherColor(state.activeColor));
}

/**
 * After a staged version failed its checks: the idle colour gets back the version it ran, so a
 * later rollback never switches to the rejected one. Only while the colour is idle and still holds
 * the rejected version.
 */
export function restoreVersion(text: string, color: Color, version: string, rejected: string, file = "stack file"): StackEdit {
  checkVersion(version);
  const state = readAppState(text, file);
  if (state.activeColor === color) throw new RefusedError(`${file}: ${color} is the active colour (${APP_KEY}.activeColor); not restoring a serving colour`);
  if (state.versions[color] !== rejected) {
    throw new RefusedError(`${file}: ${APP_KEY}.versions.${color} is ${state.versions[color]}, not the rejected ${rejected}; nothing to restore`);
  }
  return edit(text, file, ["versions", color], version);
}

/** `knhk:app.<path> = value` without release rules (the one-shot deploy's own steps); the value is still validated. */
export function setAppValue(text: string, path: "activeColor" | `versions.${Color}`, value: string, file = "stack file"): StackEdit {
  if (path === "activeColor") {
    if (value !== "blue" && value !== "green") throw new UsageError(`${APP_KEY}.activeColor must be blue or green, not ${JSON.stringify(value)}`);
    return edit(text, file, ["activeColor"], value);
  }
  checkVersion(value);
  return edit(text, file, path.split("."), value);
}

/** `knhk:kubernetes.context` of a stack file: the kubeconfig context its cluster is reached by. */
export function kubeContextOf(text: string, file = "stack file"): string | undefined {
  const context = parse(text, file).getIn(["config", `${CONFIG_NAMESPACE}:kubernetes`, "context"]);
  return typeof context === "string" ? context : undefined;
}
