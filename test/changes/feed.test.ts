// ChangeFeed subscriptions from an older revision: the replay hands a late listener every change after its
// revision exactly once and in order, while writes keep arriving, then it shares the live fan-out.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChangeFeed, type ChangeListener, completeThrough } from "../../src/changes/feed.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import type { StoredChange } from "../../src/tuples/types.js";

function tuple(user: string, object: string): RelationTuple {
  const n = normalizeTuple({ user, relation: "viewer", object }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

class Recorder implements ChangeListener {
  readonly revisions: number[] = [];
  readonly resets: number[] = [];
  onChanges(changes: readonly StoredChange[], _watermark: number): void {
    for (const c of changes) this.revisions.push(c.revision);
  }
  onReset(revision: number): void {
    this.resets.push(revision);
  }
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("ChangeFeed.subscribe({ after })", () => {
  it("replays the changes after an older revision, then joins the live fan-out without a gap or a repeat", async () => {
    await using store = new MemoryTupleStore();
    for (let i = 1; i <= 50; i++) await store.write({ writes: [tuple("user:a", `doc:${i}`)], deletes: [] });
    await using feed = await ChangeFeed.open(store, { pageSize: 7 });
    const late = new Recorder();
    const live = new Recorder();
    feed.subscribe(live);
    const unsubscribe = feed.subscribe(late, { after: 10 });
    // Writes land while the replay pages through the changelog.
    const writing = (async () => {
      for (let i = 51; i <= 80; i++)
        await store.write({ writes: [tuple("user:b", `doc:${i}`)], deletes: [] });
    })();
    await unsubscribe.replayed();
    await writing;
    await feed.caughtUp();
    expect(late.revisions).toEqual(range(11, 80));
    expect(live.revisions).toEqual(range(51, 80));
    expect(feed.stats().listeners).toBe(2);
  });

  it("starts a listener at the watermark when it names no revision", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: [tuple("user:a", "doc:1")], deletes: [] });
    await using feed = await ChangeFeed.open(store);
    const listener = new Recorder();
    await feed.subscribe(listener).replayed();
    await store.write({ writes: [tuple("user:a", "doc:2")], deletes: [] });
    await feed.caughtUp();
    expect(listener.revisions).toEqual([2]);
  });

  it("resets a listener whose revision the changelog no longer reaches", async () => {
    await using store = new MemoryTupleStore({ changelogMaxEntries: 3 });
    for (let i = 1; i <= 10; i++) await store.write({ writes: [tuple("user:a", `doc:${i}`)], deletes: [] });
    await using feed = await ChangeFeed.open(store);
    const listener = new Recorder();
    await feed.subscribe(listener, { after: 1 }).replayed();
    expect(listener.resets).toEqual([10]);
    expect(listener.revisions).toEqual([]);
    await store.write({ writes: [tuple("user:a", "doc:11")], deletes: [] });
    await feed.caughtUp();
    expect(listener.revisions).toEqual([11]);
  });

  it("stops a replay when the listener unsubscribes or the feed closes", async () => {
    const store = new MemoryTupleStore();
    for (let i = 1; i <= 100; i++) await store.write({ writes: [tuple("user:a", `doc:${i}`)], deletes: [] });
    const feed = await ChangeFeed.open(store, { pageSize: 5 });
    const gone = new Recorder();
    const unsubscribe = feed.subscribe(gone, { after: 0 });
    unsubscribe();
    await unsubscribe.replayed();
    expect(feed.stats().listeners).toBe(0);
    const closing = new Recorder();
    const second = feed.subscribe(closing, { after: 0 });
    await feed.close();
    await second.replayed();
    expect(feed.stats().listeners).toBe(0);
    await store.close();
  });
});

