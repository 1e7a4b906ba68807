/**
 * Assertions: `PUT /stores/{store_id}/assertions/{model_id}` replaces a model's assertions (at most 100, as in
 * OpenFGA), `GET` reads them. They are kept in the catalog; the model must exist.
 */
import type { FastifyInstance } from "fastify";
import type { AssertionRecord } from "../catalog.js";
import type { ServerContext } from "../context.js";
import { ApiError, invalid } from "../errors.js";
import {
  arrayOf,
  contextIn,
  contextualTuplesIn,
  fieldSet,
  type Json,
  messageOf,
  tupleKeyOut,
  ulidParam,
} from "../json.js";

// Fields as OpenFGA's messages name them (store_id and authorization_model_id too: the path's win).
const WRITE_ASSERTIONS = fieldSet("store_id", "authorization_model_id", "assertions");
const ASSERTION = fieldSet("tuple_key", "expectation", "contextual_tuples", "context");
const ASSERTION_KEY = fieldSet("object", "relation", "user");

function assertionIn(value: unknown, what: string): AssertionRecord {
  const assertion = messageOf(value, what, ASSERTION);
  const key = messageOf(assertion.tuple_key, `${what}.tuple_key`, ASSERTION_KEY);
  for (const field of ["user", "relation", "object"]) {
    if (typeof key[field] !== "string" || key[field] === "") {
      throw invalid(`${what}.tuple_key.${field} must be a non-empty string`);
    }
  }
  if (typeof assertion.expectation !== "boolean") throw invalid(`${what}.expectation must be true or false`);
  const contextual = contextualTuplesIn(assertion.contextual_tuples, `${what}.contextual_tuples`);
  const context = contextIn(assertion.context, `${what}.context`);
  return {
    tuple_key: { user: key.user, relation: key.relation, object: key.object },
    expectation: assertion.expectation,
    contextual_tuples: contextual.map(tupleKeyOut),
    ...(context !== undefined ? { context } : {}),
  };
}

export function assertionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.put("/stores/:store_id/assertions/:model_id", async (request, reply) => {
    const params = request.params as Json;
    const store = ctx.storeOf(params.store_id);
    const model = await ctx.modelOf(store.id, ulidParam(params.model_id, "authorization_model_id"));
    const body = messageOf(request.body, "the request body", WRITE_ASSERTIONS);
    const list = arrayOf(body.assertions, "assertions");
    if (list.length > 100) {
      throw new ApiError(400, "assertions_too_many_items", `at most 100 assertions, got ${list.length}`);
    }
    await ctx.catalog.setAssertions(
      store.id,
      model.id,
      list.map((a, i) => assertionIn(a, `assertions[${i}]`)),
    );
    reply.code(204);
    return null;
  });

  app.get("/stores/:store_id/assertions/:model_id", async (request) => {
    const params = request.params as Json;
    const store = ctx.storeOf(params.store_id);
    const model = await ctx.modelOf(store.id, ulidParam(params.model_id, "authorization_model_id"));
    return { authorization_model_id: model.id, assertions: ctx.catalog.getAssertions(store.id, model.id) };
  });
}
