/**
 * Stores: `POST /stores`, `GET /stores`, `GET /stores/{store_id}`, `DELETE /stores/{store_id}`. A store is a tenant
 * of the shared TupleStore named by its ULID; deleting one marks it deleted in the catalog (it is then not found)
 * and removes its tuples.
 */
import type { FastifyInstance } from "fastify";
import type { StoreRecord } from "../catalog.js";
import type { ServerContext } from "../context.js";
import { invalid } from "../errors.js";
import { fieldSet, type Json, messageOf, optionalString, pageSizeIn, timestampOut } from "../json.js";
import { decodeContinuation, encodeContinuation, positionString } from "../pagination.js";
import { deleteMatching } from "./tuples.js";

const CREATE_STORE = fieldSet("name");

export function storeOut(record: StoreRecord): Json {
  return {
    id: record.id,
    name: record.name,
    created_at: timestampOut(record.createdAtMs),
    updated_at: timestampOut(record.updatedAtMs),
    ...(record.deletedAtMs !== undefined ? { deleted_at: timestampOut(record.deletedAtMs) } : {}),
  };
}

export function storeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post("/stores", async (request, reply) => {
    const body = messageOf(request.body, "the request body", CREATE_STORE);
    const name = optionalString(body.name, "name");
    if (name === undefined || name.length > 256) {
      throw invalid("name must be a string of 1 to 256 characters");
    }
    const record = await ctx.catalog.createStore(name);
    reply.code(201);
    return storeOut(record);
  });

  app.get("/stores", async (request) => {
    const query = request.query as Record<string, unknown>;
    const pageSize = pageSizeIn(query.page_size, 50, 100);
    const position = decodeContinuation("stores", query.continuation_token);
    const after = position === undefined ? undefined : positionString(position, "after");
    const name = optionalString(query.name, "name");
    const page = ctx.catalog.listStores({
      limit: pageSize,
      ...(after !== undefined ? { after } : {}),
      ...(name !== undefined ? { name } : {}),
    });
    const more =
      page.length === pageSize &&
      ctx.catalog.listStores({
        limit: 1,
        after: page[page.length - 1]!.id,
        ...(name !== undefined ? { name } : {}),
      }).length > 0;
    return {
      stores: page.map(storeOut),
      continuation_token: more ? encodeContinuation("stores", { after: page[page.length - 1]!.id }) : "",
    };
  });

  app.get("/stores/:store_id", async (request) => {
    return storeOut(ctx.storeOf((request.params as Json).store_id));
  });

  app.delete("/stores/:store_id", async (request, reply) => {
    const record = ctx.storeOf((request.params as Json).store_id);
    await ctx.catalog.deleteStore(record.id);
    ctx.forget(record.id);
    // The store is gone for clients now; its tuples are removed after, in bounded atomic batches.
    await deleteMatching(ctx, record.id, {}, Number.POSITIVE_INFINITY);
    reply.code(204);
    return null;
  });
}
