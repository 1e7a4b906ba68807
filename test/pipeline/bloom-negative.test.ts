/**
 * The Bloom negative cache answers only denials that cannot be grants (the chain property test covers random
 * models); here, each rule and the filter's life cycle: seeding, extension by the feed, rebuilds, and the cases
 * where it must stay out (usersets of the same object, conditions, cross-tenant grants, missing history).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { CheckChain, type CheckChainOptions } from "../../src/pipeline/chain.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define editor: [user]
    define viewer: [user, user:*, group#member] or editor or viewer from parent
`;

const conditional = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, group#member with small]
condition small(x: int) {
  x < 5
}
`;

function bloomStats(chain: CheckChain) {
  return chain.stats().layers.find((l) => l.layer === "bloom-negative")!;
}

async function open(engine: Engine, options: Partial<CheckChainOptions> = {}): Promise<CheckChain> {
  return CheckChain.open({
    program: engine.program,
    store: engine.store,
    resultCache: false,
    ...options,
  });
}

describe("BloomNegativeResolver", () => {
  beforeAll(async () => {
    await ready();
  });

  it("denies subjects and objects without tuples, and nothing else", async () => {
    await using engine = await createEngine({ model });
    await engine.write({
      writes: [
        { user: "user:anne", relation: "member", object: "group:eng" },
        { user: "group:eng#member", relation: "viewer", object: "folder:f" },
        { user: "folder:f", relation: "parent", object: "doc:1" },
        { user: "user:bob", relation: "editor", object: "doc:2" },
      ],
    });
    await using chain = await open(engine);
    const cases = [
      ["user:anne", "viewer", "doc:1", true],
      ["user:bob", "viewer", "doc:2", true],
      ["user:nobody", "viewer", "doc:1", false], // subject rule
      ["user:anne", "viewer", "doc:9", false], // object rule
      ["user:anne", "viewer", "doc:2", false], // evaluated: both exist
      ["doc:9#editor", "viewer", "doc:9", true], // a userset of the same object: no tuple needed
      ["group:eng#member", "viewer", "doc:1", true],
    ] as const;
    for (const [user, relation, object, expected] of cases) {
      expect(await chain.check({ user, relation, object }), `${object}#${relation}@${user}`).toBe(expected);
      expect(await engine.check({ user, relation, object })).toBe(expected);
    }
    const stats = bloomStats(chain);
    expect(stats.enabled).toBe(true);
    expect(stats.extra).toMatchObject({ subjectDenials: 1, objectDenials: 1 });
    expect(stats.hits).toBe(2);
  });

  it("leaves recursive relations to the object rule (the reference may report resolution_too_complex)", async () => {
    const recursive = model.replace("define member: [user]", "define member: [user, group#member]");
    await using engine = await createEngine({
      model: recursive,
      maxResolutionDepth: 2,
    });
    await engine.write({
      writes: [
        { user: "group:a#member", relation: "member", object: "group:b" },
        { user: "group:b#member", relation: "member", object: "group:c" },
        { user: "group:c#member", relation: "member", object: "group:d" },
      ],
    });
    await using chain = await open(engine, { maxResolutionDepth: 2 });
    const reference = await chain
      .check({ user: "user:zed", relation: "member", object: "group:d" })
      .catch((e) => e.code);
    expect(reference).toBe("resolution_too_complex");
    expect(bloomStats(chain).extra?.subjectDenials).toBe(0);
    // The object rule still holds there.
    expect(await chain.check({ user: "user:zed", relation: "member", object: "group:zz" })).toBe(false);
    expect(bloomStats(chain).extra?.objectDenials).toBe(1);
  });

  it("a wildcard tuple keeps every subject of its type from being denied", async () => {
    await using engine = await createEngine({ model });
    await engine.write({ writes: [{ user: "user:*", relation: "viewer", object: "doc:1" }] });
    await using chain = await open(engine);
    expect(await chain.check({ user: "user:stranger", relation: "viewer", object: "doc:1" })).toBe(true);
    expect(bloomStats(chain).hits).toBe(0);
  });

  it("is extended by the change feed: a new grant is never denied once the feed has it, and bypassed before", async () => {
    await using engine = await createEngine({ model });
    await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] });
    await using chain = await open(engine);
    expect(await chain.check({ user: "user:carl", relation: "viewer", object: "doc:1" })).toBe(false);
    await engine.write({ writes: [{ user: "user:carl", relation: "viewer", object: "doc:1" }] });
    // Whether or not the feed caught up yet, the answer is right (a revision past the watermark bypasses).
    expect(await chain.check({ user: "user:carl", relation: "viewer", object: "doc:1" })).toBe(true);
    await chain.caughtUp();
    expect(await chain.check({ user: "user:carl", relation: "viewer", object: "doc:1" })).toBe(true);
  });

  it("rebuilds after deletes (and when full), then denies the deleted subjects again", async () => {
    await using engine = await createEngine({ model });
    await using chain = await open(engine, { bloom: { initialCapacity: 64, rebuildStaleRatio: 0.2 } });
    const users = Array.from({ length: 100 }, (_, i) => `user:u${i}`);
    await engine.write({ writes: users.map((user) => ({ user, relation: "viewer", object: "doc:1" })) });
    await chain.caughtUp();
    expect(await chain.check({ user: "user:u7", relation: "viewer", object: "doc:1" })).toBe(true);
    await engine.write({
      deletes: users.slice(1).map((user) => ({ user, relation: "viewer", object: "doc:1" })),
    });
    await chain.caughtUp();
    // The rebuild runs in the background; wait for it to land.
    for (let i = 0; i < 100 && Number(bloomStats(chain).extra?.rebuilds) < 2; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(Number(bloomStats(chain).extra?.rebuilds)).toBeGreaterThanOrEqual(2);
    for (const user of users) {
      expect(await chain.check({ user, relation: "viewer", object: "doc:1" })).toBe(user === "user:u0");
    }
    expect(Number(bloomStats(chain).extra?.subjectDenials)).toBeGreaterThan(50);
  });

  it("judges staleness by tuples deleted, not keys: tuples sharing a subject add one key each", async () => {
    await using engine = await createEngine({ model });
    await using chain = await open(engine, { bloom: {} });
    // 20k files under one folder: one new key a tuple (the shared subject is added once a batch), two per delete
    // under a count of keys; the default stale ratio (0.5) is a share of tuples deleted.
    const docs = Array.from({ length: 20_000 }, (_, i) => ({
      user: "folder:f",
      relation: "parent",
      object: `doc:${i}`,
    }));
    await engine.write({ writes: docs });
    await chain.caughtUp();
    const rebuildsAfterLoad = Number(bloomStats(chain).extra?.rebuilds);
    await engine.write({ deletes: docs.slice(0, 6_000) });
    await chain.caughtUp();
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
    expect(Number(bloomStats(chain).extra?.rebuilds)).toBe(rebuildsAfterLoad);
    await engine.write({ deletes: docs.slice(6_000, 12_000) });
    await chain.caughtUp();
    for (let i = 0; i < 200 && Number(bloomStats(chain).extra?.rebuilds) === rebuildsAfterLoad; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(Number(bloomStats(chain).extra?.rebuilds)).toBe(rebuildsAfterLoad + 1);
    // The rebuilt filter holds the 8k live files and is not outgrown at once (which would rebuild again).
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 5));
    expect(Number(bloomStats(chain).extra?.rebuilds)).toBe(rebuildsAfterLoad + 1);
    expect(await chain.check({ user: "user:x", relation: "viewer", object: "doc:19999" })).toBe(false);
    expect(await chain.check({ user: "user:x", relation: "viewer", object: "doc:absent" })).toBe(false);
    expect(Number(bloomStats(chain).extra?.objectDenials)).toBeGreaterThan(0);
  });

  it("an outgrown filter is rebuilt after deletes too (the rebuild's size is a whole number of keys)", async () => {
    await using engine = await createEngine({ model });
    // A small first filter, so that a few thousand tuples outgrow it.
    await using chain = await open(engine, { bloom: { initialCapacity: 1024 } });
    const docs = Array.from({ length: 3000 }, (_, i) => ({
      user: i < 100 ? "user:a" : `user:u${i}`,
      relation: "viewer",
      object: `doc:${i}`,
    }));
    await engine.write({ writes: docs.slice(0, 500) });
    await engine.write({ deletes: docs.slice(0, 3) });
    await chain.caughtUp();
    // Outgrown: the rebuild is sized for four times the keys estimated live after 3 deletes (not a whole number).
    await engine.write({ writes: docs.slice(500) });
    await chain.caughtUp();
    for (let i = 0; i < 200 && Number(bloomStats(chain).extra?.rebuilds) < 1; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(bloomStats(chain).extra?.note).toBeUndefined();
    expect(Number(bloomStats(chain).extra?.rebuilds)).toBeGreaterThanOrEqual(1);
    expect(Number(bloomStats(chain).extra?.capacity)).toBeGreaterThan(4000);
    expect(await chain.check({ user: "user:u2999", relation: "viewer", object: "doc:2999" })).toBe(true);
    expect(await chain.check({ user: "user:a", relation: "viewer", object: "doc:1" })).toBe(false);
  });

  it("does not apply the subject rule where a condition may be evaluated (the reference reports the error)", async () => {
    await using engine = await createEngine({ model: conditional });
    await engine.write({
      writes: [
        { user: "group:eng#member", relation: "viewer", object: "doc:1", condition: { name: "small" } },
      ],
    });
    await using chain = await open(engine);
    const request = { user: "user:nobody", relation: "viewer", object: "doc:1" };
    const viaEngine = await engine.check(request).catch((e) => e.code);
    expect(viaEngine).toBe("condition_missing_parameter");
    expect(await chain.check(request).catch((e) => e.code)).toBe(viaEngine);
    expect(await chain.check({ ...request, context: { x: 1 } })).toBe(false);
    expect(bloomStats(chain).extra?.subjectDenials).toBe(0);
  });

  it("never denies across tenants where a cross-tenant grant exists, and bypasses contextual tuples", async () => {
    const nexus = {
      model: `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
`,
    };
    await using engine = await createEngine({ ...nexus });
    await using chain = await open(engine);
    const contextual = {
      user: "user:zed",
      relation: "viewer",
      object: "doc:5",
      contextualTuples: [{ user: "user:zed", relation: "viewer", object: "doc:5" }],
    };
    expect(await chain.check(contextual)).toBe(true);
    expect(Number(bloomStats(chain).extra?.bypassed)).toBeGreaterThan(0);
    // Tenants: a tuple in tenant "acme" keeps acme's subject and object alive, not another tenant's.
    await engine.write({
      tenant: "acme",
      writes: [{ user: "user:amy", relation: "viewer", object: "doc:1" }],
    });
    await chain.caughtUp();
    expect(await chain.check({ tenant: "acme", user: "user:amy", relation: "viewer", object: "doc:1" })).toBe(
      true,
    );
    expect(
      await chain.check({ tenant: "globex", user: "user:amy", relation: "viewer", object: "doc:1" }),
    ).toBe(false);
  });

  it("stays off without history, and seeds from named tenants instead", async () => {
    const store = new MemoryTupleStore({ changelogMaxEntries: 2 });
    await using engine = await createEngine({ model, store });
    for (let i = 0; i < 5; i++) {
      await engine.write({ writes: [{ user: `user:u${i}`, relation: "viewer", object: "doc:1" }] });
    }
    {
      await using chain = await open(engine);
      const stats = bloomStats(chain);
      expect(stats.extra?.note).toMatch(/changelog/);
      expect(await chain.check({ user: "user:u0", relation: "viewer", object: "doc:1" })).toBe(true);
      expect(bloomStats(chain).hits).toBe(0);
    }
    {
      await using chain = await open(engine, { bloom: { tenants: ["default"] } });
      expect(bloomStats(chain).extra?.note).toBeUndefined();
      expect(await chain.check({ user: "user:u0", relation: "viewer", object: "doc:1" })).toBe(true);
      expect(await chain.check({ user: "user:u9", relation: "viewer", object: "doc:1" })).toBe(false);
      expect(bloomStats(chain).hits).toBe(1);
    }
    await store.close();
  });

  it("never denies a written tuple when consecutive tuples share an object or a subject across tenants", async () => {
    // Keys equal to the previous tuple's are left out of a batch: one that differs only in its tenant must not be.
    const flat = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
`;
    const tuple = (tenant: string, user: string, object: string): RelationTuple => {
      const r = normalizeTuple({ user, relation: "viewer", object }, tenant);
      if (!r.ok) throw new Error(r.problem);
      return r.value;
    };
    const tuples: RelationTuple[] = [];
    for (let i = 0; i < 300; i++) {
      // Runs of 4 tuples on one object, then 4 from one subject; the tenant switches inside runs.
      const tenant = i % 3 === 0 ? "acme" : "globex";
      const run = i >> 2;
      tuples.push(
        run % 2 === 0
          ? tuple(tenant, `user:u${i}`, `doc:d${run}`)
          : tuple(tenant, `user:s${run}`, `doc:e${i}`),
      );
    }
    for (const capacity of [65_536, 64]) {
      const store = new MemoryTupleStore();
      await using engine = await createEngine({ model: flat, store });
      // Half before the layer opens (replayed to it), half after in several writes (fed page by page and, at
      // capacity 64, rebuilt from snapshots).
      await store.write({ writes: tuples.slice(0, 150), deletes: [] });
      await using chain = await open(engine, { bloom: { initialCapacity: capacity } });
      for (let i = 150; i < tuples.length; i += 50) {
        await store.write({ writes: tuples.slice(i, i + 50), deletes: [] });
      }
      await chain.caughtUp();
      for (let i = 0; i < 200 && Number(bloomStats(chain).extra?.rebuilds) < (capacity === 64 ? 1 : 0); i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      for (const t of tuples) {
        const q = { tenant: t.tenant, user: t.user, relation: "viewer", object: t.object };
        expect(await chain.check(q), `${t.tenant}/${t.object}@${t.user}`).toBe(true);
      }
      const bulk = await chain.checkMany(
        tuples.map((t) => ({ tenant: t.tenant, user: t.user, relation: "viewer", object: t.object })),
      );
      expect(bulk.every((allowed) => allowed)).toBe(true);
      // The layer answered: an object without tuples is denied by it.
      expect(
        await chain.check({ tenant: "acme", user: "user:u0", relation: "viewer", object: "doc:none" }),
      ).toBe(false);
      expect(bloomStats(chain).hits).toBeGreaterThan(0);
      expect(bloomStats(chain).extra?.bypassed).toBe(0);
      if (capacity === 64) expect(Number(bloomStats(chain).extra?.rebuilds)).toBeGreaterThan(0);
    }
  });
});
