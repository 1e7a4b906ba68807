/**
 * Object plans (assembly/evaluate/plan.ts): a node's rewrite with its object's structure read in, built at the second
 * question about the node and replayed for every later subject. They must give the reference's answers, be
 * rebuilt exactly when a write touches what they read (a subtracted relation included), survive unrelated writes,
 * stay within their cap, and never be freed while a check replays them.
 */
import { describe, expect, it } from "vitest";
import { model as peerModel } from "../../src/cli/demo/workload.js";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import type { CheckQuery } from "../../src/reference/check.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { NexusError } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { comparable, query, referenceAnswers } from "./reference.js";

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user, group#member]
    define viewer: [user, group#member] or owner or viewer from parent
    define reader: viewer but not blocked
`);

// The tuple-to-userset first: a plan still has ops to read after the recursion into its parent returns.
const parentFirst = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user, group#member]
    define granted: [user, group#member]
    define inherited: viewer from parent
    define viewer: inherited or granted or owner
    define reader: viewer but not blocked
`);

const normalized = (key: TupleKey): RelationTuple => {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};

async function expectReference(
  fast: WasmEvaluator,
  store: MemoryTupleStore,
  queries: readonly CheckQuery[],
  maxDepth = 25,
): Promise<void> {
  const revision = await store.currentRevision();
  const expected = await referenceAnswers(store, fast.compiled.program, revision, queries, maxDepth);
  for (const [i, q] of queries.entries()) {
    expect(comparable(await fast.check(q, revision)), `${q.object}#${q.relation}@${q.user}`).toEqual(
      expected[i],
    );
  }
}

const chain: TupleKey[] = [
  { user: "folder:a", relation: "parent", object: "folder:b" },
  { user: "folder:b", relation: "parent", object: "folder:c" },
  { user: "group:eng#member", relation: "viewer", object: "folder:a" },
  { user: "user:u1", relation: "member", object: "group:eng" },
  { user: "user:u2", relation: "owner", object: "folder:b" },
];

