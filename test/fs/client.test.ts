/**
 * The caching client: on a replayed agent trace it answers exactly what the filesystem answers (bytes, listings,
 * errors), hits its caches, and stops serving what a revoked permission no longer allows as soon as the change
 * stream's event arrives (server push, no TTL). Two users in each of two tenants.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AGENTS, agentTrace, contentOf, setUpTrace } from "../../bench/workloads/agent-trace.js";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { FsClient } from "../../src/fs/client.js";
import type { FileSystem } from "../../src/fs/filesystem.js";
import { openFileSystem } from "../../src/fs/open.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import { ALICE, BOB, CAROL, DAVE, tempDir, text, twoTenants } from "./helpers.js";

let dir: string;
let cleanup: () => void;
let fs: FileSystem;
let engine: Engine;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
});

afterEach(async () => {
  await fs.close();
  await engine.close();
  cleanup();
});

/** What an operation answered: bytes as text, entries as names, or an error code. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    const v = await p;
    if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
    if (Array.isArray(v))
      return v.map((e: { name: string; size: number; hash?: string }) => [e.name, e.size, e.hash]);
    if (v !== null && typeof v === "object" && "path" in v) {
      const s = v as { path: string; size: number; hash?: string };
      return [s.path, s.size, s.hash];
    }
    return v;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe("the caching client on a replayed agent trace", () => {
  it("answers what the filesystem answers, op by op, and serves most reads from cache", async () => {
    engine = await createEngine({ model: nexusFilesystemModel });
    fs = await openFileSystem({ dir, engine });
    const trace = agentTrace({ dirs: 8, filesPerDir: 10, ops: 1500 });
    await setUpTrace(fs, trace, 512);
    const clients = AGENTS.map((a) => new FsClient(fs, a));
    const writes = new Map<string, number>();
    let mismatches = 0;
    for (const [i, op] of trace.ops.entries()) {
      const agent = AGENTS[op.agent]!;
      const client = clients[op.agent]!;
      if (op.op === "write") {
        const n = (writes.get(op.path) ?? 0) + 1;
        writes.set(op.path, n);
        const body = contentOf(trace.files.indexOf(op.path), n, 512);
        const a = await outcome(client.write(op.path, body));
        // Both clients must see the write before the next comparison (push delivery).
        for (const c of clients) await c.synced();
        expect(typeof a === "string" ? a : "ok").toMatch(/^(ok|permission_denied)$/);
        continue;
      }
      // Every 250 ops the owner revokes and re-grants agent 1 on a directory: the cache must follow.
      if (i % 250 === 125) {
        const d = trace.dirs[((i / 250) % trace.dirs.length) | 0]!;
        await fs
          .as({ user: "user:owner", tenant: "acme" })
          .unshare(d, { user: AGENTS[1]!.user, relation: "viewer" })
          .catch(() => {});
        await fs
          .as({ user: "user:owner", tenant: "acme" })
          .unshare(d, { user: AGENTS[1]!.user, relation: "editor" })
          .catch(() => {});
        for (const c of clients) await c.synced();
      }
      const direct =
        op.op === "read"
          ? fs.read(agent, op.path)
          : op.op === "stat"
            ? fs.stat(agent, op.path)
            : fs.list(agent, op.path);
      const cached =
        op.op === "read"
          ? client.read(op.path)
          : op.op === "stat"
            ? client.stat(op.path)
            : client.list(op.path);
      const [x, y] = [await outcome(direct), await outcome(cached)];
      if (JSON.stringify(x) !== JSON.stringify(y)) {
        mismatches++;
        expect({ i, op, cached: y }).toEqual({ i, op, cached: x });
      }
    }
    expect(mismatches).toBe(0);
    const stats = clients.map((c) => c.stats());
    const reads = stats.reduce((n, s) => n + s.read.hits + s.read.misses, 0);
    const hits = stats.reduce((n, s) => n + s.read.hits, 0);
    expect(hits / reads).toBeGreaterThan(0.5);
    expect(stats.every((s) => s.invalidations > 0 && s.events > 0)).toBe(true);
    for (const c of clients) await c.close();
  }, 120_000);
});

describe("push invalidation, two users in two tenants", () => {
  it("drops a revoked user's cached reads and listings, in and across tenants", async () => {
    ({ fs, engine } = await twoTenants(dir));
    const alice = fs.as(ALICE);
    await alice.mkdir("/docs");
    await alice.write("/docs/a.txt", "alpha");
    await fs.as(CAROL).mkdir("/g");
    await fs.as(CAROL).write("/g/x.txt", "globex");
    await alice.share("/docs", { user: BOB.user, relation: "viewer" });
    await alice.share("/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" });
    const bob = new FsClient(fs, BOB);
    const carol = new FsClient(fs, CAROL);
    const dave = new FsClient(fs, DAVE);
    expect(await bob.readText("/docs/a.txt")).toBe("alpha");
    expect(await bob.readText("/docs/a.txt")).toBe("alpha");
    expect(bob.stats().content.hits).toBe(1);
    expect(await carol.readText("/docs/a.txt", { tenant: "acme" })).toBe("alpha");
    expect((await carol.list("/docs", { tenant: "acme" })).map((e) => e.name)).toEqual(["a.txt"]);
    expect(await carol.readText("/g/x.txt")).toBe("globex");
    expect(await outcome(dave.read("/g/x.txt"))).toBe("permission_denied");

    // A write by alice reaches both caches by push.
    await alice.write("/docs/a.txt", "alpha 2");
    await bob.synced();
    await carol.synced();
    expect(await bob.readText("/docs/a.txt")).toBe("alpha 2");
    expect(await carol.readText("/docs/a.txt", { tenant: "acme" })).toBe("alpha 2");

    // Revoking bob: his cached stat, content and listing stop serving once the event is in.
    await alice.unshare("/docs", { user: BOB.user, relation: "viewer" });
    await bob.synced();
    expect(await outcome(bob.read("/docs/a.txt"))).toBe("permission_denied");
    expect(await outcome(bob.list("/docs"))).toBe("permission_denied");
    // Carol's cross-tenant grant is untouched...
    expect(await carol.readText("/docs/a.txt", { tenant: "acme" })).toBe("alpha 2");
    // ...until it is revoked too.
    await alice.unshare("/docs", { user: CAROL.user, relation: "viewer", tenant: "globex" });
    await carol.synced();
    expect(await outcome(carol.read("/docs/a.txt", { tenant: "acme" }))).toBe("permission_denied");
    expect(await carol.readText("/g/x.txt")).toBe("globex");

    // A grant made through the engine directly (not through the filesystem) is pushed too: dave joins a group.
    await fs.as(CAROL).share("/g", { user: "group:team", relation: "viewer" });
    await dave.synced();
    expect(await outcome(dave.read("/g/x.txt"))).toBe("permission_denied");
    await engine.write({
      writes: [{ user: DAVE.user, relation: "member", object: "group:team", tenant: "globex" }],
    });
    await new Promise((r) => setTimeout(r, 50)); // the engine's changelog reaches the stream asynchronously
    await dave.synced();
    expect(await dave.readText("/g/x.txt")).toBe("globex");
    await engine.write({
      deletes: [{ user: DAVE.user, relation: "member", object: "group:team", tenant: "globex" }],
    });
    await new Promise((r) => setTimeout(r, 50));
    await dave.synced();
    expect(await outcome(dave.read("/g/x.txt"))).toBe("permission_denied");

    // Renames and removes drop what they moved.
    await alice.share("/docs", { user: BOB.user, relation: "viewer" });
    await bob.synced();
    expect((await bob.list("/docs")).map((e) => e.name)).toEqual(["a.txt"]);
    await alice.rename("/docs/a.txt", "/docs/b.txt");
    await bob.synced();
    expect((await bob.list("/docs")).map((e) => e.name)).toEqual(["b.txt"]);
    expect(await outcome(bob.read("/docs/a.txt"))).toBe("not_found");
    await alice.remove("/docs/b.txt");
    await bob.synced();
    expect(await bob.list("/docs")).toEqual([]);
    for (const c of [bob, carol, dave]) await c.close();
  });

  it("drops cached reads a revoked wildcard (user:*) grant, or the removal of a public or group-shared file, ends", async () => {
    ({ fs, engine } = await twoTenants(dir));
    const alice = fs.as(ALICE);
    await alice.mkdir("/docs");
    for (const name of ["a", "b", "c"]) await alice.write(`/docs/${name}.txt`, name);
    await engine.write({
      writes: [{ user: BOB.user, relation: "member", object: "group:eng", tenant: "acme" }],
    });
    await alice.share("/docs/a.txt", { user: "user:*", relation: "viewer" });
    await alice.share("/docs/b.txt", { user: "user:*", relation: "viewer" });
    await alice.share("/docs/c.txt", { user: "group:eng#member", relation: "viewer" });
    const bob = new FsClient(fs, BOB);
    const dave = fs.watch({ caller: DAVE });
    try {
      for (const name of ["a", "b", "c"]) expect(await bob.readText(`/docs/${name}.txt`)).toBe(name);
      // Bob may not read /docs: none of these events reaches him through his directory.
      await alice.unshare("/docs/a.txt", { user: "user:*", relation: "viewer" });
      await bob.synced();
      expect(await outcome(bob.read("/docs/a.txt"))).toBe("permission_denied");
      await alice.remove("/docs/b.txt");
      await bob.synced();
      expect(await outcome(bob.read("/docs/b.txt"))).toBe("permission_denied");
      await alice.remove("/docs/c.txt");
      await bob.synced();
      expect(await outcome(bob.read("/docs/c.txt"))).toBe("permission_denied");
      // Dave, of another tenant with no grant in acme, learns nothing of it: his first event is his own.
      await fs.as(CAROL).write("/dave.txt", "d");
      await fs.as(CAROL).share("/dave.txt", { user: DAVE.user, relation: "viewer" });
      let seen = await dave.next();
      while (seen.value?.kind === "position") seen = await dave.next();
      expect(seen.value).toMatchObject({ tenant: "globex", path: "/dave.txt" });
    } finally {
      await dave.return();
      await bob.close();
    }
  });

  it("leaves nothing running after close", async () => {
    const before = process.getActiveResourcesInfo().length;
    ({ fs, engine } = await twoTenants(dir));
    const client = new FsClient(fs, ALICE);
    await fs.as(ALICE).write("/x", "x");
    expect(text(await client.read("/x"))).toBe("x");
    await client.close();
    await fs.close();
    await engine.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });
});
