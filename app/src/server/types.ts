import type { Static, TSchema } from "@sinclair/typebox";
import type { FastifyInstance, FastifyTypeProvider, RawServerDefault, FastifyBaseLogger, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyPluginAsync } from "fastify";
import type { Principal } from "../auth/claims";
import type { Permission } from "../auth/roles";
import type { DeferredAudit } from "./audit";

/** Route schemas written with @sinclair/typebox give typed request parts. */
export interface TypeBoxProvider extends FastifyTypeProvider {
  readonly validator: this["schema"] extends TSchema ? Static<this["schema"]> : unknown;
  readonly serializer: this["schema"] extends TSchema ? Static<this["schema"]> : unknown;
}

export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxProvider>;
export type RoutePlugin<Options = Record<never, never>> = FastifyPluginAsync<Options & { prefix?: string }, RawServerDefault, TypeBoxProvider>;

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the auth hook on every /api/v1 request that passed authentication. */
    principal?: Principal;
    /** An allow decision to commit with the request's write (routes with `auditWithWrite`). */
    pendingAudit?: DeferredAudit;
    /** A read's allow decision being committed while the read runs: settles with the write's error, or undefined once durable. */
    auditWrite?: Promise<unknown>;
  }
  interface FastifyContextConfig {
    /** The permission a route requires; every /api/v1 route must declare one. */
    permission?: Permission;
    /** The body's `items` are checked one by one by the route (per-item results), not refused as a whole. */
    itemsCheckedOneByOne?: boolean;
    /**
     * The route's allow decision is committed in the transaction of the route's own write (its
     * handler passes request.pendingAudit to the domain); a request that writes nothing has it
     * recorded before its response. Other routes record it before the handler runs.
     */
    auditWithWrite?: boolean;
  }
}
