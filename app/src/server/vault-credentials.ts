/**
 * /health's `vault` dependency: the credentials Vault Agent renders into a file
 * (DATABASE_URL_FILE) are present and fresh. Fresh means rendered within the database role's
 * max TTL (KNHK_VAULT_CREDENTIALS_MAX_AGE_SECONDS): the agent re-renders the file with every new
 * lease, and no lease outlives the max TTL, so an older file holds credentials Vault has revoked
 * (the agent has stopped renewing: Vault or its auth is unreachable).
 */
import { stat } from "node:fs/promises";
import type { DependencyState } from "./health";

export interface CredentialFileState {
  readonly state: DependencyState;
  readonly reason?: string;
}

/** healthy: present, non-empty, rendered within maxAgeSeconds; degraded: older (stale); down: missing or empty. */
export async function probeCredentialFile(path: string, maxAgeSeconds: number, now: () => number = Date.now): Promise<CredentialFileState> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    return { state: "down", reason: `${path}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}` };
  }
  if (!info.isFile() || info.size === 0) return { state: "down", reason: `${path}: empty or not a file` };
  const ageSeconds = (now() - info.mtimeMs) / 1000;
  if (ageSeconds > maxAgeSeconds) return { state: "degraded", reason: `${path}: rendered ${Math.round(ageSeconds)} s ago, max ${maxAgeSeconds} s` };
  return { state: "healthy" };
}
