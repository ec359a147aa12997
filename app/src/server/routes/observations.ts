import { Type } from "@sinclair/typebox";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { MAX_BATCH_ITEMS, type BatchPrecheck, type Domain } from "../../domain";
import type { JsonObject, JsonValue } from "../../domain/types";
import { fieldOf } from "../errors";
import { closed, EventType, IdParams, Paging, Sector, Timestamp } from "../schemas";
import { findUnstorable } from "../storable";
import { storableInstantKeyword } from "../timestamps";
import type { DeferredAudit } from "../audit";
import type { RoutePlugin } from "../types";

const ObservationBody = closed({
  event_type: EventType,
  // Any JSON value; the current snapshot's schemas and guards judge it.
  value: Type.Unknown(),
  sector: Sector,
  metadata: Type.Optional(Type.Record(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$" }), Type.Unknown(), { maxProperties: 64, additionalProperties: false })),
  observed_at: Type.Optional(Timestamp),
});

/** Items are checked one by one (per-item results), so the envelope only bounds their number. */
const BatchBody = closed({ items: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH_ITEMS }) });

const BatchItemResult = Type.Object({
  index: Type.Integer(),
  status: Type.Union([Type.Literal("stored"), Type.Literal("invalid"), Type.Literal("rejected")]),
  id: Type.Optional(Type.String()),
  seq: Type.Optional(Type.Integer()),
  flagged: Type.Optional(Type.Boolean()),
  guard_id: Type.Optional(Type.String()),
  field: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
});
const batchFields = {
  batch_id: Type.Union([Type.String(), Type.Null()]),
  stored: Type.Integer(),
  invalid: Type.Integer(),
  rejected: Type.Integer(),
  merkle_root: Type.Union([Type.String(), Type.Null()]),
  receipt_seq: Type.Union([Type.Integer(), Type.Null()]),
  items: Type.Array(BatchItemResult),
};
const BatchResponse = Type.Object(batchFields);
/**
 * 400s: a refused batch (the first refused item's field, then every item's result) or any other
 * 400 of the error handler (envelope schema, body size), so serialised as sent.
 */
const BatchRefused = Type.Unknown();

const ListQuery = closed({ ...Paging, event_type: Type.Optional(EventType), sector: Type.Optional(Sector), since: Type.Optional(Timestamp), until: Type.Optional(Timestamp) });

/** The single POST's body schema and storability rules, applied to one batch item. */
function batchItemPrecheck(): BatchPrecheck {
  const ajv = addFormats(new Ajv({ allErrors: false, removeAdditional: false, useDefaults: false, strict: false, coerceTypes: false })).addKeyword({ ...storableInstantKeyword });
  const validate = ajv.compile(ObservationBody);
  return (item, index) => {
    const context = `items.${index}`;
    if (!validate(item)) {
      const issue = validate.errors![0];
      const field = fieldOf(context, issue);
      return { field, reason: issue.keyword === "additionalProperties" ? "unknown field" : issue.keyword === "required" ? "is required" : (issue.message ?? "is invalid") };
    }
    return findUnstorable(item, context) ?? undefined;
  };
}

/** The request's deferred allow decision, committed with its observations (see auditWithWrite). */
const alsoCommit = (pending: DeferredAudit | undefined) => (pending ? [pending] : []);

export interface ObservationRouteOptions {
  readonly domain: Domain;
  /** Largest batch request body (KNHK_BATCH_BODY_LIMIT_BYTES). */
  readonly batchBodyLimitBytes: number;
}

export const observationRoutes: RoutePlugin<ObservationRouteOptions> = async (app, { domain, batchBodyLimitBytes }) => {
  const precheck = batchItemPrecheck();
  app.get("", { schema: { querystring: ListQuery }, config: { permission: "READ_OBSERVATIONS" } }, async (request) =>
    domain.observations.list(request.query),
  );
  app.get("/:id", { schema: { params: IdParams }, config: { permission: "READ_OBSERVATIONS" } }, async (request) =>
    domain.observations.get(request.params.id),
  );
  app.get("/:id/proof", { schema: { params: IdParams }, config: { permission: "READ_OBSERVATIONS" } }, async (request) =>
    domain.observations.proof(request.params.id),
  );
  app.post(
    "",
    { schema: { body: ObservationBody }, config: { permission: "INGEST_OBSERVATIONS", auditWithWrite: true } },
    async (request, reply) => {
      const body = request.body;
      const observation = await domain.observations.create(
        {
          event_type: body.event_type,
          value: body.value as JsonValue,
          sector: body.sector,
          metadata: body.metadata as JsonObject | undefined,
          observed_at: body.observed_at,
        },
        { alsoCommit: alsoCommit(request.pendingAudit) },
      );
      return reply.status(201).send(observation);
    },
  );
  app.post(
    "/batch",
    {
      bodyLimit: batchBodyLimitBytes,
      schema: { body: BatchBody, response: { 201: BatchResponse, 400: BatchRefused } },
      config: { permission: "INGEST_OBSERVATIONS", itemsCheckedOneByOne: true, auditWithWrite: true },
    },
    async (request, reply) => {
      const result = await domain.observations.createBatch(request.body.items, { precheck, alsoCommit: alsoCommit(request.pendingAudit) });
      const items = [...result.items];
      if (result.stored > 0) return reply.status(201).send({ ...result, items });
      // Nothing stored: the request as a whole failed; the first refused item names the field.
      const first = result.items.find((i) => i.status !== "stored") as { field: string; reason: string };
      return reply.status(400).send({
        error: "bad_request",
        field: first.field,
        reason: first.reason,
        message: `no observation of the batch was stored; ${first.field}: ${first.reason}`,
        ...result,
        items,
      });
    },
  );
};
