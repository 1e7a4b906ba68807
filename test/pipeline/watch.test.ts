/**
 * The change feed (one subscription fanned out, in order, no gap, reset when the changelog is trimmed under it)
 * and the influence map (which check classes a tuple class can change).
 */
import { describe, expect, it } from "vitest";
import { ChangeFeed, type ChangeListener } from "../../src/changes/feed.js";
import { influenceOf } from "../../src/changes/influence.js";
import { loadConditions } from "../../src/conditions/cel-js.js";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import type { StoredChange } from "../../src/tuples/types.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

function tuple(user: string, relation: string, object: string, tenant = "default"): RelationTuple {
  const n = normalizeTuple({ user, relation, object }, tenant);
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

class Recorder implements ChangeListener {
  readonly revisions: number[] = [];
  readonly watermarks: number[] = [];
  readonly resets: number[] = [];
  onChanges(changes: readonly StoredChange[], watermark: number): void {
    for (const c of changes) this.revisions.push(c.revision);
    this.watermarks.push(watermark);
  }
  onReset(revision: number): void {
    this.resets.push(revision);
  }
}

describe("ChangeFeed", () => {
  it("fans every change out to every listener, in revision order, across tenants", async () => {
    await using store = new MemoryTupleStore();
    await store.write({ writes: [tuple("user:a", "viewer", "doc:0")], deletes: [] });
    await using feed = await ChangeFeed.open(store);
    expect(feed.watermark).toBe(1);
    const one = new Recorder();
    const two = new Recorder();
    feed.subscribe(one);
    const unsubscribe = feed.subscribe(two);
    for (let i = 1; i <= 20; i++) {
      await store.write({
        writes: [tuple("user:a", "viewer", `doc:${i}`, i % 2 === 0 ? "default" : "acme")],
        deletes: [],
      });
    }
    await feed.caughtUp();
    expect(feed.watermark).toBe(21);
    expect(one.revisions).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(two.revisions).toEqual(one.revisions);
    unsubscribe();
    await store.write({ writes: [tuple("user:b", "viewer", "doc:1")], deletes: [] });
    await feed.caughtUp();
    expect(one.revisions.at(-1)).toBe(22);
    expect(two.revisions.at(-1)).toBe(21);
    expect(feed.stats()).toMatchObject({ watermark: 22, changes: 21, revisions: 21, listeners: 1 });
  });

  it("delivers a write to listeners within a millisecond in-process", async () => {
    await using store = new MemoryTupleStore();
    await using feed = await ChangeFeed.open(store);
    let seenAt = 0;
    feed.subscribe({
      onChanges: () => {
        seenAt = performance.now();
      },
      onReset: () => {},
    });
    const lags: number[] = [];
    for (let i = 0; i < 200; i++) {
      const start = performance.now();
      const { revision } = await store.write({
        writes: [tuple("user:a", "viewer", `doc:${i}`)],
        deletes: [],
      });
      await feed.caughtUp(revision);
      lags.push(seenAt - start);
    }
    lags.sort((a, b) => a - b);
    // The median, not the worst: other processes share the machine.
    expect(lags[100]!).toBeLessThan(1);
  });

  it("resets listeners when the changelog was trimmed past its cursor, then continues", async () => {
    await using store = new MemoryTupleStore({ changelogMaxEntries: 3 });
    await using feed = await ChangeFeed.open(store);
    const recorder = new Recorder();
    feed.subscribe(recorder);
    // Ten commits before the feed's loop runs again: the changelog keeps only the last three.
    const writes = Array.from({ length: 10 }, (_, i) =>
      store.write({ writes: [tuple("user:a", "viewer", `doc:${i}`)], deletes: [] }),
    );
    await Promise.all(writes);
    await feed.caughtUp();
    expect(recorder.resets).toEqual([10]);
    expect(feed.stats().resets).toBe(1);
    expect(feed.complete).toBe(10);
    await store.write({ writes: [tuple("user:b", "viewer", "doc:1")], deletes: [] });
    await feed.caughtUp();
    expect(recorder.revisions).toEqual([11]);
  });

  it("close() ends the loop and releases waiters; caughtUp honours its signal", async () => {
    const store = new MemoryTupleStore();
    const feed = await ChangeFeed.open(store);
    const abort = new AbortController();
    const waiting = feed.caughtUp(5, abort.signal);
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ code: "aborted" });
    const released = feed.caughtUp(7);
    await feed.close();
    await released;
    expect(feed.running).toBe(false);
    expect(() => feed.subscribe(new Recorder())).toThrow(/closed/);
    await store.close();
  });

  it("ends quietly when the store closes under it", async () => {
    const store = new MemoryTupleStore();
    const feed = await ChangeFeed.open(store);
    await store.close();
    await feed.close();
    expect(feed.stats().error).toBeUndefined();
  });
});

describe("influenceOf", () => {
  const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
    define banned: [user]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user] or owner
    define viewer: ([user, group#member] or editor or viewer from parent) but not blocked
    define blocked: [user]
    define audit: [user]
`);
  const influence = influenceOf(program);
  const sorted = (list: readonly string[]) => [...list].sort();

  it("maps a tuple class to exactly the check classes that read it", () => {
    expect(sorted(influence.affectedBy("doc", "owner"))).toEqual(["doc#editor", "doc#owner", "doc#viewer"]);
    // A subtracted relation changes answers too.
    expect(sorted(influence.affectedBy("doc", "blocked"))).toEqual(["doc#blocked", "doc#viewer"]);
    // Tuple-to-userset: the tupleset and the parent's relation.
    expect(sorted(influence.affectedBy("doc", "parent"))).toEqual(["doc#parent", "doc#viewer"]);
    expect(sorted(influence.affectedBy("folder", "viewer"))).toEqual(["doc#viewer", "folder#viewer"]);
    // Usersets: group membership feeds everything that admits group#member.
    expect(sorted(influence.affectedBy("group", "member"))).toEqual([
      "doc#viewer",
      "folder#viewer",
      "group#member",
    ]);
    expect(influence.affectedBy("group", "banned")).toEqual(["group#banned"]);
    expect(influence.affectedBy("doc", "audit")).toEqual(["doc#audit"]);
  });

  it("knows which checks may evaluate a condition", () => {
    const withCondition = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user with small]
type doc
  relations
    define viewer: [user, group#member]
    define owner: [user]
condition small(x: int) {
  x < 5
}
`);
    const map = influenceOf(withCondition);
    expect(map.mayEvaluateConditions("doc", "viewer")).toBe(true);
    expect(map.mayEvaluateConditions("doc", "owner")).toBe(false);
    expect(map.mayEvaluateConditions("group", "member")).toBe(true);
  });
});
