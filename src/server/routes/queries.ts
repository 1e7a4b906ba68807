/**
 * Queries: `POST /stores/{store_id}/check`, `…/batch-check`, `…/list-objects`, `…/streamed-list-objects`,
 * `…/list-users`, `…/expand`. Each runs on the engine of the model it names (or the store's newest) with the
 * store as tenant, and within the server's time limit (a 504 `deadline_exceeded` after it).
 *
 * Beyond OpenFGA: batch-check takes up to `maxChecksPerBatch` checks (OpenFGA: 50); list-objects never drops
 * objects — past `maxListObjects` it answers 400 `exceeded_entity_limit` unless the request pages with `page_size`
 * and `continuation_token` (then it returns `continuation_token`); streamed-list-objects streams every object.
 */
import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { CheckRequest, Engine } from "../../engine/engine.js";
import { MAX_PAGE_SIZE } from "../../engine/pages.js";
import { isNexusError } from "../../util/errors.js";
import type { ServerContext } from "../context.js";
import { ApiError, invalid, toApiError } from "../errors.js";
import {
  arrayOf,
  contextIn,
  contextualTuplesIn,
  fieldSet,
  type Json,
  messageOf,
  pageSizeIn,
  stringOf,
  treeOut,
  userOut,
} from "../json.js";

/**
 * Runs `run` with the request's deadline signal (shared by requests starting together: context.ts Deadlines); once it
 * aborts the answer is a 504, whether or not `run` stops (an engine call given the signal stops with "aborted").
 */
export function withDeadline<T>(
  signal: AbortSignal,
  ms: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const expired = (): ApiError =>
    new ApiError(504, "deadline_exceeded", `the request took longer than the server's ${ms} ms limit`);
  if (signal.aborted) return Promise.reject(expired());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(expired());
    signal.addEventListener("abort", onAbort, { once: true });
    run(signal).then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(isNexusError(error, "aborted") ? expired() : error);
      },
    );
  });
}

// Each body's fields, as OpenFGA's messages name them (store_id too: grpc-gateway takes it, the path's wins).
const QUERY = ["store_id", "authorization_model_id", "contextual_tuples", "context", "consistency"];
export const CHECK = fieldSet(...QUERY, "tuple_key", "trace");
const BATCH_CHECK = fieldSet("store_id", "authorization_model_id", "consistency", "checks");
const BATCH_ITEM = fieldSet("tuple_key", "contextual_tuples", "context", "correlation_id");
export const CHECK_KEY = fieldSet("user", "relation", "object");
const LIST_OBJECTS = fieldSet(...QUERY, "type", "relation", "user");
const LIST_OBJECTS_PAGED = fieldSet(...LIST_OBJECTS, "page_size", "continuation_token");
const LIST_USERS = fieldSet(...QUERY, "object", "relation", "user_filters");
const OBJECT = fieldSet("type", "id");
const USER_FILTER = fieldSet("type", "relation");
const EXPAND = fieldSet(
  "store_id",
  "authorization_model_id",
  "consistency",
  "contextual_tuples",
  "tuple_key",
);
const EXPAND_KEY = fieldSet("relation", "object");

/** The check a body's `tuple_key` (+ `contextual_tuples`, `context`) asks, in the store's tenant. */
function checkIn(body: Json, tenant: string, what: string): CheckRequest {
  const key = messageOf(body.tuple_key, `${what}tuple_key`, CHECK_KEY);
  const contextualTuples = contextualTuplesIn(body.contextual_tuples, `${what}contextual_tuples`);
  const context = contextIn(body.context, `${what}context`);
  return {
    tenant,
    user: stringOf(key.user, `${what}tuple_key.user`),
    relation: stringOf(key.relation, `${what}tuple_key.relation`),
    object: stringOf(key.object, `${what}tuple_key.object`),
    ...(contextualTuples.length > 0 ? { contextualTuples } : {}),
    ...(context !== undefined ? { context } : {}),
  };
}

