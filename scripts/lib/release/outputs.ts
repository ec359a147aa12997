/** Step outputs for the workflow that runs a release script (GITHUB_OUTPUT, when set). */
import { appendFileSync } from "node:fs";

export function writeStepOutputs(env: NodeJS.ProcessEnv, outputs: Readonly<Record<string, string>>): void {
  const file = env.GITHUB_OUTPUT;
  if (!file) return;
  for (const [key, value] of Object.entries(outputs)) {
    if (/[\r\n]/.test(value)) throw new Error(`step output ${key} must be one line`);
    appendFileSync(file, `${key}=${value}\n`);
  }
}
