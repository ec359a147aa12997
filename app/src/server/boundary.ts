import type { FastifyInstance, FastifyRequest } from "fastify";
import { ValidationError } from "../domain/errors";
import { findUnstorable, jsonDepthExceeds, MAX_BODY_DEPTH } from "./storable";

/**
 * JSON bodies are checked for depth on the raw text, before anything parses or walks them, so
 * no later recursion (schema checks, domain validation, serialisation) meets a deep document.
 */
export function installDepthCheckedJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = body as string;
    if (jsonDepthExceeds(text, MAX_BODY_DEPTH)) {
      done(new ValidationError("body", `nests deeper than ${MAX_BODY_DEPTH} levels`), undefined);
      return;
    }
    parse(request, text, done);
  });
}

/**
 * preValidation hook: every string, key and number in the path params, query string and body is
 * one PostgreSQL can store and within the numeric bound, or the request is a 400 naming it.
 */
export async function refuseUnstorableInput(request: FastifyRequest): Promise<void> {
  const body = request.body as Record<string, unknown> | undefined;
  const perItem = request.routeOptions.config?.itemsCheckedOneByOne && body && typeof body === "object" && Array.isArray(body.items);
  const parts: [string, unknown][] = [
    ["params", request.params],
    ["querystring", request.query],
    // A batch's items are checked one by one by its route, so one bad item fails only itself.
    ["body", perItem ? { ...body, items: [] } : request.body],
  ];
  for (const [context, value] of parts) {
    const found = findUnstorable(value, context);
    if (found) throw new ValidationError(found.field, found.reason);
  }
}
