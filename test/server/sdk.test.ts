/**
 * Every client method of the unchanged @openfga/sdk 0.9.7 against a real `nexus-fast serve` on a free port: stores,
 * models, write / writeTuples / deleteTuples (transactional and not), read, readChanges, check, batchCheck (the
 * server endpoint), clientBatchCheck, listObjects, streamedListObjects, listRelations, listUsers, expand,
 * assertions, readLatestAuthorizationModel, checkValidApiConnection, and the SDK's own error classes.
 */
import {
  ClientWriteRequestOnDuplicateWrites,
  ClientWriteRequestOnMissingDeletes,
  ConsistencyPreference,
  FgaApiNotFoundError,
  FgaApiValidationError,
  type OpenFgaClient,
} from "@openfga/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NexusServer } from "../../src/server/index.js";
import { clientFor, modelJson, startTestServer } from "./helpers.js";

const MODEL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, user:*, group#member]
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, user with in_office] or owner
    define viewer: [user, group#member] or editor or viewer from parent

condition in_office(ip: ipaddress) {
  ip.in_cidr("10.0.0.0/8")
}`;

const SMALLER = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`;

let server: NexusServer;
let admin: OpenFgaClient;
let client: OpenFgaClient;
let storeId: string;
let modelId: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = clientFor(server);
  storeId = (await admin.createStore({ name: "sdk" })).id;
  client = clientFor(server, { storeId });
  modelId = (await client.writeAuthorizationModel(modelJson(MODEL))).authorization_model_id;
  client = clientFor(server, { storeId, authorizationModelId: modelId });
  await client.write({
    writes: [
      { user: "user:anne", relation: "member", object: "group:eng" },
      { user: "group:eng#member", relation: "member", object: "group:all" },
      { user: "group:all#member", relation: "viewer", object: "folder:root" },
      { user: "user:*", relation: "viewer", object: "folder:public" },
      { user: "folder:root", relation: "parent", object: "doc:readme" },
      { user: "folder:public", relation: "parent", object: "doc:faq" },
      { user: "user:bob", relation: "owner", object: "doc:plan" },
      {
        user: "user:carl",
        relation: "editor",
        object: "doc:plan",
        condition: { name: "in_office", context: {} },
      },
    ],
  });
});

afterAll(async () => {
  await server.close();
});

describe("stores", () => {
  it("createStore, getStore, listStores (paged, by name), deleteStore", async () => {
    const a = await admin.createStore({ name: "alpha" });
    const b = await admin.createStore({ name: "beta" });
    expect(a.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a.name).toBe("alpha");
    expect(Date.parse(a.created_at)).not.toBeNaN();
    const got = await admin.getStore({ storeId: a.id });
    expect(got).toMatchObject({ id: a.id, name: "alpha", created_at: a.created_at });

    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await admin.listStores({ pageSize: 1, ...(token ? { continuationToken: token } : {}) });
      expect(page.stores.length).toBeLessThanOrEqual(1);
      seen.push(...page.stores.map((s) => s.id));
      token = page.continuation_token || undefined;
    } while (token !== undefined);
    expect(seen).toEqual(expect.arrayContaining([storeId, a.id, b.id]));
    expect([...seen].sort()).toEqual(seen); // creation order
    const named = await admin.listStores({ name: "beta" });
    expect(named.stores.map((s) => s.id)).toEqual([b.id]);

    await admin.deleteStore({ storeId: b.id });
    const error = await admin.getStore({ storeId: b.id }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FgaApiNotFoundError);
    expect((error as FgaApiNotFoundError).apiErrorCode).toBe("store_id_not_found");
    expect((await admin.listStores()).stores.map((s) => s.id)).not.toContain(b.id);
  });
});

