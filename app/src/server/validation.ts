import Ajv from "ajv";
import addFormats from "ajv-formats";
import type { FastifySchemaCompiler } from "fastify";
import { storableInstantKeyword } from "./timestamps";

/**
 * Two validators: request bodies are taken exactly as sent (no type coercion, unknown fields
 * rejected rather than silently dropped); query strings and path params arrive as text, so
 * they are coerced to the declared scalar types.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const common = { allErrors: false, removeAdditional: false, useDefaults: false, strict: false } as const;
  const bodyAjv = addFormats(new Ajv({ ...common, coerceTypes: false })).addKeyword({ ...storableInstantKeyword });
  const textAjv = addFormats(new Ajv({ ...common, coerceTypes: true })).addKeyword({ ...storableInstantKeyword });
  return ({ schema, httpPart }) => (httpPart === "body" ? bodyAjv : textAjv).compile(schema as object);
}
