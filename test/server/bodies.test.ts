/**
 * Request bodies are read as OpenFGA's messages: only the field names OpenFGA's API has (its snake_case json_names),
 * anything else a 400 naming the field, never dropped. OpenFGA's gateway drops an unknown field (camelCase
 * `authorizationModelId` is one), so such a body would be answered as if the field were absent: on the newest model,
 * without its contextual tuples. Batch-check answers keep every correlation id, "__proto__" too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NexusServer } from "../../src/server/index.js";
import { clientFor, modelJson, startTestServer } from "./helpers.js";

const M1 = modelJson(`model
  schema 1.1
type user
type doc
  relations
    define owner: [user]
    define viewer: [user]`);
const M2 = modelJson(`model
  schema 1.1
type user
type doc
  relations
    define owner: [user]
    define viewer: [user] or owner`);

let server: NexusServer;
let storeId: string;
let m1: string;

async function post(path: string, body: unknown) {
  const response = await fetch(`${server.url}/stores/${storeId}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  server = await startTestServer();
  storeId = (await clientFor(server).createStore({ name: "bodies" })).id;
  const client = clientFor(server, { storeId });
  m1 = (await client.writeAuthorizationModel(M1)).authorization_model_id;
  await client.writeAuthorizationModel(M2);
  await client.writeTuples([{ user: "user:anne", relation: "owner", object: "doc:1" }]);
});

afterAll(async () => {
  await server.close();
});

const anneViews = { user: "user:anne", relation: "viewer", object: "doc:1" };

describe("field names", () => {
  it("authorization_model_id picks the model; authorizationModelId is a 400 naming OpenFGA's spelling", async () => {
    expect((await post("/check", { tuple_key: anneViews })).body.allowed).toBe(true);
    expect((await post("/check", { tuple_key: anneViews, authorization_model_id: m1 })).body.allowed).toBe(
      false,
    );
    const camel = await post("/check", { tuple_key: anneViews, authorizationModelId: m1 });
    expect(camel.status).toBe(400);
    expect(camel.body).toEqual({
      code: "validation_error",
      message: expect.stringContaining("authorizationModelId"),
    });
    expect(camel.body.message).toContain('"authorization_model_id"');
    const both = await post("/check", {
      tuple_key: anneViews,
      authorization_model_id: m1,
      authorizationModelId: m1,
    });
    expect(both.status).toBe(400);
  });

  it("a misspelt or camelCase field is refused at any depth, on every endpoint", async () => {
    const contextual = { tuple_keys: [{ user: "user:bob", relation: "viewer", object: "doc:1" }] };
    const cases: [string, unknown, string][] = [
      ["/check", { tuple_key: anneViews, authorisation_model_id: m1 }, "authorisation_model_id"],
      ["/check", { tuple_key: anneViews, contextualTuples: contextual }, "contextualTuples"],
      ["/check", { tupleKey: anneViews }, "tupleKey"],
      ["/check", { tuple_key: { ...anneViews, usr: "user:bob" } }, "usr"],
      ["/check", { tuple_key: anneViews, contextual_tuples: { tupleKeys: [] } }, "tupleKeys"],
      [
        "/check",
        {
          tuple_key: anneViews,
          contextual_tuples: { tuple_keys: [{ ...anneViews, condition: { name: "c", ctx: {} } }] },
        },
        "ctx",
      ],
      ["/batch-check", { checks: [{ tuple_key: anneViews, correlationId: "a" }] }, "correlationId"],
      [
        "/list-objects",
        { user: "user:anne", relation: "viewer", type: "doc", contextualTuples: contextual },
        "contextualTuples",
      ],
      [
        "/list-users",
        { object: { type: "doc", id: "1" }, relation: "viewer", userFilters: [{ type: "user" }] },
        "userFilters",
      ],
      [
        "/expand",
        { tuple_key: { relation: "viewer", object: "doc:1" }, authorizationModelId: m1 },
        "authorizationModelId",
      ],
      ["/write", { writes: { tuple_keys: [], onDuplicate: "ignore" } }, "onDuplicate"],
      ["/read", { tuple_key: { object: "doc:1" }, pageSize: 1 }, "pageSize"],
      ["/authorization-models", { ...(M2 as object), schemaVersion: "1.1" }, "schemaVersion"],
    ];
    for (const [path, body, field] of cases) {
      const answer = await post(path, body);
      expect({ path, field, status: answer.status }).toEqual({ path, field, status: 400 });
      expect(answer.body).toEqual({
        code: "validation_error",
        message: expect.stringContaining(`"${field}"`),
      });
    }
    // Nothing was written by the refused bodies.
    expect((await post("/read", {})).body.tuples).toHaveLength(1);
  });

  it("accepts every field OpenFGA's messages have, store_id included (the path's wins)", async () => {
    const answer = await post("/check", {
      store_id: storeId,
      tuple_key: anneViews,
      contextual_tuples: { tuple_keys: [] },
      authorization_model_id: m1,
      trace: false,
      context: {},
      consistency: "HIGHER_CONSISTENCY",
    });
    expect(answer).toEqual({ status: 200, body: { allowed: false, resolution: "" } });
  });
});

describe("batch-check correlation ids", () => {
  it("keeps an answer for every id, including names of Object.prototype's properties", async () => {
    const ids = ["__proto__", "constructor", "toString", "b"];
    const answer = await post("/batch-check", {
      checks: ids.map((correlation_id) => ({ tuple_key: anneViews, correlation_id })),
    });
    expect(answer.status).toBe(200);
    const result = answer.body.result as Record<string, unknown>;
    expect(Object.keys(result).sort()).toEqual([...ids].sort());
    for (const id of ids)
      expect(Object.getOwnPropertyDescriptor(result, id)?.value).toEqual({ allowed: true });
  });
});
