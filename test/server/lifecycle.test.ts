/**
 * The server's lifecycle: close() (and `await using`) leaves no listener, socket or timer behind, even with a
 * watch stream open; close() lets a request in flight finish and refuses new connections; `nexus-fast serve
 * --data DIR` as a real child process (dist/cli/main.js; `npm run build` first) keeps stores, models, tuples and
 * assertions across a SIGKILL and a restart, and shuts down gracefully on SIGTERM with exit code 0.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { HttpFileSystem } from "../../src/fs/http.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { IndexedModelVersions } from "../../src/tuples/models.js";
import { clientFor, modelJson, startTestServer } from "./helpers.js";

const MODEL = modelJson(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, group#member]`);

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

function beyond(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [name, count] of resourceCounts()) {
    if (count > (baseline.get(name) ?? 0)) extra.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
  }
  return extra;
}

async function settled(baseline: Map<string, number>): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    if (beyond(baseline).length === 0) return [];
    await new Promise((r) => setTimeout(r, 20));
  }
  return beyond(baseline);
}

describe("close", () => {
  it("leaves nothing running: listener, connections, engines, watch streams, timers", async () => {
    const baseline = resourceCounts();
    {
      await using server = await startTestServer();
      const admin = clientFor(server);
      const storeId = (await admin.createStore({ name: "leaks" })).id;
      const client = clientFor(server, { storeId });
      await client.writeAuthorizationModel(MODEL);
      await client.writeTuples([{ user: "user:anne", relation: "viewer", object: "doc:1" }]);
      expect((await client.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).allowed).toBe(
        true,
      );
      await client.listObjects({ user: "user:anne", relation: "viewer", type: "doc" });
      const watch = await fetch(`${server.url}/stores/${storeId}/watch`);
      const reader = watch.body!.getReader();
      await client.writeTuples([{ user: "user:bob", relation: "viewer", object: "doc:2" }]);
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain('"user:bob"');
      // The open watch stream must not keep close() waiting.
    }
    expect(await settled(baseline)).toEqual([]);
  });

  it("finishes a request in flight, refuses new connections, and is idempotent", async () => {
    const server = await startTestServer();
    const url = server.url;
    // A request whose headers are in but whose body is still coming when close() starts.
    const socket = connect(server.port, "127.0.0.1");
    await once(socket, "connect");
    const body = JSON.stringify({ name: "in-flight" });
    let answer = "";
    socket.on("data", (d: Buffer) => {
      answer += d.toString();
    });
    const ended = once(socket, "close");
    socket.write(
      `POST /stores HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    await new Promise((r) => setTimeout(r, 100));
    const closing = server.close();
    await new Promise((r) => setTimeout(r, 50));
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    socket.write(body.slice(5));
    await ended;
    expect(answer).toMatch(/^HTTP\/1.1 201/);
    expect(answer).toContain('"name":"in-flight"');
    await closing;
    await server.close();
    expect(server.closed).toBe(true);
  });
});

describe("close during a request", () => {
  it("a watch request still starting when shutdown begins ends with it, not at the request time limit", async () => {
    const store = new MemoryTupleStore();
    const server = await startTestServer({ store });
    try {
      const storeId = (await clientFor(server).createStore({ name: "watch-close" })).id;
      // The watch's first step (the current revision) waits until close() has begun.
      const original = store.currentRevision.bind(store);
      let asked!: () => void;
      const askedNow = new Promise<void>((r) => (asked = r));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      store.currentRevision = async () => {
        asked();
        await gate;
        return original();
      };
      const watch = fetch(`${server.url}/stores/${storeId}/watch`).then(async (r) => {
        await r.text();
        return r.status;
      });
      await askedNow;
      const started = performance.now();
      const closing = server.close();
      await new Promise((r) => setTimeout(r, 50));
      release();
      await closing;
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(await watch).toBe(200);
    } finally {
      await server.close();
      await store.close();
    }
  });
});

describe("the latest model after a restart", () => {
  const dir = mkdtempSync(join(tmpdir(), "nexus-latest-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a model written while the first latest-model lookup waits stays the latest", async () => {
    const first = await startTestServer({ data: dir });
    const storeId = (await clientFor(first).createStore({ name: "latest" })).id;
    const before = clientFor(first, { storeId });
    await before.writeAuthorizationModel(
      modelJson(
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define owner: [user]\n    define viewer: [user]",
      ),
    );
    await before.writeTuples([{ user: "user:anne", relation: "owner", object: "doc:1" }]);
    await first.close();

    // Restarted: nothing cached, so a check without a model id asks the store for its newest model (a PostgreSQL
    // round trip on that store), and that answer comes back only after a newer model was written.
    const latest = IndexedModelVersions.prototype.latest;
    let asked!: () => void;
    const askedNow = new Promise<void>((r) => (asked = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    IndexedModelVersions.prototype.latest = async function (this: IndexedModelVersions, tenant: string) {
      const found = await latest.call(this, tenant);
      asked();
      await gate;
      return found;
    };
    const server = await startTestServer({ data: dir });
    try {
      const client = clientFor(server, { storeId });
      const question = { user: "user:anne", relation: "viewer", object: "doc:1" };
      const racing = client.check(question);
      await askedNow;
      const m2 = await client.writeAuthorizationModel(
        modelJson(
          "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define owner: [user]\n    define viewer: [user] or owner",
        ),
      );
      release();
      // Asked before M2 was written: either answer is right for it.
      await racing;
      IndexedModelVersions.prototype.latest = latest;
      expect((await client.check(question)).allowed).toBe(true);
      expect(
        (await client.check(question, { authorizationModelId: m2.authorization_model_id })).allowed,
      ).toBe(true);
      expect((await client.readLatestAuthorizationModel()).authorization_model?.id).toBe(
        m2.authorization_model_id,
      );
    } finally {
      IndexedModelVersions.prototype.latest = latest;
      await server.close();
    }
  });
});

const root = fileURLToPath(new URL("../../", import.meta.url));
const cli = join(root, "dist/cli/main.js");
const built = existsSync(join(root, "dist/server/index.js"));

/** Starts `nexus-fast serve` on a free port; resolves with its URL once it logs that it listens. */
function serve(args: string[]): Promise<{ child: ChildProcess; url: string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (match) resolve({ child, url: match[1]!, exit });
    });
    child.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${err}${out}`)));
  });
}

describe.skipIf(!built)("nexus-fast serve --data DIR (a real process)", () => {
  const dir = mkdtempSync(join(tmpdir(), "nexus-serve-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps stores, models, tuples and assertions across SIGKILL; SIGTERM shuts down with 0", async () => {
    const first = await serve(["--data", dir, "--log-level", "info"]);
    const admin = clientFor(first);
    const storeId = (await admin.createStore({ name: "durable" })).id;
    const client = clientFor(first, { storeId });
    const modelId = (await client.writeAuthorizationModel(MODEL)).authorization_model_id;
    await client.write({
      writes: [
        { user: "user:anne", relation: "member", object: "group:eng" },
        { user: "group:eng#member", relation: "viewer", object: "doc:plan" },
        { user: "user:bob", relation: "viewer", object: "doc:gone" },
      ],
    });
    await client.deleteTuples([{ user: "user:bob", relation: "viewer", object: "doc:gone" }]);
    await clientFor(first, { storeId, authorizationModelId: modelId }).writeAssertions([
      { user: "user:anne", relation: "viewer", object: "doc:plan", expectation: true },
    ]);
    first.child.kill("SIGKILL");
    await first.exit;

    const second = await serve(["--data", dir]);
    try {
      const again = clientFor(second, { storeId });
      expect((await clientFor(second).getStore({ storeId })).name).toBe("durable");
      expect((await again.readLatestAuthorizationModel()).authorization_model?.id).toBe(modelId);
      expect((await again.check({ user: "user:anne", relation: "viewer", object: "doc:plan" })).allowed).toBe(
        true,
      );
      expect((await again.check({ user: "user:bob", relation: "viewer", object: "doc:gone" })).allowed).toBe(
        false,
      );
      expect((await again.read()).tuples).toHaveLength(2);
      const changes = await again.readChanges();
      expect(changes.changes.map((c) => c.operation)).toEqual([
        "TUPLE_OPERATION_WRITE",
        "TUPLE_OPERATION_WRITE",
        "TUPLE_OPERATION_WRITE",
        "TUPLE_OPERATION_DELETE",
      ]);
      const assertions = await clientFor(second, { storeId, authorizationModelId: modelId }).readAssertions();
      expect(assertions.assertions).toHaveLength(1);
      // Writes after the restart continue the same history.
      await again.writeTuples([{ user: "user:carl", relation: "viewer", object: "doc:new" }]);
      expect((await again.check({ user: "user:carl", relation: "viewer", object: "doc:new" })).allowed).toBe(
        true,
      );
    } finally {
      second.child.kill("SIGTERM");
    }
    expect(await second.exit).toBe(0);
  });

  it("serves a NexusFS under /fs with --fs DIR, its owners from --fs-owner, kept across SIGKILL", async () => {
    const fsDir = join(dir, "fs");
    const args = ["--memory", "--fs", fsDir, "--fs-owner", "user:alice@acme", "--preshared-key", "k"];
    const alice = { user: "user:alice", tenant: "acme" };
    const bob = { user: "user:bob", tenant: "acme" };
    const first = await serve([...args, "--log-level", "info"]);
    try {
      const remote = await HttpFileSystem.connect({ url: first.url, key: "k" });
      await remote.mkdir(alice, "/docs");
      await remote.write(alice, "/docs/a.txt", "alpha");
      expect(await remote.read(bob, "/docs/a.txt").catch((e: { code?: string }) => e.code)).toBe(
        "permission_denied",
      );
      await remote.share(alice, "/docs", { user: bob.user, relation: "viewer" });
    } finally {
      first.child.kill("SIGKILL");
    }
    await first.exit;
    const second = await serve([...args, "--log-level", "info"]);
    try {
      const remote = await HttpFileSystem.connect({ url: second.url, key: "k" });
      expect(new TextDecoder().decode(await remote.read(bob, "/docs/a.txt"))).toBe("alpha");
      expect((await remote.list(bob, "/docs")).map((e) => e.name)).toEqual(["a.txt"]);
    } finally {
      second.child.kill("SIGTERM");
    }
    expect(await second.exit).toBe(0);
  });
});
