/**
 * Error shapes and statuses as OpenFGA's API gives them (`{"code", "message"}`; 400 validation, 401 auth, 404 not
 * found), limits (body size, batch size, write size, list size, slow clients), preshared-key auth through the SDK
 * and raw HTTP, CORS preflights with the SDK's headers, /healthz and /metrics.
 */
import { connect } from "node:net";
import { FgaApiAuthenticationError, FgaApiValidationError } from "@openfga/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NexusServer } from "../../src/server/index.js";
import { clientFor, modelJson, startTestServer } from "./helpers.js";

const MODEL = modelJson(`model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`);

const KEY = "s3cret-key";
let server: NexusServer;
let storeId: string;
let emptyStoreId: string;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${KEY}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, body: json as Record<string, unknown>, headers: response.headers };
}

beforeAll(async () => {
  server = await startTestServer({
    presharedKeys: ["other-key", KEY],
    limits: {
      bodyBytes: 64 * 1024,
      maxChecksPerBatch: 100,
      maxListObjects: 5,
      maxTuplesPerWrite: 20,
      maxDeleteByFilter: 3,
    },
  });
  const client = clientFor(server, { token: KEY });
  storeId = (await client.createStore({ name: "errors" })).id;
  emptyStoreId = (await client.createStore({ name: "empty" })).id;
  const c = clientFor(server, { storeId, token: KEY });
  await c.writeAuthorizationModel(MODEL);
  await c.write({
    writes: Array.from({ length: 8 }, (_, i) => ({
      user: "user:anne",
      relation: "viewer",
      object: `doc:${i}`,
    })),
  });
});

afterAll(async () => {
  await server.close();
});

