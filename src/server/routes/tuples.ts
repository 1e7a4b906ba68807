/**
 * Relationship tuples: `POST /stores/{store_id}/write`, `POST …/read` (keyset pages of at most 100), `GET …/changes`
 * (the changelog, resumable by token; the same token comes back when nothing is new), and, beyond OpenFGA,
 * `POST …/delete-tuples`: every tuple matching a filter deleted in one atomic write, or none when more match than
 * the server's limit.
 */
import type { FastifyInstance } from "fastify";
import { type RelationTuple, toTupleKey } from "../../tuples/tuple.js";
import type { ReadFilter, StoredChange } from "../../tuples/types.js";
import type { ServerContext } from "../context.js";
import { ApiError, invalid } from "../errors.js";
import {
  arrayOf,
  deleteKeyIn,
  fieldSet,
  type Json,
  messageOf,
  optionalString,
  pageSizeIn,
  timestampOut,
  tupleKeyIn,
  tupleKeyOut,
} from "../json.js";
import { decodeContinuation, encodeContinuation, positionInt, positionString } from "../pagination.js";

type TupleFilter = Omit<ReadFilter, "tenant">;

// Each body's fields, as OpenFGA's messages name them (store_id too: grpc-gateway takes it, the path's wins).
const WRITE = fieldSet("store_id", "writes", "deletes", "authorization_model_id");
const WRITES = fieldSet("tuple_keys", "on_duplicate");
const DELETES = fieldSet("tuple_keys", "on_missing");
const READ = fieldSet("store_id", "tuple_key", "page_size", "continuation_token", "consistency");
const DELETE_TUPLES = fieldSet("tuple_key");
const FILTER = fieldSet("user", "relation", "object");

/** `{object, relation, user}` as a read filter; `object` may be `type:` (every object of a type). */
export function filterIn(value: unknown, what: string): TupleFilter {
  const key = messageOf(value, what, FILTER, true);
  const object = optionalString(key.object, `${what}.object`);
  const relation = optionalString(key.relation, `${what}.relation`);
  const user = optionalString(key.user, `${what}.user`);
  const filter: { -readonly [K in keyof TupleFilter]: TupleFilter[K] } = {};
  if (object !== undefined) {
    const colon = object.indexOf(":");
    if (colon <= 0)
      throw invalid(`${what}.object must be "type:id" or "type:", got ${JSON.stringify(object)}`);
    filter.objectType = object.slice(0, colon);
    if (colon < object.length - 1) filter.object = object;
  }
  if (relation !== undefined) filter.relation = relation;
  if (user !== undefined) filter.user = user;
  return filter;
}

const sortKey = (t: RelationTuple): string => `${t.object}\u0000${t.relation}\u0000${t.user}`;

/** The store's tuples matching `filter` that count now (expired ones left out), in key order. */
async function matching(ctx: ServerContext, storeId: string, filter: TupleFilter): Promise<RelationTuple[]> {
  const snapshot = await ctx.store.snapshot(await ctx.store.currentRevision());
  try {
    const now = Date.now();
    const tuples = (await snapshot.read({ tenant: storeId, ...filter })).filter(
      (t) => t.expiresAt === undefined || t.expiresAt > now,
    );
    const keyed = tuples.map((t) => [sortKey(t), t] as const);
    keyed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return keyed.map(([, t]) => t);
  } finally {
    snapshot.release();
  }
}

/**
 * Deletes the store's tuples matching `filter`: all in one atomic write when at most `limit` match (more is a 400
 * and nothing is deleted); with an infinite limit (a deleted store), in atomic batches of 10 000.
 */
export async function deleteMatching(
  ctx: ServerContext,
  storeId: string,
  filter: TupleFilter,
  limit: number,
): Promise<number> {
  const found = await matching(ctx, storeId, filter);
  if (found.length > limit) {
    throw new ApiError(
      400,
      "exceeded_entity_limit",
      `${found.length} tuples match, more than the ${limit} one delete may remove; narrow the filter`,
    );
  }
  const batch = Number.isFinite(limit) ? Math.max(found.length, 1) : 10_000;
  let deleted = 0;
  for (let i = 0; i < found.length; i += batch) {
    const result = await ctx.store.write({
      writes: [],
      deletes: found.slice(i, i + batch).map((t) => ({
        tenant: t.tenant,
        object: t.object,
        relation: t.relation,
        user: t.user,
        subjectTenant: t.subjectTenant,
      })),
      onMissing: "ignore",
    });
    deleted += result.deleted;
    ctx.wrote(storeId, result.revision);
  }
  return deleted;
}

const OPERATION = { write: "TUPLE_OPERATION_WRITE", delete: "TUPLE_OPERATION_DELETE" } as const;

/** A changelog entry as OpenFGA's TupleChange. */
export async function changeOut(ctx: ServerContext, change: StoredChange): Promise<Json> {
  return {
    tuple_key: tupleKeyOut(toTupleKey(change.tuple)),
    operation: OPERATION[change.op],
    timestamp: timestampOut(await ctx.commitTime(change.revision)),
  };
}