describe("authorization models", () => {
  it("writes immutable versions, lists them newest first (paged) and reads one and the latest", async () => {
    const store = await admin.createStore({ name: "models" });
    const c = clientFor(server, { storeId: store.id });
    const first = (await c.writeAuthorizationModel(modelJson(SMALLER))).authorization_model_id;
    const second = (await c.writeAuthorizationModel(modelJson(MODEL))).authorization_model_id;
    expect(second > first).toBe(true);

    const all = await c.readAuthorizationModels();
    expect(all.authorization_models.map((m) => m.id)).toEqual([second, first]);
    const page1 = await c.readAuthorizationModels({ pageSize: 1 });
    expect(page1.authorization_models.map((m) => m.id)).toEqual([second]);
    const page2 = await c.readAuthorizationModels({
      pageSize: 1,
      continuationToken: page1.continuation_token,
    });
    expect(page2.authorization_models.map((m) => m.id)).toEqual([first]);
    expect(page2.continuation_token).toBe("");

    const latest = await c.readLatestAuthorizationModel();
    expect(latest.authorization_model?.id).toBe(second);
    expect(latest.authorization_model?.schema_version).toBe("1.1");
    const one = await c.readAuthorizationModel({ authorizationModelId: first });
    expect(one.authorization_model?.type_definitions.map((t) => t.type)).toEqual(["user", "doc"]);
    await c.checkValidApiConnection();
  });

  it("rejects an invalid model with a 400 and keeps the latest", async () => {
    const error = await client
      .writeAuthorizationModel({
        schema_version: "1.1",
        type_definitions: [{ type: "doc", relations: { viewer: { computedUserset: { relation: "nope" } } } }],
      } as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FgaApiValidationError);
    expect((error as FgaApiValidationError).apiErrorCode).toBe("invalid_authorization_model");
    expect((await client.readLatestAuthorizationModel()).authorization_model?.id).toBe(modelId);
  });
});

