import { Type } from "@sinclair/typebox";
import type { Domain } from "../../domain";
import type { RoutePlugin } from "../types";
import { DetectBody } from "./patterns";

export const analyticsRoutes: RoutePlugin<{ domain: Domain }> = async (app, { domain }) => {
  app.post("/run", { schema: { body: Type.Optional(DetectBody) }, config: { permission: "RUN_ANALYTICS" } }, async (request) =>
    domain.analytics.run(request.body ?? {}),
  );
};