/** The revision to read changes after: a token's, else the last one before `start_time`, else 0. */
export async function changesCursor(
  ctx: ServerContext,
  kind: string,
  token: unknown,
  startTime: unknown,
  type: string | undefined,
): Promise<number> {
  const position = decodeContinuation(kind, token);
  if (position !== undefined) {
    if ((position.type ?? "") !== (type ?? "")) {
      throw new ApiError(
        400,
        "query_string_type_continuation_token_mismatch",
        "the continuation_token was issued for another type filter",
      );
    }
    return positionInt(position, "r");
  }
  const start = optionalString(startTime, "start_time");
  if (start === undefined) return 0;
  const ms = Date.parse(start);
  if (Number.isNaN(ms))
    throw new ApiError(
      400,
      "invalid_start_time",
      `start_time must be RFC 3339, got ${JSON.stringify(start)}`,
    );
  return ctx.store.revisionAt(ms - 1);
}

export function tupleRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post("/stores/:store_id/write", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", WRITE);
    const writesPart = messageOf(body.writes, "writes", WRITES, true);
    const deletesPart = messageOf(body.deletes, "deletes", DELETES, true);
    const writes = arrayOf(writesPart.tuple_keys, "writes.tuple_keys").map((t, i) =>
      tupleKeyIn(t, `writes.tuple_keys[${i}]`),
    );
    const deletes = arrayOf(deletesPart.tuple_keys, "deletes.tuple_keys").map((t, i) =>
      deleteKeyIn(t, `deletes.tuple_keys[${i}]`),
    );
    if (writes.length + deletes.length > ctx.limits.maxTuplesPerWrite) {
      throw new ApiError(
        400,
        "exceeded_entity_limit",
        `a write may hold at most ${ctx.limits.maxTuplesPerWrite} tuples, got ${writes.length + deletes.length}`,
      );
    }
    const onDuplicate = conflictOption(writesPart.on_duplicate, "writes.on_duplicate");
    const onMissing = conflictOption(deletesPart.on_missing, "deletes.on_missing");
    const model = await ctx.modelOf(store.id, body.authorization_model_id);
    const result = await ctx.engines.use(model, (engine) =>
      engine.write({ tenant: store.id, writes, deletes, onDuplicate, onMissing }),
    );
    ctx.wrote(store.id, result.revision, model.id);
    return {};
  });

  app.post("/stores/:store_id/read", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", READ, true);
    const filter = filterIn(body.tuple_key, "tuple_key");
    const pageSize = pageSizeIn(body.page_size, 50, 100);
    const position = decodeContinuation("read", body.continuation_token);
    const after = position === undefined ? undefined : positionString(position, "after");
    const all = await matching(ctx, store.id, filter);
    let start = 0;
    if (after !== undefined) {
      // First tuple whose key sorts after the last one returned.
      let lo = 0;
      let hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sortKey(all[mid]!) <= after) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const page = all.slice(start, start + pageSize);
    const timestamp = timestampOut(await ctx.commitTime(await ctx.store.currentRevision()));
    return {
      tuples: page.map((t) => ({ key: tupleKeyOut(toTupleKey(t)), timestamp })),
      continuation_token:
        start + pageSize < all.length
          ? encodeContinuation("read", { after: sortKey(page[page.length - 1]!) })
          : "",
    };
  });

  app.get("/stores/:store_id/changes", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const query = request.query as Json;
    const type = optionalString(query.type, "type");
    const pageSize = pageSizeIn(query.page_size, 50, 100);
    let cursor = await changesCursor(ctx, "changes", query.continuation_token, query.start_time, type);
    const changes: Json[] = [];
    // Pages of the whole store's changelog, keeping this store's (of `type`); whole revisions only, so the
    // cursor is always the last revision fully returned.
    let full = false;
    for (let scanned = 0; !full && scanned < 20; scanned++) {
      const page = await ctx.store.changesAfter(cursor, 1000);
      if (page.length === 0) break;
      for (let i = 0; i < page.length; ) {
        if (changes.length >= pageSize) {
          full = true;
          break;
        }
        const revision = page[i]!.revision;
        for (; i < page.length && page[i]!.revision === revision; i++) {
          const change = page[i]!;
          if (change.tuple.tenant !== store.id) continue;
          if (type !== undefined && change.tuple.objectType !== type) continue;
          changes.push(await changeOut(ctx, change));
        }
        cursor = revision;
      }
    }
    return {
      changes,
      continuation_token: encodeContinuation("changes", {
        r: cursor,
        ...(type !== undefined ? { type } : {}),
      }),
    };
  });

  app.post("/stores/:store_id/delete-tuples", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", DELETE_TUPLES);
    const filter = filterIn(body.tuple_key, "tuple_key");
    if (filter.objectType === undefined && filter.relation === undefined && filter.user === undefined) {
      throw invalid("tuple_key needs at least one of object (type:id or type:), relation, user");
    }
    const deleted = await deleteMatching(ctx, store.id, filter, ctx.limits.maxDeleteByFilter);
    return { deleted };
  });
}

function conflictOption(value: unknown, what: string): "error" | "ignore" {
  if (value === undefined || value === null || value === "" || value === "error") return "error";
  if (value === "ignore") return "ignore";
  throw invalid(`${what} must be "error" or "ignore", got ${JSON.stringify(value)}`);
}
