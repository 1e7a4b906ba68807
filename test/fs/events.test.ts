/**
 * The change stream: created, written, renamed, removed and permission events in order, with tokens to resume
 * after; permission changes made through the engine directly appear too; tokens survive a restart (no gap, no
 * duplicate); tokens older than the retention are refused.
 */
import { afterEach, expect, it } from "vitest";
import type { FsEvent } from "../../src/fs/events.js";
import type { FileSystem } from "../../src/fs/filesystem.js";
import { openFileSystem } from "../../src/fs/open.js";
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
  // The stream is durable: a token from before a restart resumes after reopening, with no gap and no duplicate,
  // and a permission change made through the engine while the filesystem was closed is in it.
  const last = events[8]!.token;
  await fs.close();
  await engine.write({
    writes: [{ user: CAROL.user, relation: "member", object: "group:eng", tenant: "acme" }],
  });
  const again = await openFileSystem({ dir, engine });
  cleanups.push(() => again.close());
  await again.as(ALICE).write("/after", "x");
  const later = await take(again.watch({ after: last }), 2);
  expect(later.map((e) => [e.kind, e.tenant, e.path, e.change?.user])).toEqual([
    ["permission", "acme", undefined, CAROL.user],
    ["created", "acme", "/after", undefined],
  ]);
  expect(() => again.watch({ after: "nope.3" })).toThrow(
    expect.objectContaining({
      code: "invalid_token",
      details: expect.objectContaining({ reason: "unknown" }),
    }),
  );
  // The stream ends when the filesystem closes.
  const open = again.watch();
  const ended = open.next();
  await again.close();
  expect((await ended).done).toBe(true);
});

/** The events after `after`, up to the stream's present. */
async function until(fs: FileSystem, after: string): Promise<FsEvent[]> {
  const end = await fs.currentToken();
  const out: FsEvent[] = [];
  if (end === after) return out;
  for await (const e of fs.watch({ after })) {
    out.push(e);
    if (e.token === end) break;
  }
  return out;
}

it("on the embedded default: write, take a token, close, reopen, write more: exactly the later events", async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const fs = await openFileSystem({ dir });
  await fs.initTenant({ tenant: "acme", owners: [ALICE.user] });
  const alice = fs.as(ALICE);
  await alice.mkdir("/d");
  await alice.write("/d/a", "1");
  await alice.share("/d/a", { user: BOB.user, relation: "viewer" });
  const token = fs.token;
  await alice.write("/d/a", "2");
  await fs.close();
  const again = await openFileSystem({ dir });
  cleanups.push(() => again.close());
  const a2 = again.as(ALICE);
  await a2.write("/d/b", "3");
  await a2.unshare("/d/a", { user: BOB.user, relation: "viewer" });
  await a2.rename("/d/b", "/d/c");
  await a2.remove("/d/c");
  const later = await until(again, token);
  expect(later.map((e) => [e.kind, e.path, e.change?.op])).toEqual([
    ["written", "/d/a", undefined],
    ["created", "/d/b", undefined],
    ["permission", "/d/a", "delete"],
    ["renamed", "/d/c", undefined],
    ["removed", "/d/c", undefined],
  ]);
  // Positions only grow, across the restart.
  const positions = later.map((e) => Number(e.token.split(".")[1]));
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
  expect(new Set(later.map((e) => e.token.split(".")[0]))).toEqual(new Set([token.split(".")[0]]));
});

it("keeps `eventRetention` events: an older token is invalid_token (reason expired), before and after a restart", async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const { fs, engine } = await twoTenants(dir, { eventRetention: 5 });
  cleanups.push(() => engine.close());
  const first = fs.token;
  const alice = fs.as(ALICE);
  for (let i = 0; i < 30; i++) await alice.write(`/f${i % 3}`, `v${i}`);
  const expired = expect.objectContaining({
    code: "invalid_token",
    details: expect.objectContaining({ reason: "expired", retention: 5 }),
  });
  expect(() => fs.watch({ after: first })).toThrow(expired);
  const recent = fs.token;
  await fs.close();
  const again = await openFileSystem({ dir, engine, eventRetention: 5 });
  cleanups.push(() => again.close());
  expect(() => again.watch({ after: first })).toThrow(expired);
  await again.as(ALICE).write("/g", "g");
  expect((await until(again, recent)).map((e) => e.path)).toEqual(["/g"]);
  // The file on disk is bounded too (compacted past twice the retention).
  const { readFileSync } = await import("node:fs");
  const lines = readFileSync(`${dir}/events/events.log`, "utf8").trim().split("\n");
  expect(lines.length).toBeLessThanOrEqual(2 * 5 + 4);
});
