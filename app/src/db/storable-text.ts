/**
 * Text PostgreSQL cannot store: text and jsonb refuse NUL (22P05 / 22021), and a lone UTF-16
 * surrogate has no UTF-8 encoding (22P02 in jsonb). One rule for the request boundary, which
 * refuses such input, and the audit writer, which refuses such events.
 */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one (code units: no `u` flag). */
export const LONE_SURROGATE_SOURCE = "[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]";
const LONE_SURROGATE = new RegExp(LONE_SURROGATE_SOURCE);

/** Why PostgreSQL could not store this text, or null when it can. */
export function unstorableReason(text: string): string | null {
  if (text.includes("\u0000")) return "must not contain NUL characters";
  if (LONE_SURROGATE.test(text)) return "must not contain lone UTF-16 surrogates";
  return null;
}
