/**
 * The filesystem's permission events as a listener of the engine's change feed: a changelog trimmed past the
 * stream's cursor while the filesystem was closed gives one event without a path per tenant, and the follower goes
 * on from there; changes made while it runs are reported once, each, across the feed it shares with the engine.
 */
import { afterEach, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import type { FsEvent } from "../../src/fs/events.js";
import { openFileSystem } from "../../src/fs/open.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { ALICE, BOB, tempDir, twoTenants } from "./helpers.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function take(stream: AsyncGenerator<FsEvent>, n: number): Promise<FsEvent[]> {
  const out: FsEvent[] = [];
  while (out.length < n) {
    const { value, done } = await stream.next();
    if (done) break;
    out.push(value);
  }
  return out;
}

const member = (i: number) => ({
  user: `user:u${i}`,
  relation: "member",
  object: "group:eng",
  tenant: "acme",
});

it("reports lost changes per tenant when the changelog no longer reaches back to the cursor, then goes on", async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const store = new MemoryTupleStore({ changelogMaxEntries: 4 });
  const engine = await createEngine({ model: nexusFilesystemModel, store });
  cleanups.push(() => engine.close());
  const { fs } = await twoTenants(dir, { engine });
  await fs.as(ALICE).mkdir("/d");
  const before = fs.token;
  await fs.close();

  // Written while the filesystem is closed, through the engine whose feed the follower shared: more changes than
  // the changelog keeps.
  for (let i = 0; i < 12; i++) await engine.write({ writes: [member(i)] });

  const again = await openFileSystem({ dir, engine });
  cleanups.push(() => again.close());
  const stream = again.watch({ after: before });
  const lost = await take(stream, 2);
  expect(lost.map((e) => [e.kind, e.tenant, e.path, e.change])).toEqual([
    ["permission", "acme", undefined, undefined],
    ["permission", "globex", undefined, undefined],
  ]);

  // Followed from there on: a later change is reported with what it was, an own share by its own event only.
  await engine.write({ writes: [member(99)] });
  await again.as(ALICE).share("/d", { user: BOB.user, relation: "viewer" });
  await engine.write({ writes: [member(100)] });
  const next = await take(stream, 3);
  expect(next.map((e) => [e.kind, e.tenant, e.change?.user])).toEqual([
    ["permission", "acme", "user:u99"],
    ["permission", "acme", BOB.user],
    ["permission", "acme", "user:u100"],
  ]);
  expect(next[1]!.path).toBe("/d");
});

it("has judged every committed change when close() returns: a reopen reports nothing twice", async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const engine = await createEngine({ model: nexusFilesystemModel });
  cleanups.push(() => engine.close());
  // The engine's feed is already open when the filesystem subscribes to it.
  await engine.changeFeed();
  const { fs } = await twoTenants(dir, { engine });
  await fs.as(ALICE).mkdir("/d");
  const start = fs.token;
  for (let i = 0; i < 30; i++) await engine.write({ writes: [member(i)] });
  await fs.close();
  const again = await openFileSystem({ dir, engine });
  cleanups.push(() => again.close());
  await engine.write({ writes: [member(1000)] });
  const reported = await take(again.watch({ after: start }), 31);
  expect(reported.map((e) => e.change?.user)).toEqual([
    ...Array.from({ length: 30 }, (_, i) => `user:u${i}`),
    "user:u1000",
  ]);
});
