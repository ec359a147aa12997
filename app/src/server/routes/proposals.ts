import { Type } from "@sinclair/typebox";
import type { Domain } from "../../domain";
import { closed, IdParams, Uuid } from "../schemas";
import type { RoutePlugin } from "../types";

const GenerateBody = Type.Union([closed({ pattern_ids: Type.Optional(Type.Array(Uuid, { minItems: 1, maxItems: 100, uniqueItems: true })) }), Type.Null()]);
const ValidateBody = Type.Union([closed({ timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) }), Type.Null()]);

export const proposalRoutes: RoutePlugin<{ domain: Domain }> = async (app, { domain }) => {
  app.post("/generate", { schema: { body: Type.Optional(GenerateBody) }, config: { permission: "GENERATE_PROPOSALS" } }, async (request, reply) =>
    reply.status(201).send({ proposals: await domain.proposals.generate(request.body ?? {}) }),
  );
  app.get("/:id", { schema: { params: IdParams }, config: { permission: "READ_PROPOSALS" } }, async (request) =>
    domain.proposals.get(request.params.id),
  );
  app.post(
    "/:id/validate",
    { schema: { params: IdParams, body: Type.Optional(ValidateBody) }, config: { permission: "VALIDATE_PROPOSALS" } },
    async (request) => domain.proposals.validate(request.params.id, { timeoutMs: request.body?.timeout_ms }),
  );
  app.get("/:id/validation-report", { schema: { params: IdParams }, config: { permission: "VIEW_VALIDATION_REPORTS" } }, async (request) =>
    domain.proposals.validationReport(request.params.id),
  );
};
