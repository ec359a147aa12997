/** Bad flags or environment: the scripts exit 2 with the message (naming the flag or variable). */
export class UsageError extends Error {}

/** A well-formed request the current state does not allow: the scripts exit 1 with the reason. */
export class RefusedError extends Error {}

/** A variable of `env` that must be set and non-empty; the error names it and what it is for. */
export function requiredEnv(env: NodeJS.ProcessEnv, name: string, what: string): string {
  const value = env[name];
  if (value === undefined || value === "") throw new UsageError(`${name} is not set (${what})`);
  return value;
}
