/**
 * Subproblem facts kept across checks (programs without intersection and exclusion): a repeated check is
 * answered from them, a write invalidates exactly the nodes it can affect (facts elsewhere keep answering), and
 * the size cap forgets them all rather than grow without bound.
 */
import { describe, expect, it } from "vitest";
import { FastEvaluator } from "../../src/fast/evaluator.js";
import { compileModel } from "../../src/model/index.js";
import { MemoryTupleStore } from "../../src/store/memory.js";
import { normalizeTuple } from "../../src/store/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/store/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { query } from "./reference.js";

const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
`);

const normalized = (key: TupleKey): RelationTuple => {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};

describe("subproblem facts", () => {
  it("answer repeated checks, survive unrelated writes, and are invalidated by related ones", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new FastEvaluator({ program, store });
    await store.write({
      writes: [
        { user: "user:anne", relation: "member", object: "group:eng" },
        { user: "group:eng#member", relation: "viewer", object: "folder:a" },
        { user: "folder:a", relation: "parent", object: "folder:a1" },
        { user: "user:bob", relation: "viewer", object: "folder:b" },
        { user: "folder:b", relation: "parent", object: "folder:b1" },
      ].map(normalized),
      deletes: [],
    });
    let revision = await store.currentRevision();
    const a1 = query("folder:a1", "viewer", "user:anne");
    const b1 = query("folder:b1", "viewer", "user:bob");
    expect(await fast.check(a1, revision)).toBe(true);
    expect(await fast.check(b1, revision)).toBe(true);
    const resolved = fast.kernelStats.resolved;
    expect(await fast.check(a1, revision)).toBe(true);
    expect(await fast.check(b1, revision)).toBe(true);
    expect(fast.kernelStats.resolved).toBe(resolved); // both answered by their top-level fact
    // A write under folder:b's tree: folder:a's facts stay, folder:b's are invalidated.
    await store.write({
      writes: [],
      deletes: [normalized({ user: "user:bob", relation: "viewer", object: "folder:b" })],
    });
    revision = await store.currentRevision();
    const before = fast.kernelStats;
    expect(await fast.check(a1, revision)).toBe(true);
    expect(fast.kernelStats.resolved).toBe(before.resolved);
    expect(await fast.check(b1, revision)).toBe(false);
    expect(fast.kernelStats.resolved).toBeGreaterThan(before.resolved);
    // Group membership change: invalidates the group, the folder granting it and its descendants.
    await store.write({
      writes: [],
      deletes: [normalized({ user: "user:anne", relation: "member", object: "group:eng" })],
    });
    revision = await store.currentRevision();
    expect(await fast.check(a1, revision)).toBe(false);
    expect(fast.kernelStats.factsInvalidated).toBeGreaterThan(0);
  });

  it("forgets all facts at the size cap instead of growing", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new FastEvaluator({ program, store });
    fast.kernel.exports.eval_set_fact_limit(50);
    const writes: TupleKey[] = [];
    for (let i = 0; i < 40; i++)
      writes.push({ user: `user:u${i}`, relation: "viewer", object: `folder:f${i}` });
    await store.write({ writes: writes.map(normalized), deletes: [] });
    const revision = await store.currentRevision();
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 5; j++) {
        expect(await fast.check(query(`folder:f${j}`, "viewer", `user:u${i}`), revision)).toBe(i === j);
      }
    }
    expect(fast.kernelStats.factsHeld).toBeLessThanOrEqual(60);
  });
});
