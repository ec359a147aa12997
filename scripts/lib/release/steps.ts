/**
 * The release steps as stack file edits, parsed from the command line of `npm run release` (edit
 * the work tree) and `npm run release:propose` (commit on main, as a pull request or a push):
 *   stage    --stack S --version V                   new version on the idle colour
 *   switch   --stack S [--version V]                 traffic to the idle colour (which must run V)
 *   rollback --stack S [--from blue|green] [--reason T]   traffic back to the other colour
 *   restore  --stack S --color C --version V --rejected R  idle colour C back to V after R failed
 *   correct  --stack S --verdict release-verdict.json     the correction a failed apply named
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { requiredFlag } from "../deploy/cli";
import { UsageError } from "../deploy/errors";
import type { Color } from "../deploy/ports";
import type { Proposal } from "./propose";
import { checkVersion, rollbackColor, stageVersion, switchColor } from "./stack-file";
import { applyCorrection, describeCorrection, type Correction } from "./verify";

export const STEPS = ["stage", "switch", "rollback", "restore", "correct"] as const;
export type StepName = (typeof STEPS)[number];

export const STEP_OPTIONS = {
  stack: { type: "string" },
  version: { type: "string" },
  from: { type: "string" },
  color: { type: "string" },
  rejected: { type: "string" },
  reason: { type: "string" },
  verdict: { type: "string" },
} as const;

export interface Step {
  readonly name: StepName;
  readonly stack: string;
  readonly proposal: Proposal;
}

function colorFlag(flag: string, value: string | undefined): Color | undefined {
  if (value === undefined) return undefined;
  if (value !== "blue" && value !== "green") throw new UsageError(`--${flag} must be blue or green, not ${JSON.stringify(value)}`);
  return value;
}

/** A correction as the verdict file of `npm run release:verify` holds it. */
export function correctionFromVerdict(file: string): Correction {
  let verdict: { correction?: Correction };
  try {
    verdict = JSON.parse(readFileSync(file, "utf8")) as { correction?: Correction };
  } catch (error) {
    throw new UsageError(`--verdict ${file}: ${(error as Error).message}`);
  }
  const c = verdict.correction;
  if (c?.kind === "rollback" && colorFlag("verdict correction.from", c.from)) return { kind: "rollback", from: c.from };
  if (c?.kind === "restore" && colorFlag("verdict correction.color", c.color)) {
    checkVersion(c.version);
    checkVersion(c.rejected);
    return { kind: "restore", color: c.color, version: c.version, rejected: c.rejected };
  }
  throw new UsageError(`--verdict ${file} names no correction (the apply passed, or the file is not a verdict)`);
}

const NEXT_AFTER_STAGE =
  "Merging applies it: the idle colour rolls out and is smoke-tested while the active colour keeps serving. " +
  "If the smoke test passes, the apply job opens the switch pull request; if it fails, the idle colour gets its previous version back.";
const NEXT_AFTER_SWITCH =
  "Merging applies it after a smoke test of the colour about to serve; the error ratio and p95 of the new colour are then watched, " +
  "and traffic goes back automatically (a commit on main) if they fail.";

/** Parses `<step> --stack ... [options]`; `extra` are the caller's own options. */
export function parseStep<T extends Record<string, { type: "string" | "boolean"; default?: string | boolean; multiple?: boolean }>>(argv: string[], extra: T) {
  const { values, positionals } = parseArgs({ args: argv, options: { ...STEP_OPTIONS, ...extra }, allowPositionals: true });
  const name = positionals[0];
  if (!(STEPS as readonly string[]).includes(name ?? "")) throw new UsageError(`the first argument must be one of ${STEPS.join(", ")}, not ${JSON.stringify(name ?? "")}`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  const v = values as Record<string, string | undefined>;
  const stack = requiredFlag("stack", v.stack);
  return { step: stepOf(name as StepName, stack, v), values };
}

function stepOf(name: StepName, stack: string, v: Record<string, string | undefined>): Step {
  const at = `release(${stack})`;
  switch (name) {
    case "stage": {
      const version = requiredFlag("version", v.version);
      checkVersion(version);
      return {
        name, stack,
        proposal: {
          title: `${at}: stage ${version} on the idle colour`,
          body: `Sets the idle colour's knhk:app.versions entry in Pulumi.${stack}.yaml to ${version}.\n\n${NEXT_AFTER_STAGE}`,
          slug: `stage-${version}`,
          edit: (text, file) => stageVersion(text, version, file),
        },
      };
    }
    case "switch": {
      if (v.version !== undefined) checkVersion(v.version);
      return {
        name, stack,
        proposal: {
          title: `${at}: switch traffic to the idle colour${v.version ? ` (${v.version})` : ""}`,
          body: `Sets knhk:app.activeColor in Pulumi.${stack}.yaml to the idle colour${v.version ? `, which runs ${v.version} and passed its smoke test` : ""}.\n\n${NEXT_AFTER_SWITCH}`,
          slug: `switch-${v.version ?? "idle"}`,
          edit: (text, file) => switchColor(text, v.version, file),
        },
      };
    }
    case "rollback": {
      const from = colorFlag("from", v.from);
      const reason = v.reason ?? "manual rollback";
      return {
        name, stack,
        proposal: {
          title: `${at}: roll back${from ? ` from ${from}` : ""}`,
          body: `Points knhk:app.activeColor in Pulumi.${stack}.yaml back at the other colour, which still runs the previous version.\n\nReason: ${reason}\n\n${NEXT_AFTER_SWITCH}`,
          slug: `rollback-${from ?? "active"}`,
          edit: (text, file) => rollbackColor(text, from, file),
        },
      };
    }
    case "restore":
    case "correct": {
      const correction: Correction =
        name === "correct"
          ? correctionFromVerdict(requiredFlag("verdict", v.verdict))
          : {
              kind: "restore",
              color: colorFlag("color", requiredFlag("color", v.color))!,
              version: requiredFlag("version", v.version),
              rejected: requiredFlag("rejected", v.rejected),
            };
      if (correction.kind === "restore") {
        checkVersion(correction.version);
        checkVersion(correction.rejected);
      }
      const what = describeCorrection(correction);
      return {
        name, stack,
        proposal: {
          title: `${at}: ${what}`,
          body: `The apply of Pulumi.${stack}.yaml failed its release checks; this commit records the correction the apply job already applied (${what}), so the stack file on main is what runs.`,
          slug: `${correction.kind}-${correction.kind === "restore" ? correction.rejected : correction.from}`,
          edit: (text, file) => applyCorrection(text, correction, file),
        },
      };
    }
  }
}