describe("ChangeFeed: a large revision in parts", () => {
  it("hands a partialRevisions listener a 10,000-change write in parts, the watermark held back until the last, with the event loop turning between them", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: [tuple("user:a", "doc:first")], deletes: [] });
    await using feed = await ChangeFeed.open(store);
    const calls: { size: number; watermark: number; feedWatermark: number; last: number }[] = [];
    let timers = 0;
    let ticking = true;
    const tick = (): void => {
      timers++;
      if (ticking) setImmediate(tick);
    };
    const partial: ChangeListener & { partialRevisions: true } = {
      partialRevisions: true,
      onChanges(changes, watermark) {
        calls.push({
          size: changes.length,
          watermark,
          feedWatermark: feed.watermark,
          last: changes[changes.length - 1]!.revision,
        });
        // A slow follower: each part takes a few milliseconds, so the feed turns the loop between them.
        const until = performance.now() + 4;
        while (performance.now() < until);
      },
      onReset() {},
    };
    const whole = new Recorder();
    feed.subscribe(partial);
    feed.subscribe(whole);
    const writes = Array.from({ length: 10_000 }, (_, i) => tuple("user:b", `doc:${i}`));
    const { revision } = await store.write({ writes, deletes: [] });
    tick();
    await feed.caughtUp(revision);
    ticking = false;
    expect(calls.reduce((n, c) => n + c.size, 0)).toBe(10_000);
    expect(calls.length).toBeGreaterThan(1);
    for (const c of calls.slice(0, -1)) expect(c).toMatchObject({ watermark: revision - 1, last: revision });
    expect(calls.at(-1)!.watermark).toBe(revision);
    // The feed's watermark stayed at the previous revision until every listener had the whole write.
    for (const c of calls) expect(c.feedWatermark).toBe(revision - 1);
    expect(whole.revisions).toHaveLength(10_000);
    expect(timers).toBeGreaterThan(1);
  });

  it("a listener replaying from an older revision while a large write is handed out gets it once, and replayed() resolves after it", async () => {
    await using store = new MemoryTupleStore();
    for (let i = 1; i <= 5; i++) await store.write({ writes: [tuple("user:a", `doc:${i}`)], deletes: [] });
    await using feed = await ChangeFeed.open(store);
    const slow: ChangeListener & { partialRevisions: true } = {
      partialRevisions: true,
      onChanges() {
        const until = performance.now() + 6;
        while (performance.now() < until);
      },
      onReset() {},
    };
    feed.subscribe(slow);
    const writes = Array.from({ length: 10_000 }, (_, i) => tuple("user:b", `doc:x${i}`));
    const { revision } = await store.write({ writes, deletes: [] });
    // Let the dispatch start, then subscribe from an older revision while it pauses.
    await new Promise((resolve) => setImmediate(resolve));
    const late = new Recorder();
    const subscription = feed.subscribe(late, { after: 2 });
    await subscription.replayed();
    expect(feed.watermark).toBe(revision);
    expect(late.revisions).toEqual([3, 4, 5, ...Array.from({ length: 10_000 }, () => revision)]);
  });

  it("replays a large revision in parts to a partialRevisions listener subscribing from an older revision", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: [tuple("user:a", "doc:first")], deletes: [] });
    const writes = Array.from({ length: 9_000 }, (_, i) => tuple("user:b", `doc:${i}`));
    const { revision } = await store.write({ writes, deletes: [] });
    await store.write({ writes: [tuple("user:a", "doc:last")], deletes: [] });
    await using feed = await ChangeFeed.open(store);
    const calls: { size: number; watermark: number }[] = [];
    const listener: ChangeListener & { partialRevisions: true } = {
      partialRevisions: true,
      onChanges(changes, watermark) {
        calls.push({ size: changes.length, watermark });
      },
      onReset() {},
    };
    await feed.subscribe(listener, { after: 0 }).replayed();
    expect(calls.reduce((n, c) => n + c.size, 0)).toBe(9_002);
    expect(calls.length).toBeGreaterThan(3);
    // Parts of the large revision carry the revision before it; only its last part claims it; none goes back.
    expect(calls.filter((c) => c.watermark < revision).length).toBeGreaterThanOrEqual(4);
    expect(calls.filter((c) => c.watermark === revision)).toHaveLength(1);
    for (let i = 1; i < calls.length; i++) {
      expect(calls[i]!.watermark).toBeGreaterThanOrEqual(calls[i - 1]!.watermark);
    }
    expect(calls.at(-1)!.watermark).toBe(revision + 1);
  });
});

describe("completeThrough: a part's watermark", () => {
  it("property: the last revision wholly inside page[0, end), as a walk back from the cut finds it", () => {
    const t = tuple("user:a", "doc:1");
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }),
        fc.nat(),
        fc.integer({ min: 0, max: 100 }),
        (runs, endSeed, before) => {
          // Runs of changes per revision, revisions ascending after `before`.
          const page: StoredChange[] = [];
          let revision = before;
          for (const run of runs) {
            revision += 1 + (run % 2);
            for (let i = 0; i < run; i++) page.push({ revision, op: "write", tuple: t });
          }
          const end = 1 + (endSeed % page.length);
          let expected: number;
          if (end === page.length) expected = page[end - 1]!.revision;
          else {
            let i = end - 1;
            while (i >= 0 && page[i]!.revision === page[end]!.revision) i--;
            expected = i >= 0 ? page[i]!.revision : before;
          }
          expect(completeThrough(page, end, before)).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
