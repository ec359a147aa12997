import { Type } from "@sinclair/typebox";
import type { Receipt, VerificationReport } from "../../receipts/types";
import { closed, IdParams } from "../schemas";
import type { RoutePlugin } from "../types";

/** The receipt ledger as the API uses it (adapted from app/src/receipts in main.ts). */
export interface ReceiptsPort {
  list(options: { afterSeq: number; limit: number }): Promise<Receipt[]>;
  get(id: string): Promise<Receipt | null>;
  verify(options: { fromCheckpoint: boolean; limit?: number }): Promise<VerificationReport>;
}

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
  app.get("/:id", { schema: { params: IdParams }, config: { permission: "READ_RECEIPTS" } }, async (request, reply) => {
    const { id } = request.params;
    const receipt = await receipts.get(id);
    if (!receipt) return reply.status(404).send({ error: "not_found", entity: "receipt", id, message: `receipt ${id} not found` });
    return receipt;
  });
  app.post("/verify", { schema: { body: Type.Optional(VerifyBody) }, config: { permission: "VERIFY_RECEIPTS" } }, async (request) =>
    receipts.verify({ fromCheckpoint: request.body?.from_checkpoint ?? false, limit: request.body?.limit }),
  );
};
