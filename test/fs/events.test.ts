/**
 * The change stream: created, written, renamed, removed and permission events in order, with tokens to resume
 * after; permission changes made through the engine directly appear too; stale tokens are refused.
 */
import { afterEach, expect, it } from "vitest";
import type { FsEvent } from "../../src/fs/events.js";
import { openFileSystem } from "../../src/fs/filesystem.js";
import { ALICE, BOB, CAROL, tempDir, twoTenants } from "./helpers.js";

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

it("streams file and permission events of both tenants, resumable by token", async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const { fs, engine } = await twoTenants(dir);
  cleanups.push(
    () => engine.close(),
    () => fs.close(),
  );
  const start = fs.token;
  const stream = fs.watch({ after: start });
  const alice = fs.as(ALICE);
  await alice.mkdir("/d");
  await alice.write("/d/a", "1");
  await alice.write("/d/a", "2");
  await alice.share("/d/a", { user: BOB.user, relation: "viewer" });
  await alice.share("/d/a", { user: CAROL.user, relation: "viewer", tenant: "globex" });
  await alice.rename("/d/a", "/d/b");
  await alice.remove("/d/b");
  await fs.as(CAROL).write("/g", "g");
  await engine.write({
    writes: [{ user: BOB.user, relation: "member", object: "group:eng", tenant: "acme" }],
  });
  const events = await take(stream, 9);
  expect(events.map((e) => [e.kind, e.tenant, e.path, e.from])).toEqual([
    ["created", "acme", "/d", undefined],
    ["created", "acme", "/d/a", undefined],
    ["written", "acme", "/d/a", undefined],
    ["permission", "acme", "/d/a", undefined],
    ["permission", "acme", "/d/a", undefined],
    ["renamed", "acme", "/d/b", "/d/a"],
    ["removed", "acme", "/d/b", undefined],
    ["created", "globex", "/g", undefined],
    ["permission", "acme", undefined, undefined],
  ]);
  expect(events[4]!.change).toMatchObject({
    op: "write",
    relation: "shared-viewer",
    subjectTenant: "globex",
  });
  expect(events[8]!.change).toMatchObject({ op: "write", object: "group:eng", relation: "member" });
  // Resuming after the 5th event gives the 6th onwards.
  const resumed = await take(fs.watch({ after: events[4]!.token }), 4);
  expect(resumed.map((e) => e.token)).toEqual(events.slice(5).map((e) => e.token));
  expect(() => fs.watch({ after: "nope.3" })).toThrow(expect.objectContaining({ code: "invalid_token" }));
  // A reopened filesystem is a new stream: old tokens are refused (the caller relists).
  await fs.close();
  const again = await openFileSystem({ dir, engine });
  cleanups.push(() => again.close());
  expect(() => again.watch({ after: events[0]!.token })).toThrow(
    expect.objectContaining({ code: "invalid_token" }),
  );
  // The stream ends when the filesystem closes.
  const open = again.watch();
  const ended = open.next();
  await again.close();
  expect((await ended).done).toBe(true);
});
