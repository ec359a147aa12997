import { Type } from "@sinclair/typebox";
import { NotFoundError, ValidationError } from "../../domain/errors";
import { LogInputError, type ConsistencyProofAnswer, type InclusionProofAnswer } from "../../receipts/tlog/log";
import type { Receipt, VerificationReport } from "../../receipts/types";
import { closed, IdParams } from "../schemas";
import type { RoutePlugin } from "../types";

/** The receipt ledger as the API uses it (adapted from app/src/receipts in service.ts). */
export interface ReceiptsPort {
  list(options: { afterSeq: number; limit: number }): Promise<Receipt[]>;
  get(id: string): Promise<Receipt | null>;
  verify(options: { fromCheckpoint: boolean; limit?: number }): Promise<VerificationReport>;
  /** The receipt log (transparency log): the latest signed checkpoint note, if any. */
  checkpoint(): Promise<string | undefined>;
  prove(id: string, size?: number): Promise<InclusionProofAnswer | undefined>;
  consistency(from: number, to: number): Promise<ConsistencyProofAnswer>;
  /** A tile by its C2SP path (`tile/...`); undefined: not in the tree. */
  tile(path: string): Promise<{ bytes: Buffer; full: boolean } | undefined>;
}

/** The log's input errors are the API's 400s, naming the field. */
async function asRequestError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof LogInputError) throw new ValidationError(error.field, error.reason);
    throw error;
  }
}

const TreeSize = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const ProofQuery = closed({ size: Type.Optional(TreeSize) });
const ConsistencyQuery = closed({ from: TreeSize, to: TreeSize });
const Base64Hash = Type.String({ pattern: "^[A-Za-z0-9+/]{43}=$" });
const ProofAnswer = Type.Object({
  receipt_id: Type.String(),
  seq: Type.Integer(),
  leaf_index: Type.Integer(),
  tree_size: Type.Integer(),
  leaf_data: Base64Hash,
  leaf_hash: Base64Hash,
  proof: Type.Array(Base64Hash),
  checkpoint: Type.String(),
});
const ConsistencyAnswer = Type.Object({ from: Type.Integer(), to: Type.Integer(), proof: Type.Array(Base64Hash), from_checkpoint: Type.String(), to_checkpoint: Type.String() });
const NotFound = Type.Object({ error: Type.Literal("not_found"), entity: Type.String(), id: Type.String(), message: Type.String() });
/** Tiles and checkpoints of a size never change: caches may keep them. */
const IMMUTABLE = "public, max-age=31536000, immutable";

const ListQuery = closed({
  after_seq: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});
const VerifyBody = Type.Union([
  closed({
    from_checkpoint: Type.Optional(Type.Boolean()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
  }),
  Type.Null(),
]);

export const receiptRoutes: RoutePlugin<{ receipts: ReceiptsPort }> = async (app, { receipts }) => {
  app.get("", { schema: { querystring: ListQuery }, config: { permission: "READ_RECEIPTS" } }, async (request) => {
    const limit = request.query.limit ?? 100;
    const items = await receipts.list({ afterSeq: request.query.after_seq ?? 0, limit });
    return { items, next_after_seq: items.length === limit ? items[items.length - 1].seq : null };
  });
  app.get("/:id", { schema: { params: IdParams }, config: { permission: "READ_RECEIPTS" } }, async (request) => {
    const { id } = request.params;
    const receipt = await receipts.get(id);
    if (!receipt) throw new NotFoundError("receipt", id);
    return receipt;
  });
  app.get("/checkpoint", { config: { permission: "READ_RECEIPTS" } }, async (_request, reply) => {
    const note = await receipts.checkpoint();
    if (!note) throw new NotFoundError("checkpoint", "latest", "the receipt log has no signed checkpoint yet");
    // The latest changes as the log grows: revalidate every time.
    return reply.header("cache-control", "no-cache").type("text/plain; charset=utf-8").send(note);
  });
  app.get("/consistency", { schema: { querystring: ConsistencyQuery, response: { 200: ConsistencyAnswer } }, config: { permission: "READ_RECEIPTS" } }, async (request, reply) => {
    const answer = await asRequestError(() => receipts.consistency(request.query.from, request.query.to));
    return reply.header("cache-control", IMMUTABLE).send(answer);
  });
  app.get("/tile/*", { config: { permission: "READ_RECEIPTS" } }, async (request, reply) => {
    const path = `tile/${(request.params as { "*": string })["*"]}`;
    const tile = await asRequestError(() => receipts.tile(path));
    if (!tile) throw new NotFoundError("tile", path, `${path} is not in the tree yet`);
    return reply.header("cache-control", IMMUTABLE).type("application/octet-stream").send(tile.bytes);
  });
  app.get("/:id/proof", { schema: { params: IdParams, querystring: ProofQuery, response: { 200: ProofAnswer, 404: NotFound } }, config: { permission: "READ_RECEIPTS" } }, async (request) => {
    const { id } = request.params;
    const answer = await asRequestError(() => receipts.prove(id, request.query.size));
    if (!answer) throw new NotFoundError("receipt", id);
    return answer;
  });
  app.post("/verify", { schema: { body: Type.Optional(VerifyBody) }, config: { permission: "VERIFY_RECEIPTS" } }, async (request) =>
    receipts.verify({ fromCheckpoint: request.body?.from_checkpoint ?? false, limit: request.body?.limit }),
  );
};
