/**
 * Authorization models: `POST /stores/{store_id}/authorization-models` (a new immutable version, id a ULID),
 * `GET /stores/{store_id}/authorization-models` (newest first, as the SDK's readLatestAuthorizationModel expects),
 * `GET /stores/{store_id}/authorization-models/{id}`. A model is compiled before it is kept, so an invalid one is
 * a 400 and never becomes the latest.
 */
import type { FastifyInstance } from "fastify";
import { compileModelAsync } from "../../model/index.js";
import type { StoredModel } from "../../tuples/models.js";
import { isNexusError } from "../../util/errors.js";
import type { ServerContext } from "../context.js";
import { ApiError, invalid } from "../errors.js";
import { arrayOf, fieldSet, type Json, messageOf, objectOf, pageSizeIn, ulidParam } from "../json.js";
import { decodeContinuation, encodeContinuation, positionString } from "../pagination.js";

const SCHEMA_VERSIONS = new Set(["1.1", "1.2"]);
/** OpenFGA's fields, and `id`: a model read back (which carries its id) may be written again, as a new version. */
const WRITE_MODEL = fieldSet("store_id", "type_definitions", "schema_version", "conditions", "id");

/** Parsed model JSON, by model id (versions are immutable). */
const parsed = new WeakMap<StoredModel, Json>();

export function modelOut(model: StoredModel): Json {
  let json = parsed.get(model);
  if (json === undefined) {
    json = JSON.parse(model.source) as Json;
    parsed.set(model, json);
  }
  return {
    id: model.id,
    schema_version: json.schema_version,
    type_definitions: json.type_definitions,
    conditions: json.conditions ?? {},
  };
}

export function modelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post("/stores/:store_id/authorization-models", async (request, reply) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const body = messageOf(request.body, "the request body", WRITE_MODEL);
    if (typeof body.schema_version !== "string" || !SCHEMA_VERSIONS.has(body.schema_version)) {
      throw new ApiError(
        400,
        "unsupported_schema_version",
        `schema_version must be "1.1" (or "1.2"), got ${JSON.stringify(body.schema_version ?? null)}`,
      );
    }
    const typeDefinitions = arrayOf(body.type_definitions, "type_definitions");
    if (typeDefinitions.length === 0) {
      throw new ApiError(400, "type_definitions_too_few_items", "type_definitions needs at least one type");
    }
    const conditions =
      body.conditions === undefined || body.conditions === null
        ? {}
        : objectOf(body.conditions, "conditions");
    const json = { schema_version: body.schema_version, type_definitions: typeDefinitions, conditions };
    try {
      await compileModelAsync(json, "openfga");
    } catch (error) {
      if (isNexusError(error)) throw new ApiError(400, "invalid_authorization_model", error.message);
      throw invalid(`the model could not be read: ${(error as Error).message}`);
    }
    const model = await ctx.models.add({ tenant: store.id, source: JSON.stringify(json), format: "openfga" });
    ctx.modelWritten(model);
    reply.code(201);
    return { authorization_model_id: model.id };
  });

  app.get("/stores/:store_id/authorization-models", async (request) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const query = request.query as Json;
    const pageSize = pageSizeIn(query.page_size, 50, 100);
    const position = decodeContinuation("models", query.continuation_token);
    const before = position === undefined ? undefined : positionString(position, "before");
    const page = await ctx.models.list(store.id, {
      limit: pageSize + 1,
      ...(before !== undefined ? { before } : {}),
    });
    const more = page.length > pageSize;
    const shown = page.slice(0, pageSize);
    return {
      authorization_models: shown.map(modelOut),
      continuation_token: more ? encodeContinuation("models", { before: shown[shown.length - 1]!.id }) : "",
    };
  });

  app.get("/stores/:store_id/authorization-models/:id", async (request) => {
    const params = request.params as Json;
    const store = ctx.storeOf(params.store_id);
    const model = await ctx.modelOf(store.id, ulidParam(params.id, "id"));
    return { authorization_model: modelOut(model) };
  });
}
