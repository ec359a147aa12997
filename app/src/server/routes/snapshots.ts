import type { Domain } from "../../domain";
import type { CurrentSnapshotCache } from "../../redis/snapshot-cache";
import { closed, emptyBody, IdParams, Paging } from "../schemas";
import { Type } from "@sinclair/typebox";
import type { RoutePlugin } from "../types";

export const snapshotRoutes: RoutePlugin<{ domain: Domain; cache: CurrentSnapshotCache }> = async (app, { domain, cache }) => {
  app.get("", { schema: { querystring: closed(Paging) }, config: { permission: "READ_SNAPSHOTS" } }, async (request) =>
    domain.snapshots.list(request.query),
  );
  // The current snapshot, shared by all replicas through the Redis cache.
  app.get("/current", { config: { permission: "READ_SNAPSHOTS" } }, async () => cache.get(() => domain.snapshots.current()));
  app.get("/:id", { schema: { params: IdParams }, config: { permission: "READ_SNAPSHOTS" } }, async (request) =>
    domain.snapshots.get(request.params.id),
  );
  app.post(
    "/:id/promote",
    { schema: { params: IdParams, body: Type.Optional(emptyBody) }, config: { permission: "PROMOTE_SNAPSHOTS" } },
    async (request) => domain.snapshots.promote(request.params.id),
  );
  app.post("/rollback", { schema: { body: Type.Optional(emptyBody) }, config: { permission: "ROLLBACK_SNAPSHOTS" } }, async () =>
    domain.snapshots.rollback(),
  );
};
