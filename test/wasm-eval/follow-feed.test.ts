/**
 * The WASM graphs follow a change feed (src/wasm-eval/tenant-graphs.ts): given the engine's feed they subscribe to
 * it instead of opening their own; a graph built at a revision the feed has already passed catches up through a
 * subscription of its own from its build revision and then follows the shared one; a feed reset (the changelog
 * trimmed past what was delivered) makes the next request rebuild the graph from a snapshot; close() leaves no
 * listener behind.
 */
import { describe, expect, it } from "vitest";
import { ChangeFeed } from "../../src/changes/feed.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { groupsProgram, query } from "./reference.js";

const program = await groupsProgram();

const tuple = (key: TupleKey, tenant = "default"): RelationTuple => {
  const r = normalizeTuple(key, tenant);
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};
const member = (user: string, group: string, tenant = "default") =>
  tuple({ user, relation: "member", object: group }, tenant);
const asks = (user: string, group: string, tenant = "default") => query(group, "member", user, tenant);

describe("WASM graphs following a change feed", () => {
  it("subscribe to the given feed, and a graph built behind it catches up and then follows", async () => {
    await ready();
    await using store = new MemoryTupleStore();
    await using feed = await ChangeFeed.open(store);
    const fast = new WasmEvaluator({ program, store, feed });
    try {
      const { revision: r1 } = await store.write({ writes: [member("user:a", "group:g")], deletes: [] });
      expect(await fast.check(asks("user:a", "group:g"), r1)).toBe(true);
      expect(feed.stats().listeners).toBe(1);
      // Two more writes, one per tenant; the feed delivers them before tenant t2's first question.
      await store.write({ writes: [member("user:b", "group:g")], deletes: [] });
      const { revision: r3 } = await store.write({
        writes: [member("user:c", "group:h", "t2")],
        deletes: [],
      });
      await feed.caughtUp(r3);
      // t2's graph is built at r1 (behind the feed): it catches up from r1 with a subscription of its own.
      expect(await fast.check(asks("user:c", "group:h", "t2"), r1)).toBe(false);
      expect(await fast.check(asks("user:c", "group:h", "t2"), r3)).toBe(true);
      const { revision: r4 } = await store.write({
        writes: [member("user:d", "group:h", "t2")],
        deletes: [member("user:c", "group:h", "t2")],
      });
      expect(await fast.check(asks("user:d", "group:h", "t2"), r4)).toBe(true);
      expect(await fast.check(asks("user:c", "group:h", "t2"), r4)).toBe(false);
      expect(await fast.check(asks("user:b", "group:g"), r4)).toBe(true);
      expect(fast.stats.graphBuilds).toBe(2);
      expect(fast.stats.routed.stale_revision).toBe(0);
      // Handed over: one listener again (the catch-up subscription is gone).
      expect(feed.stats().listeners).toBe(1);
    } finally {
      await fast.close();
    }
    expect(feed.stats().listeners).toBe(0);
  });

  it("rebuild a graph from a snapshot after a feed reset", async () => {
    await ready();
    await using store = new MemoryTupleStore({ changelogMaxEntries: 2 });
    await using feed = await ChangeFeed.open(store);
    const fast = new WasmEvaluator({ program, store, feed });
    try {
      const { revision: r1 } = await store.write({ writes: [member("user:a", "group:g")], deletes: [] });
      expect(await fast.check(asks("user:a", "group:g"), r1)).toBe(true);
      // Ten writes before the feed runs again: the changelog keeps the last two, so the feed resets.
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.write({ writes: [member(`user:${i}`, "group:g")], deletes: [] }),
        ),
      );
      const current = await store.currentRevision();
      await feed.caughtUp(current);
      expect(feed.stats().resets).toBe(1);
      expect(await fast.check(asks("user:9", "group:g"), current)).toBe(true);
      expect(await fast.check(asks("user:a", "group:g"), current)).toBe(true);
      expect(fast.stats.graphBuilds).toBe(2);
    } finally {
      await fast.close();
    }
  });

  it("open a feed of their own when given none, and close it with the evaluator", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const fast = new WasmEvaluator({ program, store });
    const { revision } = await store.write({ writes: [member("user:a", "group:g")], deletes: [] });
    expect(await fast.check(asks("user:a", "group:g"), revision)).toBe(true);
    const { revision: next } = await store.write({ writes: [member("user:b", "group:g")], deletes: [] });
    expect(await fast.check(asks("user:b", "group:g"), next)).toBe(true);
    expect(fast.stats.changesApplied).toBe(1);
    const before = process.getActiveResourcesInfo().length;
    await fast.close();
    await store.close();
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });
});
