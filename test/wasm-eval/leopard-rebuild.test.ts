/**
 * The Leopard index's rebuild runs off the request path: after a load larger than a few thousand tuples the graph
 * is built with the index deferred, and the first questions are answered by the walk (exactly, as the reference
 * evaluator answers them) without rebuilding it inside them; writes and deletes that land while the rebuild is
 * pending are in the index once it has run (when writes settle), and its answers are still the reference's.
 */
import { describe, expect, it } from "vitest";
import type { CheckQuery } from "../../src/reference/check.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { TenantGraphs } from "../../src/wasm-eval/tenant-graphs.js";
import { expectReference as expectReferenceOf, groupsProgram, normalized, query } from "./reference.js";

const program = await groupsProgram();

const CHAINS = 40;
const DEPTH = 5;
const USERS_PER_GROUP = 50;
const MAX_DEPTH = 25;

const link = (c: number, d: number): TupleKey => ({
  user: `group:c${c}d${d + 1}#member`,
  relation: "member",
  object: `group:c${c}d${d}`,
});

/** 40 chains of 5 nested groups (d0 ∋ d1 ∋ ... ∋ d4), 50 users in each group: 10,160 tuples. */
function load(): TupleKey[] {
  const out: TupleKey[] = [];
  for (let c = 0; c < CHAINS; c++) {
    for (let d = 0; d < DEPTH; d++) {
      for (let u = 0; u < USERS_PER_GROUP; u++) {
        out.push({ user: `user:c${c}d${d}u${u}`, relation: "member", object: `group:c${c}d${d}` });
      }
      if (d + 1 < DEPTH) out.push(link(c, d));
    }
  }
  return out;
}

/** Members and non-members of chain tops and middles, across chains (the links written and deleted below too). */
function queries(): CheckQuery[] {
  const out: CheckQuery[] = [];
  for (const c of [0, 1, 2, 7, 39]) {
    for (const d of [0, 2]) {
      for (const [uc, ud] of [
        [c, 4],
        [c, 3],
        [c, 1],
        [(c + 1) % CHAINS, 4],
        [3, 4],
      ] as const) {
        out.push(query(`group:c${c}d${d}`, "member", `user:c${uc}d${ud}u7`));
      }
    }
  }
  out.push(query("group:c0d0", "member", "user:new"), query("group:c1d0", "member", "user:new"));
  return out;
}

function expectReference(fast: WasmEvaluator, store: MemoryTupleStore, qs: CheckQuery[]): Promise<void> {
  return expectReferenceOf(fast, store, program, qs, MAX_DEPTH);
}