describe("object plans", () => {
  it("are built at the second question about a node and replayed for other subjects", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program, store });
    await store.write({ writes: chain.map(normalized), deletes: [] });
    const readers = ["user:u0", "user:u1", "user:u2", "user:u3"].map((u) => query("folder:c", "reader", u));
    await expectReference(fast, store, readers.slice(0, 1));
    expect(fast.kernelStats.plansBuilt).toBe(0); // asked once: only marked
    await expectReference(fast, store, readers.slice(1, 2));
    const built = fast.kernelStats.plansBuilt;
    expect(built).toBeGreaterThan(0);
    await expectReference(fast, store, readers.slice(2));
    expect(fast.kernelStats.plansBuilt).toBe(built);
    expect(fast.kernelStats.planHits).toBeGreaterThan(0);
  });

  it("are rebuilt after a write to what they read, a subtracted relation too, and kept across others", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program, store });
    await store.write({
      writes: [...chain, { user: "user:u1", relation: "owner", object: "folder:z" }].map(normalized),
      deletes: [],
    });
    const users = ["user:u0", "user:u1", "user:u2"];
    const queries = users.flatMap((u) => [query("folder:c", "reader", u), query("folder:b", "reader", u)]);
    for (let i = 0; i < 3; i++) await expectReference(fast, store, queries);
    // Unrelated: another folder's tuples. The plans of folder:b and folder:c keep answering.
    const before = fast.kernelStats;
    await store.write({
      writes: [normalized({ user: "user:u0", relation: "owner", object: "folder:y" })],
      deletes: [],
    });
    await expectReference(fast, store, queries);
    expect(fast.kernelStats.plansBuilt).toBe(before.plansBuilt);
    expect(fast.kernelStats.planHits).toBeGreaterThan(before.planHits);
    // folder:c's subtracted relation: its plan read `blocked` (absent); now u1 is blocked there.
    await store.write({
      writes: [normalized({ user: "user:u1", relation: "blocked", object: "folder:c" })],
      deletes: [],
    });
    await expectReference(fast, store, queries);
    const revision = await store.currentRevision();
    expect(await fast.check(query("folder:c", "reader", "user:u1"), revision)).toBe(false);
    expect(await fast.check(query("folder:b", "reader", "user:u1"), revision)).toBe(true);
    // A parent link removed: folder:c no longer inherits from folder:b.
    await store.write({ writes: [], deletes: [normalized(chain[1]!)] });
    await expectReference(fast, store, queries);
    expect(await fast.check(query("folder:c", "reader", "user:u2"), await store.currentRevision())).toBe(
      false,
    );
  });

  it("stay within a tiny cap while checks replace plans they are replaying", async () => {
    await ready();
    for (const model of [program, parentFirst]) {
      for (const planLimit of [4, 8, 16]) {
        const store = new MemoryTupleStore();
        await using fast = new WasmEvaluator({
          program: model,
          store,
          planLimit,
          factLimit: 0,
          maxDepth: 64,
        });
        // A chain of 12 folders: each check passes about 12 planned nodes through a small table, so plans are
        // built, evicted and rebuilt (in blocks the evicted ones freed) while the checks above them replay theirs.
        const grant = model === program ? "viewer" : "granted";
        const writes: TupleKey[] = [{ user: "group:eng#member", relation: grant, object: "folder:f0" }];
        for (let i = 1; i < 12; i++) {
          writes.push({ user: `folder:f${i - 1}`, relation: "parent", object: `folder:f${i}` });
          writes.push({ user: `user:o${i}`, relation: "owner", object: `folder:f${i}` });
        }
        for (let u = 0; u < 6; u++)
          writes.push({ user: `user:u${u}`, relation: "member", object: "group:eng" });
        writes.push({ user: "group:eng#member", relation: "blocked", object: "folder:f9" });
        await store.write({ writes: writes.map(normalized), deletes: [] });
        const queries: CheckQuery[] = [];
        for (let round = 0; round < 6; round++) {
          for (let u = 0; u < 8; u++) {
            const folder = `folder:f${11 - ((round + u) % 4)}`;
            queries.push(query(folder, "reader", `user:u${u}`), query(folder, "viewer", `user:o${u + 3}`));
          }
        }
        await expectReference(fast, store, queries, 64);
        const revision = await store.currentRevision();
        const batch = (await fast.checkMany(queries, revision)).map(comparable);
        expect(batch).toEqual(await referenceAnswers(store, model, revision, queries, 64));
        const stats = fast.kernelStats;
        if (planLimit >= 8) {
          expect(stats.plansBuilt).toBeGreaterThan(0);
          expect(stats.planHits).toBeGreaterThan(0);
        }
        expect(stats.plansHeld).toBeLessThanOrEqual(planLimit);
      }
    }
  });

  it("read long lists through the edge table, and fall back past their size limits", async () => {
    await ready();
    // A computed chain longer than the inlining limit, on the same object.
    const depth = 24;
    const relations = Array.from({ length: depth }, (_, i) =>
      i + 1 < depth ? `    define r${i}: r${i + 1} or owner` : `    define r${i}: [user] or owner`,
    );
    const deep = compileModel(`model
  schema 1.1
type user
type folder
  relations
    define parent: [folder]
    define owner: [user, user:*]
    define viewer: [user, user:*] or owner or viewer from parent
${relations.join("\n")}
`);
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program: deep, store });
    const writes: TupleKey[] = [];
    // Long edge lists (beyond the inline limit) on a plan's own node and on a computed leaf.
    for (let u = 0; u < 20; u++) {
      writes.push({ user: `user:v${u}`, relation: "viewer", object: "folder:big" });
      writes.push({ user: `user:o${u}`, relation: "owner", object: "folder:big" });
    }
    writes.push({ user: "user:*", relation: "owner", object: "folder:open" });
    // More parents than a plan can hold.
    for (let p = 0; p < 300; p++)
      writes.push({ user: `folder:p${p}`, relation: "parent", object: "folder:many" });
    writes.push({ user: "user:late", relation: "viewer", object: "folder:p299" });
    writes.push({ user: "user:end", relation: "r23", object: "folder:big" });
    await store.write({ writes: writes.map(normalized), deletes: [] });
    const queries: CheckQuery[] = [];
    for (const user of ["user:v3", "user:v19", "user:o7", "user:o19", "user:x", "user:late", "user:end"]) {
      for (const folder of ["folder:big", "folder:open", "folder:many"]) {
        for (const relation of ["viewer", "r0", "r10"]) queries.push(query(folder, relation, user));
      }
    }
    for (let i = 0; i < 3; i++) await expectReference(fast, store, queries);
    expect(fast.kernelStats.planHits).toBeGreaterThan(0);
  });

  it("can be turned off, and reject a bad limit", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program, store, planLimit: 0 });
    await store.write({ writes: chain.map(normalized), deletes: [] });
    for (let i = 0; i < 3; i++) await expectReference(fast, store, [query("folder:c", "reader", "user:u1")]);
    expect(fast.kernelStats.plansBuilt).toBe(0);
    expect(fast.kernelStats.plansHeld).toBe(0);
    for (const planLimit of [-1, 1.5, Number.NaN]) {
      expect(() => new WasmEvaluator({ program, store, planLimit })).toThrow(NexusError);
    }
  });

  it("are not kept for a rewrite reading two of its object's nodes, whose answers stay the reference's", async () => {
    await ready();
    // The peer workload's folders: `view` reads `viewer` and `parent` only, where a plan saves nothing.
    const twoReads = compileModel(peerModel);
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program: twoReads, store });
    await store.write({ writes: chain.slice(0, 4).map(normalized), deletes: [] });
    const views = ["user:u0", "user:u1", "user:u2", "user:u3"].map((u) => query("folder:c", "view", u));
    for (let round = 0; round < 3; round++) await expectReference(fast, store, views);
    expect(fast.kernelStats.plansBuilt).toBe(0);
    expect(fast.kernelStats.plansHeld).toBe(0);
    // The three-read `viewer` of the model above keeps its plans (the first test): the bound is per relation.
  });
});
