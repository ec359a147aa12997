import { Type } from "@sinclair/typebox";
import type { Domain } from "../../domain";
import { closed, Paging, PatternKind, Sector } from "../schemas";
import type { RoutePlugin } from "../types";

export const DetectBody = Type.Union([closed({ window_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })), sector: Type.Optional(Sector) }), Type.Null()]);

export const patternRoutes: RoutePlugin<{ domain: Domain }> = async (app, { domain }) => {
  app.get("", { schema: { querystring: closed({ ...Paging, kind: Type.Optional(PatternKind) }) }, config: { permission: "READ_PATTERNS" } }, async (request) =>
    domain.patterns.list(request.query),
  );
  app.post("/detect", { schema: { body: Type.Optional(DetectBody) }, config: { permission: "DETECT_PATTERNS" } }, async (request) =>
    domain.patterns.detect(request.body ?? {}),
  );
};
