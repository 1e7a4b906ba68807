/**
 * The Leopard index under group graphs a tenant can write but no organisation has: a chain of 20,000 nested
 * groups (the index's recompute recursed once a level: the WASM stack overflowed inside the rebuild's timer and
 * the RangeError ended the process), and a chain whose closure (n²/2 distances for n groups with a member each)
 * passes the index's bound (past ~25M distances the table refused one silently and the index answered FALSE for a
 * member; well before that, a chain of 3,000 took ~450 MB). Both are answered as the reference evaluator answers
 * them; the second gives the relation up (leopard_state bit 4) and holds no closure.
 */
import { describe, expect, it } from "vitest";
import type { CheckQuery } from "../../src/reference/check.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { expectReference as expectReferenceOf, groupsProgram, normalized, query } from "./reference.js";

const program = await groupsProgram();
const MAX_DEPTH = 25;
const OVERSIZED = 16;

/** group:g0 ∋ group:g1#member ∋ … ∋ group:g{n-1}#member, and user:u{i} in group:g{i} for each i in `members`. */
function chain(n: number, members: Iterable<number>): RelationTuple[] {
  const out: TupleKey[] = [];
  for (let i = 0; i + 1 < n; i++)
    out.push({ user: `group:g${i + 1}#member`, relation: "member", object: `group:g${i}` });
  for (const i of members) out.push({ user: `user:u${i}`, relation: "member", object: `group:g${i}` });
  return out.map(normalized);
}

/** Builds the graph (one check), waits for the index's rebuild (its timer), and returns the graph. */
async function settled(fast: WasmEvaluator, store: MemoryTupleStore) {
  const revision = await store.currentRevision();
  await fast.check(query("group:g0", "member", "user:u0"), revision);
  const graph = fast.graphIfCurrent("default", revision)!;
  const deadline = performance.now() + 20_000;
  while (graph.leopardPending && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(graph.leopardPending).toBe(false);
  return graph;
}

function expectReference(fast: WasmEvaluator, store: MemoryTupleStore, qs: CheckQuery[]): Promise<void> {
  return expectReferenceOf(fast, store, program, qs, MAX_DEPTH);
}

describe("Leopard index bounds", () => {
  it("rebuilds over a chain of 20,000 nested groups (no recursion per level) and answers as the reference", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const fast = new WasmEvaluator({ program, store, maxDepth: MAX_DEPTH });
    try {
      await store.write({ writes: chain(20_000, [0, 10, 24, 5_000, 19_999]), deletes: [] });
      const graph = await settled(fast, store);
      const e = fast.kernel.exports;
      const lp = graph.leopardPointer;
      const member = fast.compiled.relationIds.get("member")!;
      const g0 = fast.symbols.lookup("group:g0")!;
      expect(e.leopard_state(lp, fast.compiled.typeIds.get("group")!, member) & OVERSIZED).toBe(0);
      expect(e.leopard_distance(lp, member, g0, fast.symbols.lookup("user:u19999")!)).toBe(19_999);
      expect(e.leopard_height(lp, member, g0)).toBe(19_999);
      await expectReference(fast, store, [
        query("group:g0", "member", "user:u10"),
        query("group:g0", "member", "user:u24"),
        query("group:g0", "member", "user:u5000"),
        query("group:g19990", "member", "user:u19999"),
        query("group:g19999", "member", "user:u0"),
        query("group:g5000", "member", "user:u10"),
      ]);
      // A delete 3,000 groups down recomputes the groups above it, bottom-up, without recursion either.
      await store.write({
        writes: [],
        deletes: [normalized({ user: "group:g3001#member", relation: "member", object: "group:g3000" })],
      });
      expect(graph.leopardPending).toBe(false);
      await expectReference(fast, store, [
        query("group:g2990", "member", "user:u19999"),
        query("group:g3001", "member", "user:u3005"),
        query("group:g0", "member", "user:u10"),
      ]);
      // Not a member of g0 any more (ABSENT).
      expect(e.leopard_distance(lp, member, g0, fast.symbols.lookup("user:u19999")!) >>> 0).toBe(0xffffffff);
    } finally {
      fast.close();
      await store.close();
    }
  }, 60_000);

  it("maintains a deep chain written from the bottom up, leaving long walks to the rebuild", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const fast = new WasmEvaluator({ program, store, maxDepth: MAX_DEPTH });
    try {
      const n = 12_000;
      const links = chain(n, []);
      // The graph first (one member), then the links from the bottom up, a check after each write: each link is
      // maintained as it comes, its cycle check walking the chain already below it.
      await store.write({
        writes: [normalized({ user: "user:u11999", relation: "member", object: "group:g11999" })],
        deletes: [],
      });
      await fast.check(query("group:g0", "member", "user:u0"), await store.currentRevision());
      const qs = [
        query("group:g0", "member", "user:u11999"),
        query("group:g11990", "member", "user:u11999"),
        query("group:g11975", "member", "user:u11999"),
        query("group:g11974", "member", "user:u11999"),
      ];
      for (let end = links.length; end > 0; end -= 3_000) {
        await store.write({ writes: links.slice(Math.max(0, end - 3_000), end).reverse(), deletes: [] });
        await expectReference(fast, store, qs);
      }
      const graph = await settled(fast, store);
      await expectReference(fast, store, qs);
      // A delete under more groups than one delete recomputes: left to the rebuild, answers as the reference.
      await store.write({
        writes: [],
        deletes: [normalized({ user: "group:g11999#member", relation: "member", object: "group:g11998" })],
      });
      await expectReference(fast, store, [...qs, query("group:g11998", "member", "user:u11999")]);
      await settled(fast, store);
      expect(graph.leopardPending).toBe(false);
      await expectReference(fast, store, qs);
    } finally {
      fast.close();
      await store.close();
    }
  }, 60_000);

  it("gives a relation up once its closure passes the bound, holding none of it, and answers as the reference", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const fast = new WasmEvaluator({ program, store, maxDepth: MAX_DEPTH });
    try {
      // 1,600 groups with a member each: 1.28M distances, past the bound (2^20 at this size).
      const n = 1_600;
      await store.write({
        writes: chain(
          n,
          Array.from({ length: n }, (_, i) => i),
        ),
        deletes: [],
      });
      const graph = await settled(fast, store);
      const e = fast.kernel.exports;
      const lp = graph.leopardPointer;
      const member = fast.compiled.relationIds.get("member")!;
      expect(e.leopard_state(lp, fast.compiled.typeIds.get("group")!, member) & OVERSIZED).toBe(OVERSIZED);
      expect(e.leopard_entries(lp)).toBe(0);
      const qs = [
        query("group:g0", "member", "user:u5"),
        query("group:g0", "member", "user:u24"),
        query("group:g0", "member", "user:u30"),
        query("group:g1500", "member", "user:u1510"),
        query("group:g1500", "member", "user:u3"),
        query("group:g1599", "member", "user:u1599"),
      ];
      await expectReference(fast, store, qs);
      // Writes after it neither maintain nor rebuild the given-up relation.
      await store.write({
        writes: [normalized({ user: "user:late", relation: "member", object: "group:g1598" })],
        deletes: [],
      });
      await expectReference(fast, store, [...qs, query("group:g1590", "member", "user:late")]);
      expect(graph.leopardPending).toBe(false);
      expect(e.leopard_entries(lp)).toBe(0);
    } finally {
      fast.close();
      await store.close();
    }
  }, 60_000);
});
