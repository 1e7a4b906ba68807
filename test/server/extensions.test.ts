/**
 * What the server does beyond OpenFGA: the NDJSON watch stream (in order, resumable, filtered by type), delete by
 * filter (atomic, all or none), streamed-list-objects past the list limit (every object, no truncation).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NexusServer } from "../../src/server/index.js";
import { clientFor, modelJson, startTestServer } from "./helpers.js";

const MODEL = modelJson(`model
  schema 1.1
type user
type folder
  relations
    define viewer: [user]
type doc
  relations
    define viewer: [user]
    define editor: [user]`);

let server: NexusServer;

beforeAll(async () => {
  server = await startTestServer({ limits: { maxListObjects: 5 } });
});
afterAll(async () => {
  await server.close();
});

async function newStore(name: string) {
  const storeId = (await clientFor(server).createStore({ name })).id;
  const client = clientFor(server, { storeId });
  await client.writeAuthorizationModel(MODEL);
  return { storeId, client };
}

interface WatchLine {
  readonly result: {
    readonly operation: string;
    readonly tuple_key: { readonly user: string };
    readonly timestamp: string;
    readonly continuation_token: string;
  };
}

/** Reads NDJSON lines from a streaming response until `count` lines arrived. */
async function readLines(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  count: number,
  buffer = { text: "" },
) {
  const lines: WatchLine[] = [];
  const decoder = new TextDecoder();
  while (lines.length < count) {
    let newline = buffer.text.indexOf("\n");
    while (newline >= 0 && lines.length < count) {
      lines.push(JSON.parse(buffer.text.slice(0, newline)) as WatchLine);
      buffer.text = buffer.text.slice(newline + 1);
      newline = buffer.text.indexOf("\n");
    }
    if (lines.length >= count) break;
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended after ${lines.length} lines`);
    buffer.text += decoder.decode(value, { stream: true });
  }
  return lines;
}

describe("watch", () => {
  it("streams changes as they commit, filters by type, and resumes from a line's token", async () => {
    const { storeId, client } = await newStore("watch");
    const controller = new AbortController();
    const response = await fetch(`${server.url}/stores/${storeId}/watch?type=doc`, {
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/x-ndjson");
    const reader = response.body!.getReader();
    await client.writeTuples([{ user: "user:anne", relation: "viewer", object: "folder:f" }]);
    await client.writeTuples([
      { user: "user:anne", relation: "viewer", object: "doc:1" },
      { user: "user:bob", relation: "viewer", object: "doc:1" },
    ]);
    await client.deleteTuples([{ user: "user:anne", relation: "viewer", object: "doc:1" }]);
    const lines = await readLines(reader, 3);
    expect(lines.map((l) => `${l.result.operation} ${l.result.tuple_key.user}`)).toEqual([
      "TUPLE_OPERATION_WRITE user:anne",
      "TUPLE_OPERATION_WRITE user:bob",
      "TUPLE_OPERATION_DELETE user:anne",
    ]);
    expect(Date.parse(lines[0]!.result.timestamp)).not.toBeNaN();
    controller.abort();

    // Resume after the write batch (its last line's token): only the delete and what follows.
    await client.writeTuples([{ user: "user:carl", relation: "editor", object: "doc:2" }]);
    const resumed = await fetch(
      `${server.url}/stores/${storeId}/watch?type=doc&continuation_token=${lines[1]!.result.continuation_token}`,
    );
    const resumedReader = resumed.body!.getReader();
    const again = await readLines(resumedReader, 2);
    expect(again.map((l) => `${l.result.operation} ${l.result.tuple_key.user}`)).toEqual([
      "TUPLE_OPERATION_DELETE user:anne",
      "TUPLE_OPERATION_WRITE user:carl",
    ]);
    await resumedReader.cancel();
  });

  it("rejects a bad token before streaming", async () => {
    const { storeId } = await newStore("watch-bad");
    const response = await fetch(`${server.url}/stores/${storeId}/watch?continuation_token=nope`);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_continuation_token" });
  });
});

describe("delete by filter", () => {
  it("deletes every matching tuple in one write and nothing else", async () => {
    const { storeId, client } = await newStore("delete");
    await client.write({
      writes: [
        ...Array.from({ length: 4 }, (_, i) => ({
          user: "user:anne",
          relation: "viewer",
          object: `doc:${i}`,
        })),
        { user: "user:anne", relation: "editor", object: "doc:0" },
        { user: "user:bob", relation: "viewer", object: "doc:0" },
        { user: "user:anne", relation: "viewer", object: "folder:f" },
      ],
    });
    const post = (tuple_key: unknown) =>
      fetch(`${server.url}/stores/${storeId}/delete-tuples`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tuple_key }),
      });
    const answer = await post({ object: "doc:", relation: "viewer", user: "user:anne" });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ deleted: 4 });
    const left = (await client.read()).tuples.map((t) => `${t.key.object}#${t.key.relation}@${t.key.user}`);
    expect(left.sort()).toEqual([
      "doc:0#editor@user:anne",
      "doc:0#viewer@user:bob",
      "folder:f#viewer@user:anne",
    ]);
    expect((await client.check({ user: "user:anne", relation: "viewer", object: "doc:2" })).allowed).toBe(
      false,
    );
    const changes = await client.readChanges({ type: "doc" }, { pageSize: 100 });
    expect(changes.changes.filter((c) => c.operation === "TUPLE_OPERATION_DELETE")).toHaveLength(4);
    const empty = await post({});
    expect(empty.status).toBe(400);
  });
});

describe("list objects never truncates", () => {
  it("streamed-list-objects returns every object past the list-objects limit", async () => {
    const { client } = await newStore("stream");
    await client.write({
      writes: Array.from({ length: 12 }, (_, i) => ({
        user: "user:anne",
        relation: "viewer",
        object: `doc:${i}`,
      })),
    });
    const error = await client
      .listObjects({ user: "user:anne", relation: "viewer", type: "doc" })
      .catch((e: unknown) => e as { apiErrorCode?: string });
    expect(error).toMatchObject({ apiErrorCode: "exceeded_entity_limit" });
    const streamed: string[] = [];
    for await (const item of client.streamedListObjects({
      user: "user:anne",
      relation: "viewer",
      type: "doc",
    })) {
      streamed.push(item.object);
    }
    expect(streamed.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `doc:${i}`).sort());
  });
});
