/**
 * What one update of a stack does to the two colours, and whether blue-green allows it: at most
 * one step per update, either a new version on the idle colour ("stage") or traffic to the other
 * colour ("switch"); the serving colour's version never changes in place. The PR check compares
 * the base branch's stack file with the PR's; the apply job compares what is deployed (the
 * stack's outputs) with the file it is about to apply.
 */
import { RefusedError } from "../deploy/errors";
import { otherColor, type AppState, type Color } from "../deploy/ports";
import { APP_KEY } from "./stack-file";

export type Transition =
  /** Nothing deployed yet (first `pulumi up`): no colour to compare with. */
  | { readonly kind: "initial"; readonly activeColor: Color }
  /** Neither colour's version nor the active colour changes. */
  | { readonly kind: "none"; readonly activeColor: Color }
  /** A new version on the idle colour; traffic stays. */
  | { readonly kind: "stage"; readonly color: Color; readonly version: string; readonly previousVersion: string; readonly activeColor: Color }
  /** Traffic moves to `to`, which keeps the version it already runs. */
  | { readonly kind: "switch"; readonly from: Color; readonly to: Color; readonly version: string; readonly previousVersion: string };

/** The transition from `current` to `next`; refuses (naming the keys) what blue-green does not allow. */
export function transition(current: AppState | undefined, next: AppState, where: string): Transition {
  if (current === undefined) return { kind: "initial", activeColor: next.activeColor };
  const active = current.activeColor;
  const idle = otherColor(active);
  const changed = (c: Color) => current.versions[c] !== next.versions[c];
  const versionKey = (c: Color) => `${APP_KEY}.versions.${c} ${current.versions[c]} -> ${next.versions[c]}`;

  if (changed(active)) {
    throw new RefusedError(
      `${where}: changes the version of the serving colour in place (${versionKey(active)}, ${active} is ${APP_KEY}.activeColor): ` +
        `stage the version on the idle colour instead (npm run release -- stage --version ${next.versions[active]})`,
    );
  }
  if (next.activeColor !== active) {
    if (changed(idle)) {
      throw new RefusedError(
        `${where}: switches traffic to ${idle} (${APP_KEY}.activeColor ${active} -> ${idle}) and changes its version in the same update (${versionKey(idle)}): ` +
          `stage it first; the switch follows its smoke test`,
      );
    }
    return { kind: "switch", from: active, to: idle, version: next.versions[idle], previousVersion: current.versions[active] };
  }
  if (changed(idle)) return { kind: "stage", color: idle, version: next.versions[idle], previousVersion: current.versions[idle], activeColor: active };
  return { kind: "none", activeColor: active };
}

/** One line for people: what the update does and what follows it. */
export function describeTransition(t: Transition): string {
  switch (t.kind) {
    case "initial":
      return `first deploy: ${t.activeColor} serves`;
    case "none":
      return `no release step: ${t.activeColor} keeps serving, neither colour's version changes`;
    case "stage":
      return `stages ${t.version} on the idle colour ${t.color} (was ${t.previousVersion}); ${t.activeColor} keeps serving. After the apply, ${t.color} is smoke-tested and the switch pull request is opened`;
    case "switch":
      return `switches traffic from ${t.from} (${t.previousVersion}) to ${t.to} (${t.version}); after the apply the error ratio and p95 of ${t.to} are watched, and traffic goes back to ${t.from} if they fail`;
  }
}

/** The part of an image reference after the repository: the tag, or the digest. */
export function versionOfImage(ref: string): string {
  const at = ref.indexOf("@");
  if (at >= 0) return ref.slice(at + 1);
  const colon = ref.lastIndexOf(":");
  if (colon < 0 || colon < ref.lastIndexOf("/")) throw new Error(`image ${JSON.stringify(ref)} is not pinned by tag or digest`);
  return ref.slice(colon + 1);
}

/**
 * What a stack runs, from its outputs (`pulumi stack output --json`: `activeColor` and `images`,
 * exported by infra/program.ts); undefined when the stack has never been deployed.
 */
export function deployedState(outputs: Record<string, unknown>): AppState | undefined {
  const { activeColor, images } = outputs as { activeColor?: unknown; images?: Record<string, unknown> };
  if (activeColor === undefined && images === undefined) return undefined;
  if ((activeColor !== "blue" && activeColor !== "green") || typeof images?.blue !== "string" || typeof images?.green !== "string") {
    throw new RefusedError(`stack outputs activeColor/images are not what the program exports: ${JSON.stringify({ activeColor, images })}`);
  }
  return { activeColor, versions: { blue: versionOfImage(images.blue), green: versionOfImage(images.green) } };
}