describe("error shapes and statuses", () => {
  const cases: [string, () => Promise<{ status: number; body: Record<string, unknown> }>, number, string][] =
    [
      [
        "malformed JSON",
        () => call("POST", `/stores/${"0".repeat(26)}/check`, "{not json"),
        400,
        "validation_error",
      ],
      ["a body that is not an object", () => call("POST", "/stores", "[1,2]"), 400, "validation_error"],
      ["a store id that is not a ULID", () => call("GET", "/stores/not-a-ulid"), 400, "validation_error"],
      ["an unknown store", () => call("GET", `/stores/${"0".repeat(26)}`), 404, "store_id_not_found"],
      [
        "an unknown model",
        () => call("GET", `/stores/${storeId}/authorization-models/${"0".repeat(26)}`),
        404,
        "authorization_model_not_found",
      ],
      [
        "a check on a store without a model",
        () =>
          call("POST", `/stores/${emptyStoreId}/check`, {
            tuple_key: { user: "user:anne", relation: "viewer", object: "doc:1" },
          }),
        400,
        "latest_authorization_model_not_found",
      ],
      [
        "a check without tuple_key",
        () => call("POST", `/stores/${storeId}/check`, {}),
        400,
        "validation_error",
      ],
      [
        "an unknown type",
        () =>
          call("POST", `/stores/${storeId}/check`, {
            tuple_key: { user: "user:anne", relation: "viewer", object: "folder:1" },
          }),
        400,
        "type_not_found",
      ],
      [
        "an unknown relation",
        () =>
          call("POST", `/stores/${storeId}/check`, {
            tuple_key: { user: "user:anne", relation: "owner", object: "doc:1" },
          }),
        400,
        "relation_not_found",
      ],
      [
        "an invalid tuple",
        () =>
          call("POST", `/stores/${storeId}/write`, {
            writes: { tuple_keys: [{ user: "doc:1", relation: "viewer", object: "doc:2" }] },
          }),
        400,
        "invalid_tuple",
      ],
      [
        "a duplicate write",
        () =>
          call("POST", `/stores/${storeId}/write`, {
            writes: { tuple_keys: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] },
          }),
        400,
        "write_failed_due_to_invalid_input",
      ],
      [
        "a bad consistency",
        () =>
          call("POST", `/stores/${storeId}/check`, {
            tuple_key: { user: "user:anne", relation: "viewer", object: "doc:1" },
            consistency: "SOMETIMES",
          }),
        400,
        "validation_error",
      ],
      [
        "a garbage continuation token",
        () => call("POST", `/stores/${storeId}/read`, { continuation_token: "garbage!" }),
        400,
        "invalid_continuation_token",
      ],
      [
        "a continuation token of another endpoint",
        async () => {
          const page = await call("GET", `/stores?page_size=1`);
          return call("POST", `/stores/${storeId}/read`, {
            continuation_token: page.body.continuation_token,
          });
        },
        400,
        "invalid_continuation_token",
      ],
      ["a page_size over 100", () => call("GET", `/stores?page_size=101`), 400, "validation_error"],
      [
        "an unsupported schema version",
        () =>
          call("POST", `/stores/${storeId}/authorization-models`, {
            schema_version: "1.0",
            type_definitions: [],
          }),
        400,
        "unsupported_schema_version",
      ],
      ["an unknown endpoint", () => call("GET", "/nope"), 404, "undefined_endpoint"],
      [
        "a write over the tuple limit",
        () =>
          call("POST", `/stores/${storeId}/write`, {
            writes: {
              tuple_keys: Array.from({ length: 21 }, (_, i) => ({
                user: "user:x",
                relation: "viewer",
                object: `doc:x${i}`,
              })),
            },
          }),
        400,
        "exceeded_entity_limit",
      ],
      [
        "a batch over the check limit",
        () =>
          call("POST", `/stores/${storeId}/batch-check`, {
            checks: Array.from({ length: 101 }, (_, i) => ({
              tuple_key: { user: "user:anne", relation: "viewer", object: "doc:1" },
              correlation_id: `${i}`,
            })),
          }),
        400,
        "exceeded_entity_limit",
      ],
      [
        "duplicate correlation ids",
        () =>
          call("POST", `/stores/${storeId}/batch-check`, {
            checks: [1, 2].map(() => ({
              tuple_key: { user: "user:anne", relation: "viewer", object: "doc:1" },
              correlation_id: "same",
            })),
          }),
        400,
        "validation_error",
      ],
      [
        "a list-objects answer over the limit",
        () =>
          call("POST", `/stores/${storeId}/list-objects`, {
            user: "user:anne",
            relation: "viewer",
            type: "doc",
          }),
        400,
        "exceeded_entity_limit",
      ],
      [
        "a delete-by-filter over the limit",
        () => call("POST", `/stores/${storeId}/delete-tuples`, { tuple_key: { object: "doc:" } }),
        400,
        "exceeded_entity_limit",
      ],
      [
        "a body over the size limit",
        () => call("POST", "/stores", { name: "x".repeat(100_000) }),
        413,
        "validation_error",
      ],
      [
        "a body that is not JSON",
        () => call("POST", "/stores", "name=x", { "content-type": "application/x-www-form-urlencoded" }),
        415,
        "validation_error",
      ],
      [
        "no Authorization header",
        () => call("GET", "/stores", undefined, { authorization: "" }),
        401,
        "bearer_token_missing",
      ],
      [
        "a wrong key",
        () => call("GET", "/stores", undefined, { authorization: "Bearer wrong" }),
        401,
        "unauthenticated",
      ],
      [
        "a key of another scheme",
        () => call("GET", "/stores", undefined, { authorization: `Basic ${KEY}` }),
        401,
        "unauthenticated",
      ],
    ];
  for (const [name, request, status, code] of cases) {
    it(`${name}: ${status} ${code}`, async () => {
      const answer = await request();
      expect(answer.status).toBe(status);
      expect(answer.body).toEqual({ code, message: expect.any(String) });
      expect((answer.body.message as string).length).toBeGreaterThan(0);
    });
  }

  it("nothing was written or deleted by the rejected requests", async () => {
    const read = await call("POST", `/stores/${storeId}/read`, { page_size: 100 });
    expect((read.body.tuples as unknown[]).length).toBe(8);
  });

  it("the SDK raises its own error classes with the API's code", async () => {
    const c = clientFor(server, { storeId, token: KEY });
    const invalid = await c
      .check({ user: "user:anne", relation: "owner", object: "doc:1" })
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(FgaApiValidationError);
    expect((invalid as FgaApiValidationError).apiErrorCode).toBe("relation_not_found");
    const unauthenticated = await clientFor(server, { storeId, token: "wrong" })
      .check({ user: "user:anne", relation: "viewer", object: "doc:1" })
      .catch((e: unknown) => e);
    expect(unauthenticated).toBeInstanceOf(FgaApiAuthenticationError);
    const anonymous = await clientFor(server, { storeId })
      .getStore()
      .catch((e: unknown) => e);
    expect(anonymous).toBeInstanceOf(FgaApiAuthenticationError);
    // Either configured key works.
    expect((await clientFor(server, { storeId, token: "other-key" }).getStore()).id).toBe(storeId);
  });

  it("list-objects pages instead of truncating when asked (page_size + continuation_token)", async () => {
    const objects: string[] = [];
    let token = "";
    do {
      const page = await call("POST", `/stores/${storeId}/list-objects`, {
        user: "user:anne",
        relation: "viewer",
        type: "doc",
        page_size: 3,
        continuation_token: token,
      });
      expect(page.status).toBe(200);
      objects.push(...(page.body.objects as string[]));
      token = page.body.continuation_token as string;
    } while (token !== "");
    expect(objects).toEqual(Array.from({ length: 8 }, (_, i) => `doc:${i}`));
  });

  it("list-objects pages all read the first page's revision; an altered token is invalid_continuation_token", async () => {
    const write = (object: string) =>
      call("POST", `/stores/${storeId}/write`, {
        writes: { tuple_keys: [{ user: "user:bert", relation: "viewer", object }] },
      });
    for (const object of ["doc:0", "doc:1", "doc:2", "doc:3"]) expect((await write(object)).status).toBe(200);
    const page = (continuation_token: string) =>
      call("POST", `/stores/${storeId}/list-objects`, {
        user: "user:bert",
        relation: "viewer",
        type: "doc",
        page_size: 2,
        continuation_token,
      });
    const first = await page("");
    expect(first.body.objects).toEqual(["doc:0", "doc:1"]);
    // Written between pages, sorting inside the first page's range and after it: later pages don't show it.
    expect((await write("doc:00")).status).toBe(200);
    expect((await write("doc:4")).status).toBe(200);
    const second = await page(first.body.continuation_token as string);
    expect(second.body).toEqual({ objects: ["doc:2", "doc:3"], continuation_token: "" });
    const token = first.body.continuation_token as string;
    const altered = await page(`${token.slice(0, -2)}${token.endsWith("A") ? "B" : "A"}x`);
    expect(altered.status).toBe(400);
    expect(altered.body.code).toBe("invalid_continuation_token");
    const fresh = await page("");
    expect(fresh.body.objects).toEqual(["doc:0", "doc:00"]);
  });

  it("a client that sends its body too slowly is cut off; the server goes on serving", async () => {
    const slow = await startTestServer({ limits: { requestTimeoutMs: 300 } });
    try {
      const closed = await new Promise<string>((resolve) => {
        const socket = connect(slow.port, "127.0.0.1", () => {
          socket.write(
            "POST /stores HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
          );
        });
        let received = "";
        socket.on("data", (d) => {
          received += d.toString();
        });
        socket.on("close", () => resolve(received));
        socket.on("error", () => undefined);
      });
      expect(closed).toMatch(/^HTTP\/1.1 408/);
      const health = await fetch(`${slow.url}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      await slow.close();
    }
  });
});

describe("CORS, healthz, metrics", () => {
  it("answers a preflight with the SDK's headers allowed, without a key", async () => {
    const response = await fetch(`${server.url}/stores/${storeId}/check`, {
      method: "OPTIONS",
      headers: {
        origin: "http://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers":
          "authorization,content-type,x-openfga-client-method,x-openfga-client-bulk-request-id",
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    const allowed = response.headers.get("access-control-allow-headers")?.toLowerCase() ?? "";
    for (const header of [
      "authorization",
      "content-type",
      "x-openfga-client-method",
      "x-openfga-client-bulk-request-id",
    ]) {
      expect(allowed).toContain(header);
    }
    const simple = await call("GET", `/stores/${storeId}`, undefined, { origin: "http://app.example" });
    expect(simple.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("healthz answers without a key", async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "SERVING" });
  });

  it("metrics count requests per endpoint and show cache layers", async () => {
    for (let i = 0; i < 3; i++) {
      await call("POST", `/stores/${storeId}/check`, {
        tuple_key: { user: "user:anne", relation: "viewer", object: "doc:1" },
      });
    }
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(
      /nexus_http_requests_total\{endpoint="\/stores\/:store_id\/check",method="POST",status="200"\} [3-9]/,
    );
    expect(text).toMatch(
      /nexus_http_request_duration_seconds_bucket\{le="[^"]+",endpoint="\/stores\/:store_id\/check"\}/,
    );
    expect(text).toMatch(/nexus_cache_layer_requests\{layer="[^"]+"\} \d+/);
    expect(text).toMatch(/nexus_cache_layer_hit_ratio\{layer="[^"]+"\} [\d.]+/);
    expect(text).toMatch(/nexus_engines\{state="open"\} 1/);
  });
});