describe("tuples", () => {
  it("write, writeTuples, deleteTuples, conflict options, non-transactional chunks", async () => {
    await client.writeTuples([{ user: "user:dora", relation: "viewer", object: "doc:w1" }]);
    const dup = await client
      .writeTuples([{ user: "user:dora", relation: "viewer", object: "doc:w1" }])
      .catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(FgaApiValidationError);
    expect((dup as FgaApiValidationError).apiErrorCode).toBe("write_failed_due_to_invalid_input");
    await client.write(
      { writes: [{ user: "user:dora", relation: "viewer", object: "doc:w1" }] },
      { conflict: { onDuplicateWrites: ClientWriteRequestOnDuplicateWrites.Ignore } },
    );
    await client.deleteTuples([{ user: "user:dora", relation: "viewer", object: "doc:w1" }]);
    await client.write(
      { deletes: [{ user: "user:dora", relation: "viewer", object: "doc:w1" }] },
      { conflict: { onMissingDeletes: ClientWriteRequestOnMissingDeletes.Ignore } },
    );
    const chunked = await client.write(
      {
        writes: [
          { user: "user:ed", relation: "viewer", object: "doc:w2" },
          { user: "user:ed", relation: "viewer", object: "doc:w3" },
          { user: "user:ed", relation: "nope", object: "doc:w4" },
        ],
      },
      { transaction: { disable: true, maxPerChunk: 1 } },
    );
    expect(chunked.writes.map((w) => w.status)).toEqual(["success", "success", "failure"]);
    expect((await client.check({ user: "user:ed", relation: "viewer", object: "doc:w3" })).allowed).toBe(
      true,
    );
  });

  it("read: every tuple, filtered, in pages of pageSize", async () => {
    const all = await client.read();
    expect(all.tuples.length).toBeGreaterThanOrEqual(8);
    expect(all.tuples[0]!.key).toHaveProperty("user");
    expect(Date.parse(all.tuples[0]!.timestamp)).not.toBeNaN();
    const onDoc = await client.read({ object: "doc:plan" });
    expect(onDoc.tuples.map((t) => `${t.key.relation}@${t.key.user}`).sort()).toEqual([
      "editor@user:carl",
      "owner@user:bob",
    ]);
    expect(onDoc.tuples.find((t) => t.key.user === "user:carl")?.key.condition?.name).toBe("in_office");
    const ofType = await client.read({ object: "group:", relation: "member" });
    expect(ofType.tuples).toHaveLength(2);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.read({}, { pageSize: 3, ...(token ? { continuationToken: token } : {}) });
      expect(page.tuples.length).toBeLessThanOrEqual(3);
      keys.push(...page.tuples.map((t) => `${t.key.object}#${t.key.relation}@${t.key.user}`));
      token = page.continuation_token || undefined;
    } while (token !== undefined);
    expect(keys).toHaveLength(all.tuples.length);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("readChanges: in order, by type, paged, the same token back when nothing is new", async () => {
    const store = await admin.createStore({ name: "changes" });
    const c = clientFor(server, { storeId: store.id });
    await c.writeAuthorizationModel(modelJson(SMALLER));
    for (let i = 0; i < 5; i++)
      await c.writeTuples([{ user: `user:u${i}`, relation: "viewer", object: `doc:${i}` }]);
    await c.deleteTuples([{ user: "user:u0", relation: "viewer", object: "doc:0" }]);
    const seen: string[] = [];
    let token: string | undefined;
    for (;;) {
      const page = await c.readChanges(
        { type: "doc" },
        { pageSize: 2, ...(token ? { continuationToken: token } : {}) },
      );
      seen.push(...page.changes.map((ch) => `${ch.operation}:${ch.tuple_key.object}`));
      if (page.changes.length === 0) {
        expect(page.continuation_token).toBe(token);
        break;
      }
      token = page.continuation_token;
    }
    expect(seen).toEqual([
      "TUPLE_OPERATION_WRITE:doc:0",
      "TUPLE_OPERATION_WRITE:doc:1",
      "TUPLE_OPERATION_WRITE:doc:2",
      "TUPLE_OPERATION_WRITE:doc:3",
      "TUPLE_OPERATION_WRITE:doc:4",
      "TUPLE_OPERATION_DELETE:doc:0",
    ]);
    await c.writeTuples([{ user: "user:late", relation: "viewer", object: "doc:late" }]);
    const next = await c.readChanges({ type: "doc" }, { continuationToken: token! });
    expect(next.changes.map((ch) => ch.tuple_key.object)).toEqual(["doc:late"]);
    expect((await c.readChanges({ type: "user" })).changes).toEqual([]);
  });
});

describe("queries", () => {
  it("check: stored, nested, wildcard, contextual tuples, conditions, consistency preferences", async () => {
    const check = async (user: string, relation: string, object: string, extra = {}) =>
      (await client.check({ user, relation, object, ...extra })).allowed;
    expect(await check("user:anne", "viewer", "doc:readme")).toBe(true);
    expect(await check("user:zed", "viewer", "doc:readme")).toBe(false);
    expect(await check("user:zed", "viewer", "doc:faq")).toBe(true);
    expect(await check("user:bob", "editor", "doc:plan")).toBe(true);
    expect(await check("user:carl", "editor", "doc:plan", { context: { ip: "10.1.2.3" } })).toBe(true);
    expect(await check("user:carl", "editor", "doc:plan", { context: { ip: "192.168.0.1" } })).toBe(false);
    expect(
      await check("user:zed", "viewer", "doc:plan", {
        contextualTuples: [{ user: "user:zed", relation: "owner", object: "doc:plan" }],
      }),
    ).toBe(true);
    for (const consistency of [
      ConsistencyPreference.MinimizeLatency,
      ConsistencyPreference.HigherConsistency,
      ConsistencyPreference.Unspecified,
    ]) {
      const answer = await client.check(
        { user: "user:anne", relation: "viewer", object: "doc:readme" },
        { consistency },
      );
      expect(answer.allowed).toBe(true);
    }
  });

  it("reads its own writes without asking for consistency (UNSPECIFIED)", async () => {
    for (let i = 0; i < 5; i++) {
      await client.writeTuples([{ user: `user:ryw${i}`, relation: "viewer", object: "doc:ryw" }]);
      expect(
        (await client.check({ user: `user:ryw${i}`, relation: "viewer", object: "doc:ryw" })).allowed,
      ).toBe(true);
      await client.deleteTuples([{ user: `user:ryw${i}`, relation: "viewer", object: "doc:ryw" }]);
      expect(
        (await client.check({ user: `user:ryw${i}`, relation: "viewer", object: "doc:ryw" })).allowed,
      ).toBe(false);
    }
  });

  it("reads its own writes across model versions (a write through one engine, a check through another)", async () => {
    const store = await admin.createStore({ name: "two-models" });
    const c = clientFor(server, { storeId: store.id });
    const v1 = (await c.writeAuthorizationModel(modelJson(SMALLER))).authorization_model_id;
    const v2 = (await c.writeAuthorizationModel(modelJson(SMALLER))).authorization_model_id;
    for (let i = 0; i < 5; i++) {
      const tuple = { user: `user:x${i}`, relation: "viewer", object: "doc:two" };
      await c.writeTuples([tuple], { authorizationModelId: i % 2 === 0 ? v1 : v2 });
      expect((await c.check(tuple, { authorizationModelId: i % 2 === 0 ? v2 : v1 })).allowed).toBe(true);
      await c.deleteTuples([tuple], { authorizationModelId: v1 });
      expect((await c.check(tuple, { authorizationModelId: v2 })).allowed).toBe(false);
    }
  });

  it("batchCheck: 300 checks in one request (no 50 cap), answers by correlation id, errors per item", async () => {
    const checks = Array.from({ length: 300 }, (_, i) => ({
      user: i % 2 === 0 ? "user:anne" : "user:zed",
      relation: "viewer",
      object: "doc:readme",
      correlationId: `c${i}`,
    }));
    checks.push({ user: "user:anne", relation: "nope", object: "doc:readme", correlationId: "bad" });
    const answer = await client.batchCheck({ checks }, { maxBatchSize: 1000 });
    expect(answer.result).toHaveLength(301);
    const byId = new Map(answer.result.map((r) => [r.correlationId, r]));
    for (let i = 0; i < 300; i++) expect(byId.get(`c${i}`)?.allowed).toBe(i % 2 === 0);
    expect(byId.get("bad")?.error?.input_error).toBe("relation_not_found");
    // The SDK's default chunks of 50, 10 in flight.
    const chunked = await client.batchCheck({
      checks: checks.slice(0, 120).map(({ correlationId, ...c }) => c),
    });
    expect(chunked.result.filter((r) => r.allowed)).toHaveLength(60);
  });

  it("clientBatchCheck and listRelations", async () => {
    const answer = await client.clientBatchCheck([
      { user: "user:anne", relation: "viewer", object: "doc:readme" },
      { user: "user:anne", relation: "owner", object: "doc:readme" },
    ]);
    expect(answer.result.map((r) => r.allowed)).toEqual([true, false]);
    const relations = await client.listRelations({
      user: "user:bob",
      object: "doc:plan",
      relations: ["owner", "editor", "viewer", "parent"],
    });
    expect(relations.relations.sort()).toEqual(["editor", "owner", "viewer"]);
  });

  it("listObjects and streamedListObjects", async () => {
    const listed = await client.listObjects({ user: "user:anne", relation: "viewer", type: "doc" });
    expect(listed.objects.sort()).toEqual(["doc:faq", "doc:readme"]);
    const streamed: string[] = [];
    for await (const item of client.streamedListObjects({
      user: "user:anne",
      relation: "viewer",
      type: "doc",
    })) {
      streamed.push(item.object);
    }
    expect(streamed.sort()).toEqual(["doc:faq", "doc:readme"]);
    const contextual = await client.listObjects({
      user: "user:zed",
      relation: "owner",
      type: "doc",
      contextualTuples: [{ user: "user:zed", relation: "owner", object: "doc:x" }],
    });
    expect(contextual.objects).toEqual(["doc:x"]);
  });

  it("listUsers: objects, usersets and wildcards", async () => {
    const users = await client.listUsers({
      object: { type: "folder", id: "public" },
      relation: "viewer",
      user_filters: [{ type: "user" }],
    });
    expect(users.users).toEqual([{ wildcard: { type: "user" } }]);
    const members = await client.listUsers({
      object: { type: "doc", id: "readme" },
      relation: "viewer",
      user_filters: [{ type: "user" }],
    });
    expect(members.users).toEqual([{ object: { type: "user", id: "anne" } }]);
    const groups = await client.listUsers({
      object: { type: "folder", id: "root" },
      relation: "viewer",
      user_filters: [{ type: "group", relation: "member" }],
    });
    expect(groups.users).toEqual(
      expect.arrayContaining([{ userset: { type: "group", id: "all", relation: "member" } }]),
    );
  });

  it("expand", async () => {
    const tree = await client.expand({ object: "folder:root", relation: "viewer" });
    expect(tree.tree?.root?.name).toBe("folder:root#viewer");
    expect(tree.tree?.root?.leaf?.users?.users).toEqual(["group:all#member"]);
    const rewrite = await client.expand({ object: "doc:readme", relation: "viewer" });
    expect(rewrite.tree?.root?.union?.nodes?.length).toBe(3);
  });
});

describe("assertions", () => {
  it("writeAssertions and readAssertions", async () => {
    await client.writeAssertions([
      { user: "user:anne", relation: "viewer", object: "doc:readme", expectation: true },
      { user: "user:zed", relation: "viewer", object: "doc:readme", expectation: false },
    ]);
    const read = await client.readAssertions();
    expect(read.authorization_model_id).toBe(modelId);
    expect(read.assertions?.map((a) => [a.tuple_key.user, a.expectation])).toEqual([
      ["user:anne", true],
      ["user:zed", false],
    ]);
  });
});
