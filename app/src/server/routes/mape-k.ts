import { Type } from "@sinclair/typebox";
import type { Domain } from "../../domain";
import { emptyBody } from "../schemas";
import type { RoutePlugin } from "../types";

export const mapeKRoutes: RoutePlugin<{ domain: Domain }> = async (app, { domain }) => {
  app.post("/execute", { schema: { body: Type.Optional(emptyBody) }, config: { permission: "EXECUTE_MAPE_K" } }, async () =>
    domain.mapeK.execute({ trigger: "on_demand" }),
  );
};
