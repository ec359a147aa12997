import { Type, type TSchema } from "@sinclair/typebox";
import { PATTERN_KINDS, SECTORS } from "../domain/types";

/** Shared request schemas. Objects are closed (unknown fields -> 400) unless stated. */
export const closed = <T extends Record<string, TSchema>>(properties: T) => Type.Object(properties, { additionalProperties: false });

export const Uuid = Type.String({ format: "uuid", description: "UUID" });
export const IdParams = closed({ id: Uuid });

export const Sector = Type.Union(SECTORS.map((s) => Type.Literal(s)));
export const PatternKind = Type.Union(PATTERN_KINDS.map((k) => Type.Literal(k)));

export const Paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, pattern: "^[A-Za-z0-9_=-]+$" })),
};

/** An ISO-8601 instant PostgreSQL and JavaScript can both hold (server/timestamps.ts). */
export const Timestamp = Type.String({ format: "date-time", storableInstant: true });
export const EventType = Type.String({ pattern: "^[A-Za-z0-9_.:-]{1,128}$", description: "letters, digits, _ . : - (1-128)" });

/** Optional empty body for action endpoints (POST with nothing to say). */
export const emptyBody = Type.Union([closed({}), Type.Null()]);
