import { Type } from "@sinclair/typebox";
import type { Domain } from "../../domain";
import type { JsonObject, JsonValue } from "../../domain/types";
import { closed, EventType, IdParams, Paging, Sector, Timestamp } from "../schemas";
import type { RoutePlugin } from "../types";

const ObservationBody = closed({
  event_type: EventType,
  // Any JSON value; the current snapshot's schemas and guards judge it.
  value: Type.Unknown(),
  sector: Sector,
  metadata: Type.Optional(Type.Record(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$" }), Type.Unknown(), { maxProperties: 64, additionalProperties: false })),
  observed_at: Type.Optional(Timestamp),
});

const ListQuery = closed({ ...Paging, event_type: Type.Optional(EventType), sector: Type.Optional(Sector), since: Type.Optional(Timestamp), until: Type.Optional(Timestamp) });

export const observationRoutes: RoutePlugin<{ domain: Domain }> = async (app, { domain }) => {
  app.get("", { schema: { querystring: ListQuery }, config: { permission: "READ_OBSERVATIONS" } }, async (request) =>
    domain.observations.list(request.query),
  );
  app.get("/:id", { schema: { params: IdParams }, config: { permission: "READ_OBSERVATIONS" } }, async (request) =>
    domain.observations.get(request.params.id),
  );
  app.post(
    "",
    { schema: { body: ObservationBody }, config: { permission: "INGEST_OBSERVATIONS" } },
    async (request, reply) => {
      const body = request.body;
      const observation = await domain.observations.create({
        event_type: body.event_type,
        value: body.value as JsonValue,
        sector: body.sector,
        metadata: body.metadata as JsonObject | undefined,
        observed_at: body.observed_at,
      });
      return reply.status(201).send(observation);
    },
  );
};
