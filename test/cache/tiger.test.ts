/**
 * The Tiger cache's own contract (its answers against the reference are in chain.test.ts): filter keeps input
 * order and rejects mixed types; bitmaps are materialised on demand, evicted and disposed, serialisable, and
 * their memory is reported; questions it cannot answer exactly pass through.
 */
import { describe, expect, it } from "vitest";
import { CheckChain } from "../../src/cache/chain.js";
import { createEngine, type Engine } from "../../src/engine.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type doc
  relations
    define parent: [folder]
    define viewer: [user, group#member with small] or viewer from parent
    define owner: [user]
condition small(x: int) {
  x < 5
}
`;

async function loaded(): Promise<Engine> {
  const engine = await createEngine({ model, quantizationWindowMs: 0 });
  const writes = [
    { user: "user:anne", relation: "member", object: "group:eng" },
    { user: "group:eng#member", relation: "viewer", object: "folder:root" },
    { user: "folder:root", relation: "parent", object: "folder:a" },
  ];
  for (let i = 0; i < 300; i++) {
    writes.push({ user: i % 2 === 0 ? "folder:a" : "folder:b", relation: "parent", object: `folder:f${i}` });
  }
  await engine.write({ writes });
  return engine;
}

const tigerStats = (chain: CheckChain) => chain.stats().layers.find((l) => l.layer === "tiger")!;

describe("TigerResolver", () => {
  it("filter answers from one bitmap, in input order, exactly as check", async () => {
    await using engine = await loaded();
    await using chain = await CheckChain.open({
      program: engine.program,
      store: engine.store,
      quantizationWindowMs: 0,
      tiger: { materializeAfter: 1 },
      resultCache: false,
    });
    const objects = Array.from({ length: 300 }, (_, i) => `folder:f${299 - i}`);
    const allowed = await chain.filter({ user: "user:anne", relation: "viewer", objects });
    const expected: string[] = [];
    for (const object of objects) {
      if (await engine.check({ user: "user:anne", relation: "viewer", object })) expected.push(object);
    }
    expect(allowed).toEqual(expected);
    expect(allowed).toHaveLength(150);
    const stats = tigerStats(chain);
    expect(stats.extra).toMatchObject({ bitmaps: 1, materialised: 1 });
    expect(Number(stats.extra?.memoryBytes)).toBeGreaterThan(0);
    // Single checks hit the same bitmap.
    expect(await chain.check({ user: "user:anne", relation: "viewer", object: "folder:f2" })).toBe(true);
    expect(await chain.check({ user: "user:anne", relation: "viewer", object: "folder:f3" })).toBe(false);
    expect(tigerStats(chain).extra?.materialised).toBe(1);
  });

  it("follows writes: a revoke re-materialises the bitmap, never answers from the stale one", async () => {
    await using engine = await loaded();
    await using chain = await CheckChain.open({
      program: engine.program,
      store: engine.store,
      quantizationWindowMs: 0,
      tiger: { materializeAfter: 1 },
      resultCache: false,
    });
    const objects = ["folder:f0", "folder:f1", "folder:f2"];
    expect(await chain.filter({ user: "user:anne", relation: "viewer", objects })).toEqual([
      "folder:f0",
      "folder:f2",
    ]);
    await engine.write({ deletes: [{ user: "user:anne", relation: "member", object: "group:eng" }] });
    expect(await chain.filter({ user: "user:anne", relation: "viewer", objects })).toEqual([]);
    await chain.caughtUp();
    expect(await chain.filter({ user: "user:anne", relation: "viewer", objects })).toEqual([]);
    expect(Number(tigerStats(chain).invalidations)).toBeGreaterThan(0);
  });

  it("rejects objects of mixed types, and passes conditional relations through", async () => {
    await using engine = await loaded();
    await using chain = await CheckChain.open({
      program: engine.program,
      store: engine.store,
      quantizationWindowMs: 0,
      tiger: { materializeAfter: 1 },
    });
    await expect(
      chain.filter({ user: "user:anne", relation: "viewer", objects: ["folder:a", "doc:1"] }),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(
      chain.filter({ user: "user:anne", relation: "nope", objects: ["folder:a"] }),
    ).rejects.toMatchObject({ code: "relation_not_found" });
    expect(await chain.filter({ user: "user:anne", relation: "viewer", objects: [] })).toEqual([]);
    // doc#viewer may evaluate a condition: answered by the chain, not from a bitmap.
    await engine.write({ writes: [{ user: "folder:a", relation: "parent", object: "doc:1" }] });
    expect(
      await chain.filter({ user: "user:anne", relation: "viewer", objects: ["doc:1", "doc:2"] }),
    ).toEqual(["doc:1"]);
    expect(tigerStats(chain).extra?.bitmaps).toBe(0);
  });

  it("evicts beyond maxBitmaps, serialises and restores, and disposes everything on close", async () => {
    await using engine = await loaded();
    const chain = await CheckChain.open({
      program: engine.program,
      store: engine.store,
      quantizationWindowMs: 0,
      tiger: { materializeAfter: 1, maxBitmaps: 2 },
      resultCache: false,
    });
    for (const user of ["user:anne", "user:bob", "user:carl"]) {
      await chain.filter({ user, relation: "viewer", objects: ["folder:f0"] });
    }
    expect(tigerStats(chain).extra).toMatchObject({
      bitmaps: 2,
      evicted: 1,
      materialised: 3,
      liveBitmaps: 2,
    });
    await chain.close();
    expect(tigerStats(chain).extra).toMatchObject({ memoryBytes: 0, liveBitmaps: 0 });

    // Serialise one layer's bitmaps and restore them into another over the same store.
    const { TigerResolver } = await import("../../src/cache/tiger.js");
    const { ReferenceResolver } = await import("../../src/cache/reference.js");
    const { influenceOf } = await import("../../src/watch/influence.js");
    const context = { program: engine.program, store: engine.store, influence: influenceOf(engine.program) };
    const a = await TigerResolver.open(new ReferenceResolver(context), context, { materializeAfter: 1 });
    const b = await TigerResolver.open(new ReferenceResolver(context), context, { materializeAfter: 1 });
    const revision = await engine.store.currentRevision();
    const question = (object: string) => ({
      tenant: "default",
      subjectTenant: "default",
      object,
      objectType: "folder",
      relation: "viewer",
      subject: { kind: "object" as const, type: "user", id: "anne" },
      user: "user:anne",
      revision,
      now: Date.now(),
      context: undefined,
      contextualTuples: [],
      key: `k${object}`,
    });
    expect((await a.resolve(question("folder:f0"))).allowed).toBe(true);
    b.load(a.serialize());
    expect(b.stats()[0]!.extra).toMatchObject({ bitmaps: 1 });
    const objects = Array.from({ length: 10 }, (_, i) => `folder:f${i}`);
    expect(await b.filter(question("folder:f0"), objects)).toEqual(
      await a.filter(question("folder:f0"), objects),
    );
    expect(b.stats()[0]!.extra?.materialised).toBe(0);
    expect(() => b.load(new Uint8Array([1, 2, 3, 4, 5]))).toThrow(
      expect.objectContaining({ code: "corrupt" }),
    );
    expect(b.stats()[0]!.extra?.liveBitmaps).toBe(1);
    await a.close();
    await b.close();
    expect(a.stats()[0]!.extra?.liveBitmaps).toBe(0);
    expect(b.stats()[0]!.extra?.liveBitmaps).toBe(0);
  });
});