/** A batch item's error as OpenFGA's CheckError (`input_error` for 400s, `internal_error` otherwise). */
function checkErrorOut(error: unknown): Json {
  const api = toApiError(error);
  return api.status === 400
    ? { input_error: api.code, message: api.message }
    : { internal_error: api.code, message: api.message };
}

export function queryRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const limited = <T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    withDeadline(ctx.deadlines.signal(), ctx.deadlines.ms, run);

  app.post("/stores/:store_id/check", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", CHECK);
    const check = checkIn(body, store.id, "");
    const model = await ctx.modelOf(store.id, body.authorization_model_id);
    const consistency = ctx.consistency(store.id, body.consistency, model.id);
    const allowed = await ctx.engines.use(model, (engine) =>
      limited((signal) =>
        engine.check(consistency === undefined ? check : { ...check, consistency }, { signal }),
      ),
    );
    return { allowed, resolution: "" };
  });

  app.post("/stores/:store_id/batch-check", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", BATCH_CHECK);
    const items = arrayOf(body.checks, "checks");
    if (items.length === 0) throw invalid("checks needs at least one check");
    if (items.length > ctx.limits.maxChecksPerBatch) {
      throw new ApiError(
        400,
        "exceeded_entity_limit",
        `a batch may hold at most ${ctx.limits.maxChecksPerBatch} checks, got ${items.length}`,
      );
    }
    const model = await ctx.modelOf(store.id, body.authorization_model_id);
    const consistency = ctx.consistency(store.id, body.consistency, model.id);
    // Items are read here (their JSON shape); ids, limits and the checks themselves are engine.batchCheck's.
    const checks = items.map((value, i) => {
      const item = messageOf(value, `checks[${i}]`, BATCH_ITEM);
      const id = item.correlation_id;
      if (typeof id !== "string") throw invalid(`checks[${i}].correlation_id must be a string`);
      return { ...checkIn(item, store.id, `checks[${i}].`), correlationId: id };
    });
    const answer = await ctx.engines.use(model, (engine) =>
      limited((signal) =>
        engine.batchCheck(
          { checks, ...(consistency !== undefined ? { consistency } : {}) },
          { signal, maxChecks: ctx.limits.maxChecksPerBatch },
        ),
      ),
    );
    // No prototype: a correlation id such as "__proto__" is an ordinary key (on {} it would set the prototype).
    const result: Json = Object.create(null);
    for (const { correlationId, allowed, error } of answer.result) {
      result[correlationId] = error === undefined ? { allowed } : { error: checkErrorOut(error) };
    }
    return { result };
  });

  /** The engine's list objects request for a list-objects body, and the model it names. */
  const listObjectsRequest = async (
    storeId: string,
    body: Json,
    consistencyFor: (modelId: string) => unknown,
  ) => {
    const contextualTuples = contextualTuplesIn(body.contextual_tuples);
    const context = contextIn(body.context);
    const model = await ctx.modelOf(storeId, body.authorization_model_id);
    const consistency = consistencyFor(model.id);
    const request = {
      tenant: storeId,
      user: stringOf(body.user, "user"),
      relation: stringOf(body.relation, "relation"),
      type: stringOf(body.type, "type"),
      ...(contextualTuples.length > 0 ? { contextualTuples } : {}),
      ...(context !== undefined ? { context } : {}),
      ...(consistency !== undefined ? { consistency } : {}),
    };
    return { model, request: request as Parameters<Engine["listObjects"]>[0] };
  };

  /** list-objects and streamed-list-objects: the full, sorted list of objects. */
  const listObjects = async (
    storeId: string,
    body: Json,
    consistencyFor: (modelId: string) => unknown,
  ): Promise<string[]> => {
    const { model, request } = await listObjectsRequest(storeId, body, consistencyFor);
    return ctx.engines.use(model, (engine) => limited((signal) => engine.listObjects(request, { signal })));
  };

  app.post("/stores/:store_id/list-objects", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", LIST_OBJECTS_PAGED);
    const paged = body.page_size !== undefined && body.page_size !== null;
    if (!paged) {
      const objects = await listObjects(store.id, body, (id) =>
        ctx.consistency(store.id, body.consistency, id),
      );
      if (objects.length > ctx.limits.maxListObjects) {
        throw new ApiError(
          400,
          "exceeded_entity_limit",
          `${objects.length} objects match, more than the ${ctx.limits.maxListObjects} one answer may hold; ` +
            "page with page_size and continuation_token, or use streamed-list-objects",
        );
      }
      return { objects };
    }
    // Paging (beyond OpenFGA) is the engine's listObjectsPage: every page reads the revision the first one
    // resolved to (the token carries it), so the pages add up to one listing at one revision.
    const most = Math.min(ctx.limits.maxListObjects, MAX_PAGE_SIZE);
    const pageSize = pageSizeIn(body.page_size, most, most);
    const continuationToken =
      body.continuation_token === undefined ||
      body.continuation_token === null ||
      body.continuation_token === ""
        ? ""
        : stringOf(body.continuation_token, "continuation_token");
    const { model, request: listRequest } = await listObjectsRequest(store.id, body, (id) =>
      ctx.consistency(store.id, body.consistency, id),
    );
    const page = await ctx.engines.use(model, (engine) =>
      limited((signal) =>
        engine.listObjectsPage({ ...listRequest, pageSize, continuationToken }, { signal }),
      ),
    );
    return { objects: page.objects, continuation_token: page.continuationToken };
  });

  app.post("/stores/:store_id/streamed-list-objects", async (request, reply) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", LIST_OBJECTS);
    // Errors before the first line are ordinary HTTP errors; the list is complete before streaming starts.
    const objects = await listObjects(store.id, body, (id) =>
      ctx.consistency(store.id, body.consistency, id),
    );
    reply.type("application/x-ndjson");
    return Readable.from(
      (function* () {
        for (const object of objects) yield `${JSON.stringify({ result: { object } })}\n`;
      })(),
    );
  });

  app.post("/stores/:store_id/list-users", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", LIST_USERS);
    const object = messageOf(body.object, "object", OBJECT);
    const filters = arrayOf(body.user_filters, "user_filters").map((f, i) => {
      const filter = messageOf(f, `user_filters[${i}]`, USER_FILTER);
      const type = stringOf(filter.type, `user_filters[${i}].type`);
      const relation =
        filter.relation === undefined || filter.relation === null || filter.relation === ""
          ? undefined
          : stringOf(filter.relation, `user_filters[${i}].relation`);
      return relation === undefined ? { type } : { type, relation };
    });
    const contextualTuples = contextualTuplesIn(body.contextual_tuples);
    const context = contextIn(body.context);
    const model = await ctx.modelOf(store.id, body.authorization_model_id);
    const consistency = ctx.consistency(store.id, body.consistency, model.id);
    const listRequest = {
      tenant: store.id,
      object: `${stringOf(object.type, "object.type")}:${stringOf(object.id, "object.id")}`,
      relation: stringOf(body.relation, "relation"),
      userFilters: filters,
      ...(contextualTuples.length > 0 ? { contextualTuples } : {}),
      ...(context !== undefined ? { context } : {}),
      ...(consistency !== undefined ? { consistency } : {}),
    };
    const users = await ctx.engines.use(model, (engine) => limited(() => engine.listUsers(listRequest)));
    return { users: users.map(userOut) };
  });

  app.post("/stores/:store_id/expand", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", EXPAND);
    const key = messageOf(body.tuple_key, "tuple_key", EXPAND_KEY);
    const contextualTuples = contextualTuplesIn(body.contextual_tuples);
    const model = await ctx.modelOf(store.id, body.authorization_model_id);
    const consistency = ctx.consistency(store.id, body.consistency, model.id);
    const expandRequest = {
      tenant: store.id,
      object: stringOf(key.object, "tuple_key.object"),
      relation: stringOf(key.relation, "tuple_key.relation"),
      ...(contextualTuples.length > 0 ? { contextualTuples } : {}),
      ...(consistency !== undefined ? { consistency } : {}),
    };
    const tree = await ctx.engines.use(model, (engine) => limited(() => engine.expand(expandRequest)));
    return { tree: treeOut(tree) };
  });
}
