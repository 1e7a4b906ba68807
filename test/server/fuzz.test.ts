/**
 * Bad input never takes the server down: random bodies (random JSON, JSON shaped like each endpoint's request with
 * random values, text that is not JSON) posted to every endpoint, with valid and invalid store and model ids. Every
 * answer is a 2xx or a 4xx with an OpenFGA-shaped JSON error — never a 5xx, a hang or a dropped connection — and
 * the server still serves afterwards.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NexusServer } from "../../src/server/index.js";
import { clientFor, modelJson, startTestServer } from "./helpers.js";

let server: NexusServer;
let storeId: string;
let modelId: string;
/** A store the fuzzing never touches, checked at the end. */
let quietStoreId: string;

beforeAll(async () => {
  server = await startTestServer({ limits: { requestTimeoutMs: 5_000 } });
  storeId = (await clientFor(server).createStore({ name: "fuzz" })).id;
  quietStoreId = (await clientFor(server).createStore({ name: "quiet" })).id;
  const quiet = clientFor(server, { storeId: quietStoreId });
  await quiet.writeAuthorizationModel(
    modelJson("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]"),
  );
  await quiet.writeTuples([{ user: "user:anne", relation: "viewer", object: "doc:1" }]);
  const client = clientFor(server, { storeId });
  modelId = (
    await client.writeAuthorizationModel(
      modelJson(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define parent: [doc]
    define viewer: [user, user:*, group#member, user with ok] or viewer from parent
condition ok(x: int) {
  x < 10
}`),
    )
  ).authorization_model_id;
  await client.write({
    writes: [
      { user: "user:anne", relation: "member", object: "group:eng" },
      { user: "group:eng#member", relation: "viewer", object: "doc:1" },
      { user: "doc:1", relation: "parent", object: "doc:2" },
    ],
  });
});

afterAll(async () => {
  await server.close();
});

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    "user:anne",
    "user:*",
    "group:eng#member",
    "doc:1",
    "doc:",
    "doc",
    "viewer",
    "member",
    ":",
    "#",
    "a:b#c#d",
    "\u0000",
    "x".repeat(3000),
    "MINIMIZE_LATENCY",
    "HIGHER_CONSISTENCY",
    "ignore",
  ),
);
const anyJson = fc.jsonValue({ maxDepth: 3 });
const tupleKey = fc.record(
  {
    user: fc.oneof(text, anyJson),
    relation: fc.oneof(text, anyJson),
    object: fc.oneof(text, anyJson),
    condition: fc.oneof(fc.record({ name: fc.oneof(text, fc.constant("ok")), context: anyJson }), anyJson),
  },
  { requiredKeys: [] },
);
const tupleKeys = fc.oneof(fc.array(tupleKey, { maxLength: 4 }), anyJson);
const shaped = fc.record(
  {
    tuple_key: fc.oneof(tupleKey, anyJson),
    writes: fc.oneof(fc.record({ tuple_keys: tupleKeys, on_duplicate: text }, { requiredKeys: [] }), anyJson),
    deletes: fc.oneof(fc.record({ tuple_keys: tupleKeys, on_missing: text }, { requiredKeys: [] }), anyJson),
    checks: fc.oneof(
      fc.array(
        fc.record(
          {
            tuple_key: fc.oneof(tupleKey, anyJson),
            correlation_id: fc.oneof(text, anyJson),
            contextual_tuples: fc.oneof(fc.record({ tuple_keys: tupleKeys }), tupleKeys),
            context: anyJson,
          },
          { requiredKeys: [] },
        ),
        { maxLength: 5 },
      ),
      anyJson,
    ),
    contextual_tuples: fc.oneof(fc.record({ tuple_keys: tupleKeys }), tupleKeys),
    context: fc.oneof(fc.dictionary(fc.constantFrom("x", "y"), anyJson), anyJson),
    consistency: fc.oneof(text, anyJson),
    authorization_model_id: fc.oneof(text, fc.constant("MODEL"), anyJson),
    user: fc.oneof(text, anyJson),
    relation: fc.oneof(text, anyJson),
    type: fc.oneof(text, anyJson),
    object: fc.oneof(text, fc.record({ type: text, id: text }, { requiredKeys: [] }), anyJson),
    user_filters: fc.oneof(
      fc.array(fc.record({ type: text, relation: text }, { requiredKeys: [] })),
      anyJson,
    ),
    page_size: fc.oneof(fc.integer(), text, anyJson),
    continuation_token: fc.oneof(text, anyJson),
    name: fc.oneof(text, anyJson),
    schema_version: fc.oneof(fc.constant("1.1"), text, anyJson),
    type_definitions: fc.oneof(
      fc.array(fc.record({ type: text, relations: anyJson, metadata: anyJson }, { requiredKeys: [] })),
      anyJson,
    ),
    conditions: anyJson,
    assertions: fc.oneof(
      fc.array(fc.record({ tuple_key: tupleKey, expectation: anyJson }, { requiredKeys: [] })),
      anyJson,
    ),
  },
  { requiredKeys: [] },
);
/** A body as sent: JSON of a random value or a shaped request, or raw text. */
const body = fc.oneof(
  shaped.map((v) => JSON.stringify(v)),
  anyJson.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom("", "{", "null", "[]", '{"__proto__":{"x":1}}', "1e999", '{"a":'),
);
const id = fc.oneof(fc.constant("STORE"), fc.constant("MODEL"), text, fc.constant("0".repeat(26)));

const ENDPOINTS: [string, string][] = [
  ["POST", "/stores"],
  ["GET", "/stores"],
  ["GET", "/stores/:id"],
  ["POST", "/stores/:id/authorization-models"],
  ["GET", "/stores/:id/authorization-models"],
  ["GET", "/stores/:id/authorization-models/:model"],
  ["POST", "/stores/:id/write"],
  ["POST", "/stores/:id/read"],
  ["GET", "/stores/:id/changes"],
  ["POST", "/stores/:id/check"],
  ["POST", "/stores/:id/batch-check"],
  ["POST", "/stores/:id/list-objects"],
  ["POST", "/stores/:id/streamed-list-objects"],
  ["POST", "/stores/:id/list-users"],
  ["POST", "/stores/:id/expand"],
  ["PUT", "/stores/:id/assertions/:model"],
  ["GET", "/stores/:id/assertions/:model"],
  ["POST", "/stores/:id/delete-tuples"],
  ["GET", "/stores/:id/watch"],
];

const resolveId = (value: string): string =>
  value === "STORE" ? storeId : value === "MODEL" ? modelId : encodeURIComponent(value);

describe("fuzz", () => {
  for (const [method, template] of ENDPOINTS) {
    it(`${method} ${template}: random input answers 2xx or a 4xx JSON error`, {
      timeout: 120_000,
    }, async () => {
      await fc.assert(
        fc.asyncProperty(
          body,
          fc.constantFrom("STORE", "STORE", "STORE"),
          id,
          fc.option(
            fc.dictionary(
              fc.constantFrom("page_size", "continuation_token", "type", "start_time", "name"),
              text,
            ),
          ),
          async (payload, store, model, query) => {
            // "MODEL" in a body stands for the real model id (unknown when the arbitraries are built).
            const sent = payload.replaceAll('"MODEL"', JSON.stringify(modelId));
            const path = template
              .replace(":id", resolveId(store))
              .replace(":model", resolveId(model === "STORE" ? "MODEL" : model));
            const search = query === null ? "" : `?${new URLSearchParams(query as Record<string, string>)}`;
            const controller = new AbortController();
            const response = await fetch(`${server.url}${path}${search}`, {
              method,
              signal: controller.signal,
              ...(method === "GET" ? {} : { headers: { "content-type": "application/json" }, body: sent }),
            });
            const status = response.status;
            if (template.endsWith("/watch") && status === 200) {
              controller.abort(); // an open stream: the headers said yes
              return;
            }
            const answer = await response.text();
            expect(
              status,
              `${method} ${path}${search} ${sent.slice(0, 200)} -> ${answer.slice(0, 300)}`,
            ).toBeLessThan(500);
            if (status >= 400) {
              const error = JSON.parse(answer) as { code: unknown; message: unknown };
              expect(typeof error.code).toBe("string");
              expect(typeof error.message).toBe("string");
            }
          },
        ),
        { numRuns: Number(process.env.FUZZ_RUNS ?? 60) },
      );
    });
  }

  it("the server still serves", async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const check = await clientFor(server, { storeId: quietStoreId }).check({
      user: "user:anne",
      relation: "viewer",
      object: "doc:1",
    });
    expect(check.allowed).toBe(true);
  });
});
