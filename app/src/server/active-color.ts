/**
 * Blue-green leadership gate: this replica may lead the MAPE-K loop only while
 * KNHK_ACTIVE_COLOR_FILE names its colour (KNHK_COLOR). The file is a mounted ConfigMap key,
 * which the kubelet replaces by swapping the `..data` symlink; watch events for that are not
 * dependable, so the file is simply re-read every `pollMs`. Anything but exactly "blue" or
 * "green" (after trimming) means "not active": an unreadable or garbled file never makes a
 * replica lead. Each change of state is logged once with its reason.
 */
import { readFileSync } from "node:fs";
import { COLORS, type Color } from "../config/env";
import type { LeadershipGate, LeadershipState } from "../domain";

type Log = (level: "info" | "warn" | "error", message: string, extra?: Record<string, unknown>) => void;

export interface ActiveColorOptions {
  readonly color: Color;
  readonly file: string;
  readonly log: Log;
  /** Re-read interval (default 2 s). */
  readonly pollMs?: number;
}

export interface ActiveColorGate extends LeadershipGate {
  /** Re-reads the file now. */
  refresh(): LeadershipState;
  close(): void;
}

/** The state the file's content gives a replica of `color`. */
export function activeColorState(color: Color, file: string, read: () => string): LeadershipState {
  let text: string;
  try {
    text = read();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return { eligible: false, reason: `KNHK_ACTIVE_COLOR_FILE ${file} cannot be read (${code}): not leading (fail safe)` };
  }
  const active = text.trim();
  if (!(COLORS as readonly string[]).includes(active)) {
    return { eligible: false, reason: `KNHK_ACTIVE_COLOR_FILE ${file} holds no colour (expected ${COLORS.join(" or ")}): not leading (fail safe)` };
  }
  if (active !== color) return { eligible: false, reason: `the active colour is ${active}; this replica is ${color}` };
  return { eligible: true };
}

export function watchActiveColor(options: ActiveColorOptions): ActiveColorGate {
  const { color, file, log } = options;
  const listeners = new Set<(eligible: boolean) => void>();
  let state: LeadershipState = { eligible: false, reason: "not read yet" };
  let logged: string | undefined;

  function refresh(): LeadershipState {
    const next = activeColorState(color, file, () => readFileSync(file, "utf8"));
    const summary = next.eligible ? "eligible" : next.reason;
    if (summary !== logged) {
      logged = summary;
      if (next.eligible) log("info", `colour ${color} is active: this replica competes for MAPE-K leadership`, { file });
      else log(/fail safe/.test(next.reason) ? "warn" : "info", `MAPE-K leadership: ${next.reason}`, { file });
    }
    const changed = next.eligible !== state.eligible;
    state = next;
    if (changed) for (const listener of listeners) listener(next.eligible);
    return next;
  }

  refresh();
  const timer = setInterval(refresh, options.pollMs ?? 2000);
  timer.unref();
  return {
    state: () => state,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refresh,
    close() {
      clearInterval(timer);
      listeners.clear();
    },
  };
}
