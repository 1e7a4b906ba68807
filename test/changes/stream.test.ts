/**
 * A change feed subscription read as an async iterable (src/changes/stream.ts): every change after the start
 * revision once, in order, in whole revisions, from the given feed or one opened for the iteration; a feed reset
 * ends it with "invalid_token"; the signal, or the feed closing, ends it quietly and unsubscribes.
 */
import { describe, expect, it } from "vitest";
import { ChangeFeed } from "../../src/changes/feed.js";
import { followChanges, MAX_QUEUED_CHANGES } from "../../src/changes/stream.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import type { StoredChange } from "../../src/tuples/types.js";

const member = (user: string): RelationTuple => {
  const r = normalizeTuple({ user, relation: "member", object: "group:g" }, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};

async function take(pages: AsyncIterator<readonly StoredChange[]>, changes: number): Promise<StoredChange[]> {
  const out: StoredChange[] = [];
  while (out.length < changes) {
    const next = await pages.next();
    if (next.done) break;
    out.push(...next.value);
  }
  return out;
}

describe("followChanges", () => {
  it("replays from an older revision, then follows live writes, each change once", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: [member("user:a")], deletes: [] });
    await store.write({ writes: [member("user:b")], deletes: [] });
    await using feed = await ChangeFeed.open(store);
    const stop = new AbortController();
    const pages = followChanges(store, { after: 1, signal: stop.signal, feed })[Symbol.asyncIterator]();
    const first = take(pages, 2);
    await store.write({ writes: [member("user:c")], deletes: [member("user:a")] });
    const seen = await first;
    expect(seen.map((c) => [c.revision, c.op, c.tuple.user])).toEqual([
      [2, "write", "user:b"],
      [3, "delete", "user:a"],
      [3, "write", "user:c"],
    ]);
    stop.abort();
    expect((await pages.next()).done).toBe(true);
    expect(feed.stats().listeners).toBe(0);
  });

  it("opens a feed of its own when given none", async () => {
    await using store = new MemoryTupleStore();
    const stop = new AbortController();
    const pages = followChanges(store, { after: 0, signal: stop.signal })[Symbol.asyncIterator]();
    const first = take(pages, 1);
    await store.write({ writes: [member("user:a")], deletes: [] });
    expect((await first).map((c) => c.tuple.user)).toEqual(["user:a"]);
    stop.abort();
    expect((await pages.next()).done).toBe(true);
  });

  it("fails with invalid_token when the feed resets, and ends when the feed closes", async () => {
    await using store = new MemoryTupleStore({ changelogMaxEntries: 2 });
    const feed = await ChangeFeed.open(store);
    const stop = new AbortController();
    const reset = followChanges(store, { after: 0, signal: stop.signal, feed })[Symbol.asyncIterator]();
    const failed = reset.next();
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.write({ writes: [member(`user:${i}`)], deletes: [] })),
    );
    await expect(failed).rejects.toMatchObject({ code: "invalid_token" });

    const pages = followChanges(store, { after: await store.currentRevision(), signal: stop.signal, feed });
    const ended = pages[Symbol.asyncIterator]().next();
    await feed.close();
    expect((await ended).done).toBe(true);
  });

  it("pauses a reader that falls too far behind and resumes it from the changelog, missing nothing", async () => {
    await using store = new MemoryTupleStore();
    await using feed = await ChangeFeed.open(store);
    const stop = new AbortController();
    const pages = followChanges(store, { after: 0, signal: stop.signal, feed })[Symbol.asyncIterator]();
    const batch = 10_000;
    const batches = Math.ceil((MAX_QUEUED_CHANGES * 1.6) / batch);
    for (let b = 0; b < batches; b++) {
      const writes = Array.from({ length: batch }, (_, i) => member(`user:${b}-${i}`));
      await store.write({ writes, deletes: [] });
    }
    await feed.caughtUp();
    // The reader has not read anything yet: the feed dropped it once it held more than the limit.
    expect(feed.stats().listeners).toBe(0);
    const seen = await take(pages, batches * batch);
    expect(seen.length).toBe(batches * batch);
    expect(new Set(seen.map((c) => c.tuple.user)).size).toBe(batches * batch);
    expect(seen.map((c) => c.revision)).toEqual(seen.map((c) => c.revision).sort((a, b) => a - b));
    stop.abort();
    expect((await pages.next()).done).toBe(true);
    expect(feed.stats().listeners).toBe(0);
  });
});