describe("Leopard rebuild off the request path", () => {
  it("first checks after a large load walk (no rebuild inside them); writes while it is pending are kept", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const fast = new WasmEvaluator({ program, store, maxDepth: MAX_DEPTH });
    const e = fast.kernel.exports;
    try {
      await store.write({ writes: load().map(normalized), deletes: [] });
      let revision = await store.currentRevision();
      const decidedBefore = e.eval_leopard_decided();
      // The first check builds the graph (no write followed it here) and is answered without the rebuild.
      expect(await fast.check(query("group:c0d0", "member", "user:c0d4u1"), revision)).toBe(true);
      const graph = fast.graphIfCurrent("default", revision)!;
      expect(graph.tuples).toBeGreaterThan(8192);
      expect(graph.leopardPending).toBe(true);
      const qs = queries();
      await expectReference(fast, store, qs);
      expect(graph.leopardPending).toBe(true);
      expect(e.eval_leopard_decided()).toBe(decidedBefore);

      // Writes and deletes while the rebuild is pending: chain 1 hangs under chain 0, chain 2's link d1 ∋ d2 goes,
      // a new user joins chain 0's deepest group, a user of chain 7 leaves.
      await store.write({
        writes: [
          { user: "group:c1d0#member", relation: "member", object: "group:c0d4" },
          { user: "user:new", relation: "member", object: "group:c0d4" },
        ].map(normalized),
        deletes: [link(2, 1), { user: "user:c7d4u7", relation: "member", object: "group:c7d4" }].map(
          normalized,
        ),
      });
      revision = await store.currentRevision();
      await expectReference(fast, store, qs);
      expect(fast.graphIfCurrent("default", revision)).toBe(graph);

      // Once writes settle the rebuild runs as a task of its own; then the index answers, with every write above.
      const deadline = performance.now() + 5000;
      while (graph.leopardPending && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      expect(graph.leopardPending).toBe(false);
      const lp = graph.leopardPointer;
      const member = fast.compiled.relationIds.get("member")!;
      const c0d0 = fast.symbols.lookup("group:c0d0")!;
      // user:c1d4u7 reaches c0d0 through the new link: c0d0 ∋ c0d1 ∋ ... ∋ c0d4 ∋ c1d0 ∋ ... ∋ c1d4 (distance 9).
      expect(e.leopard_distance(lp, member, c0d0, fast.symbols.lookup("user:c1d4u7")!)).toBe(9);
      expect(e.leopard_distance(lp, member, c0d0, fast.symbols.lookup("user:new")!)).toBe(4);
      const decidedAfterRebuild = e.eval_leopard_decided();
      await expectReference(fast, store, qs);
      expect(e.eval_leopard_decided()).toBeGreaterThan(decidedAfterRebuild);

      // And maintained edge by edge from here on.
      await store.write({
        writes: [link(2, 1)].map(normalized),
        deletes: [{ user: "group:c1d0#member", relation: "member", object: "group:c0d4" }].map(normalized),
      });
      await expectReference(fast, store, qs);
      expect(graph.leopardPending).toBe(false);
    } finally {
      fast.close();
      await store.close();
    }
  }, 60_000);

  it("a steady stream of writes puts the rebuild off for a bounded time, not for as long as it lasts", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const fast = new WasmEvaluator({ program, store, maxDepth: MAX_DEPTH });
    try {
      await store.write({ writes: load().map(normalized), deletes: [] });
      let revision = await store.currentRevision();
      await fast.check(query("group:c0d0", "member", "user:c0d4u1"), revision);
      const graph = fast.graphIfCurrent("default", revision)!;
      expect(graph.leopardPending).toBe(true);
      // A write and a check every ~5 ms (each run ends less than the quiet time before the next) for 1.5 s.
      const started = performance.now();
      let i = 0;
      while (graph.leopardPending && performance.now() - started < 1500) {
        await store.write({
          writes: [normalized({ user: `user:w${i++}`, relation: "member", object: "group:c9d4" })],
          deletes: [],
        });
        revision = await store.currentRevision();
        expect(await fast.check(query("group:c0d0", "member", "user:c0d4u1"), revision)).toBe(true);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(graph.leopardPending).toBe(false);
      await expectReference(fast, store, queries());
    } finally {
      fast.close();
      await store.close();
    }
  }, 60_000);

  it("a graph built again while the old graph's rebuild timer is armed gets its rebuild without another write", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const fast = new WasmEvaluator({ program, store, maxDepth: MAX_DEPTH });
    let graphs: TenantGraphs | undefined;
    const graphAt = TenantGraphs.prototype.graphAt;
    // The evaluator's TenantGraphs, to tell it changes were lost (as a feed reset does).
    TenantGraphs.prototype.graphAt = function (this: TenantGraphs, ...args: Parameters<typeof graphAt>) {
      graphs = this;
      return graphAt.apply(this, args);
    };
    try {
      await store.write({ writes: load().map(normalized), deletes: [] });
      let revision = await store.currentRevision();
      await fast.check(query("group:c0d0", "member", "user:c0d4u1"), revision);
      const first = fast.graphIfCurrent("default", revision)!;
      expect(first.leopardPending).toBe(true);
      // Within the quiet time of the first graph's timer: changes lost, a write, and a check that builds anew.
      graphs!.onReset(revision);
      await store.write({
        writes: [normalized({ user: "user:x", relation: "member", object: "group:c0d4" })],
        deletes: [],
      });
      revision = await store.currentRevision();
      expect(await fast.check(query("group:c0d0", "member", "user:x"), revision)).toBe(true);
      const second = fast.graphIfCurrent("default", revision)!;
      expect(second).not.toBe(first);
      const deadline = performance.now() + 3000;
      while (second.leopardPending && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      expect(second.leopardPending).toBe(false);
      await expectReference(fast, store, queries());
    } finally {
      TenantGraphs.prototype.graphAt = graphAt;
      fast.close();
      await store.close();
    }
  }, 60_000);
});
