/**
 * The Tiger cache's own contract (the whole chain against the reference is in chain.test.ts): filter keeps input
 * order and rejects mixed types; bitmaps are materialised on demand, evicted and disposed, serialisable, and
 * their memory is reported; questions it cannot answer exactly pass through; a change re-checks only the objects
 * it can reach (incremental maintenance), falling back to re-materialisation when that set is too broad or
 * unknown; and, as a property over random models and write sequences (expiring tuples, older revisions, tight
 * re-check budgets), every answer equals the reference evaluator's at the same revision and instant.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TupleDepthBound } from "../../src/changes/depth.js";
import { ChangeFeed } from "../../src/changes/feed.js";
import { influenceOf } from "../../src/changes/influence.js";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { CheckChain } from "../../src/pipeline/chain.js";
import { ReferenceResolver } from "../../src/pipeline/reference.js";
import { Members, type TigerOptions, TigerResolver } from "../../src/pipeline/tiger/index.js";
import type { BatchOutcome, ResolvedCheck } from "../../src/pipeline/types.js";
import { parseSubject, type TupleKey } from "../../src/tuples/tuple.js";
import { type GeneratedModel, IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";

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
  const engine = await createEngine({ model });
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
      tiger: { materializeAfter: 1 },
    });
    await expect(
      chain.filter({ user: "user:anne", relation: "viewer", objects: ["folder:a", "doc:1"] }),
    ).rejects.toMatchObject({ code: "invalid_argument" });
    // (Tiger validates only objects it has no id for, so the folder bitmap may exist by now.)
    const folderBitmaps = Number(tigerStats(chain).extra?.bitmaps);
    await expect(
      chain.filter({ user: "user:anne", relation: "nope", objects: ["folder:a"] }),
    ).rejects.toMatchObject({ code: "relation_not_found" });
    expect(await chain.filter({ user: "user:anne", relation: "viewer", objects: [] })).toEqual([]);
    // doc#viewer may evaluate a condition: answered by the chain, not from a bitmap.
    await engine.write({ writes: [{ user: "folder:a", relation: "parent", object: "doc:1" }] });
    expect(
      await chain.filter({ user: "user:anne", relation: "viewer", objects: ["doc:1", "doc:2"] }),
    ).toEqual(["doc:1"]);
    expect(tigerStats(chain).extra?.bitmaps).toBe(folderBitmaps);
  });

  it("evicts beyond maxBitmaps, serialises and restores, and disposes everything on close", async () => {
    await using engine = await loaded();
    const chain = await CheckChain.open({
      program: engine.program,
      store: engine.store,
      tiger: { materializeAfter: 1, maxBitmaps: 2 },
      resultCache: false,
    });
    await chain.caughtUp(); // Tiger answers where the depth bound covers the revision
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
    const { TigerResolver } = await import("../../src/pipeline/tiger/index.js");
    const { ReferenceResolver } = await import("../../src/pipeline/reference.js");
    const { influenceOf } = await import("../../src/changes/influence.js");
    // The tree is 3 folders deep, far from the depth limit: the guard may say so outright.
    const context = {
      program: engine.program,
      store: engine.store,
      influence: influenceOf(engine.program),
      depthGuard: () => true,
    };
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

/** A resolved question, as the chain hands it to the layer. */
function resolved(
  revision: number,
  now: number,
  q: { user: string; relation: string; object: string; tenant?: string },
): ResolvedCheck {
  const subject = parseSubject(q.user)!;
  const tenant = q.tenant ?? "default";
  return {
    tenant,
    subjectTenant: tenant,
    object: q.object,
    objectType: q.object.slice(0, q.object.indexOf(":")),
    relation: q.relation,
    subject,
    user: q.user,
    revision,
    now,
    context: undefined,
    contextualTuples: [],
    key: `${tenant}\u0000${tenant}\u0000${q.object}\u0000${q.relation}\u0000${q.user}\u0000`,
  };
}

/** A Tiger layer over the reference evaluator, following its own change feed. */
async function tigerOver(engine: Engine, options: TigerOptions = {}) {
  const context = { program: engine.program, store: engine.store, influence: influenceOf(engine.program) };
  const feed = await ChangeFeed.open(engine.store);
  // Recursive relations: Tiger may deny only where the tuples hold no chain as long as the depth limit.
  const depth = await TupleDepthBound.open(engine.store, feed);
  const tiger = await TigerResolver.open(
    new ReferenceResolver({ ...context, maxResolutionDepth: 200 }),
    { ...context, maxResolutionDepth: 200, depthGuard: (c) => depth.safeBelow(200, c.revision) },
    options,
  );
  const unsubscribe = feed.subscribe(tiger);
  tiger.follow(feed);
  return {
    tiger,
    feed,
    extra: () => tiger.stats()[0]!.extra!,
    async [Symbol.asyncDispose]() {
      unsubscribe();
      await depth.close();
      await feed.close();
      await tiger.close();
    },
  };
}

/** Filters `objects` for anne's folder#viewer through the layer at the current revision, checked against the engine. */
function asker(
  engine: Awaited<ReturnType<typeof loaded>>,
  t: Awaited<ReturnType<typeof tigerOver>>,
  objects: readonly string[],
): () => Promise<boolean[]> {
  return async () => {
    const revision = await engine.store.currentRevision();
    await t.feed.caughtUp(revision);
    const check = resolved(revision, Date.now(), {
      user: "user:anne",
      relation: "viewer",
      object: objects[0]!,
    });
    const fromTiger = await t.tiger.filter(check, objects);
    const expected: boolean[] = [];
    for (const object of objects) {
      expected.push(await engine.check({ user: "user:anne", relation: "viewer", object }));
    }
    expect(fromTiger).toEqual(expected);
    return fromTiger!;
  };
}

/** How many of folder:f0..f299 anne may view at `revision`, filtered through the layer. */
function annesFolders(t: Awaited<ReturnType<typeof tigerOver>>): (revision: number) => Promise<number> {
  const objects = Array.from({ length: 300 }, (_, i) => `folder:f${i}`);
  return async (revision) => {
    const check = resolved(revision, Date.now(), {
      user: "user:anne",
      relation: "viewer",
      object: objects[0]!,
    });
    return (await t.tiger.filter(check, objects))!.filter(Boolean).length;
  };
}

describe("TigerResolver, incremental maintenance", () => {
  it("re-checks only the objects a change reaches, and re-materialises when that set is too broad", async () => {
    await using engine = await loaded();
    await using t = await tigerOver(engine, { materializeAfter: 1, maxIncrementalRechecks: 16 });
    const ask = asker(
      engine,
      t,
      Array.from({ length: 300 }, (_, i) => `folder:f${i}`).concat(["folder:new"]),
    );
    expect((await ask()).filter(Boolean)).toHaveLength(150);
    expect(t.extra()).toMatchObject({ materialised: 1, incrementalUpdates: 0 });

    // A grant on one odd folder: one object re-checked, one bit set.
    await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "folder:f1" }] });
    expect((await ask())[1]).toBe(true);
    expect(t.extra()).toMatchObject({ materialised: 1, incrementalUpdates: 1, rechecked: 1, bitsChanged: 1 });

    // Moving a leaf folder out of the tree, and a new folder into it (a new object: interned on the way).
    await engine.write({
      deletes: [{ user: "folder:a", relation: "parent", object: "folder:f2" }],
      writes: [{ user: "folder:a", relation: "parent", object: "folder:new" }],
    });
    const after = await ask();
    expect(after[2]).toBe(false);
    expect(after[300]).toBe(true);
    expect(t.extra()).toMatchObject({ materialised: 1, incrementalUpdates: 2, rechecked: 3, bitsChanged: 3 });

    // A change that does not reach folder#viewer moves the bitmap forward without re-checking anything.
    await engine.write({ writes: [{ user: "user:zed", relation: "member", object: "group:other" }] });
    await ask();
    expect(t.extra()).toMatchObject({ materialised: 1, incrementalUpdates: 3, rechecked: 3 });

    // Revoking the membership reaches every folder under the root: more than 16, so it re-materialises.
    await engine.write({ deletes: [{ user: "user:anne", relation: "member", object: "group:eng" }] });
    expect((await ask()).filter(Boolean)).toEqual([true]); // f1, granted directly
    expect(t.extra()).toMatchObject({ materialised: 2, rebuilds: 1, "fallback.tooBroad": 1 });
  });

  it("keeps no change while it holds no bitmap, and still brings a bitmap made later forward", async () => {
    await using engine = await loaded();
    await using t = await tigerOver(engine, { materializeAfter: 1 });
    const ask = asker(
      engine,
      t,
      Array.from({ length: 20 }, (_, i) => `folder:f${i}`),
    );
    // No bitmap yet: the writes' changes are marked but not logged.
    for (let i = 0; i < 3; i++) {
      await engine.write({ writes: [{ user: `user:u${i}`, relation: "member", object: "group:other" }] });
    }
    await t.feed.caughtUp(await engine.store.currentRevision());
    expect(t.extra()).toMatchObject({ bitmaps: 0, loggedChanges: 0 });
    await ask();
    expect(t.extra()).toMatchObject({ materialised: 1, incrementalUpdates: 0 });
    // Now one is held: the next write is logged and the bitmap is brought forward, not made again.
    await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "folder:f1" }] });
    expect((await ask())[1]).toBe(true);
    expect(t.extra()).toMatchObject({ materialised: 1, incrementalUpdates: 1, rechecked: 1, bitsChanged: 1 });
    expect(Number(t.extra().loggedChanges)).toBeGreaterThan(0);
  });

  // Each write comes while no bitmap is held: the layer marks it, and does not log it. A bitmap is then made at the
  // revision before it and asked at the revision after.
  it.each([
    {
      // A grant opening every folder under folder:b: the bitmap made at r0 cannot be brought forward over a change
      // the log did not keep, so it is made again (brought forward over the empty log it would still say 150).
      name: "never brings a bitmap forward across changes it did not keep",
      write: { user: "user:anne", relation: "viewer", object: "folder:b" },
      allowedAfter: 300,
      materialised: 2,
    },
    {
      // A write no folder#viewer answer reads: the bitmap made at r0 answers r1 as it is.
      name: "reuses a bitmap across changes it did not keep when none touched what it reads",
      write: { user: "user:anne", relation: "owner", object: "doc:x" },
      allowedAfter: 150,
      materialised: 1,
    },
  ])("$name", async ({ write, allowedAfter, materialised }) => {
    await using engine = await loaded();
    await using t = await tigerOver(engine, { materializeAfter: 1 });
    const allowedAt = annesFolders(t);
    const r0 = await engine.store.currentRevision();
    await engine.write({ writes: [write] });
    const r1 = await engine.store.currentRevision();
    await t.feed.caughtUp(r1);
    expect(t.extra()).toMatchObject({ bitmaps: 0, loggedChanges: 0 });
    expect(await allowedAt(r0)).toBe(150);
    expect(await allowedAt(r1)).toBe(allowedAfter);
    expect(t.extra()).toMatchObject({ materialised, incrementalUpdates: 0 });
  });

  it("falls back when the changes in between are unknown, and never replaces a newer bitmap", async () => {
    await using engine = await loaded();
    // The tree is 3 folders deep, far from the depth limit: the guard may say so outright.
    const context = {
      program: engine.program,
      store: engine.store,
      influence: influenceOf(engine.program),
      depthGuard: () => true,
    };
    const tiger = await TigerResolver.open(new ReferenceResolver(context), context, { materializeAfter: 1 });
    const extra = () => tiger.stats()[0]!.extra!;
    // What a feed would know, driven by hand so the test decides when changes are delivered.
    const r1 = await engine.store.currentRevision();
    const knowledge = { watermark: r1, complete: r1 };
    tiger.follow(knowledge);
    const q = { user: "user:anne", relation: "viewer", object: "folder:f0" };
    expect((await tiger.resolve(resolved(r1, Date.now(), q))).allowed).toBe(true);
    await engine.write({ deletes: [{ user: "folder:root", relation: "parent", object: "folder:a" }] });
    const r2 = await engine.store.currentRevision();
    // r2 not delivered yet: the bitmap cannot be brought forward, it is re-materialised.
    expect((await tiger.resolve(resolved(r2, Date.now(), q))).allowed).toBe(false);
    expect(extra()).toMatchObject({ materialised: 2, rebuilds: 1, "fallback.unknownChanges": 1 });
    tiger.onChanges(await engine.store.changesAfter(r1, 100));
    knowledge.watermark = r2;
    // A question at the older revision passes through (the reference answers it) and keeps the newer bitmap.
    expect((await tiger.resolve(resolved(r1, Date.now(), q))).allowed).toBe(true);
    expect(extra()).toMatchObject({ materialised: 2 });
    expect(tiger.stats()[0]!.misses).toBe(1);
    await tiger.close();
    expect(extra()).toMatchObject({ liveBitmaps: 0 });
  });

  it("filterObjects returns the allowed objects and validates only objects without an id", async () => {
    await using engine = await loaded();
    await using t = await tigerOver(engine, { materializeAfter: 1 });
    const revision = await engine.store.currentRevision();
    const check = resolved(revision, Date.now(), {
      user: "user:anne",
      relation: "viewer",
      object: "folder:f0",
    });
    const validated: number[] = [];
    const validate = (object: unknown, index: number) => {
      validated.push(index);
      if (typeof object !== "string") throw new Error(`bad objects[${index}]`);
    };
    expect(
      await t.tiger.filterObjects(check, ["folder:f1", "folder:f0", "folder:x", "folder:f2"], validate),
    ).toEqual(["folder:f0", "folder:f2"]);
    // f1 and x have no id (no bitmap ever held them): only they are validated.
    expect(validated).toEqual([0, 2]);
    await expect(t.tiger.filterObjects(check, ["folder:f0", 7], validate)).rejects.toThrow("bad objects[1]");
  });
});

describe("Members (the JS-side copy of a bitmap)", () => {
  it("equals a Set under any sequence of adds and deletes, as a bitset and as a hash set", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat(5000), { maxLength: 60 }),
        fc.integer({ min: 0, max: 1 << 20 }),
        fc.array(fc.tuple(fc.boolean(), fc.nat(6000)), { maxLength: 300 }),
        (initial, universe, ops) => {
          const sorted = Uint32Array.from(initial).sort();
          const members = Members.of(sorted, universe);
          const expected = new Set(initial);
          for (const [add, id] of ops) {
            if (add) {
              members.add(id);
              expected.add(id);
            } else {
              members.delete(id);
              expected.delete(id);
            }
            if (members.has(id) !== expected.has(id))
              expect(members.has(id), `id ${id}`).toBe(expected.has(id));
          }
          const wrong: number[] = [];
          for (let id = 0; id <= 6000; id++) if (members.has(id) !== expected.has(id)) wrong.push(id);
          expect(wrong).toEqual([]);
          expect(members.bytes).toBeGreaterThan(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** Activity over every run, so the property shows the incremental path and the fallbacks really ran. */
const activity = { incremental: 0, rechecked: 0, bitsChanged: 0, rebuilds: 0, tooBroad: 0, answered: 0 };

const stepArb = fc.record({
  toggle: fc.uniqueArray(fc.nat(200), { minLength: 1, maxLength: 4 }),
  /** Written tuples expire this many ms later (none when null). */
  expireInMs: fc.option(fc.integer({ min: 1, max: 3000 }), { nil: undefined }),
  advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2500 })),
  /** Also ask at the previous step's revision. */
  older: fc.boolean(),
  batch: fc.boolean(),
});

describe("TigerResolver equals the reference", () => {
  it("after any write sequence, at the same revision and instant (incremental updates and fallbacks)", async () => {
    await fc.assert(
      fc.asyncProperty(
        scenarioArb({ conditions: false }),
        fc.array(stepArb, { minLength: 2, maxLength: 7 }),
        fc.record({
          maxIncrementalRechecks: fc.constantFrom(1, 3, 256),
          materializeAfter: fc.constantFrom(1, 2),
        }),
        async ({ model, tuples }, steps, options) => {
          let time = 1_000_000;
          await using engine = await createEngine({
            model: model.program,
            clock: () => time,
            cache: false,
            maxResolutionDepth: 200,
          });
          if (tuples.length > 0) await engine.write({ writes: tuples });
          await using t = await tigerOver(engine, options);
          const oracle = new ReferenceResolver({
            program: model.program,
            store: engine.store,
            maxResolutionDepth: 200,
          });
          const groups = groupsOf(model);
          let previous = await engine.store.currentRevision();
          for (const step of steps) {
            await toggle(
              engine,
              model,
              step.toggle,
              step.expireInMs === undefined ? undefined : time + step.expireInMs,
            );
            time += step.advanceMs;
            const revision = await engine.store.currentRevision();
            await t.feed.caughtUp(revision);
            for (const at of step.older ? [revision, previous] : [revision]) {
              for (const group of groups) {
                const checks = group.objects.map((object) => resolved(at, time, { ...group, object }));
                const expected = await oracle.resolveMany(checks);
                if (expected.some((e) => e instanceof Error)) continue;
                const allowed = expected.map((e) => (e as { allowed: boolean }).allowed);
                const label = `${group.relation}@${group.user} at ${at} (now ${time})`;
                const filtered = await t.tiger.filter(checks[0]!, group.objects);
                if (filtered !== undefined) {
                  expect(filtered, `filter ${label}`).toEqual(allowed);
                  activity.answered++;
                }
                const answers: BatchOutcome[] = step.batch
                  ? await t.tiger.resolveMany(checks)
                  : await Promise.all(checks.map((c) => t.tiger.resolve(c)));
                expect(
                  answers.map((a) => (a instanceof Error ? a.message : a.allowed)),
                  `check ${label}`,
                ).toEqual(allowed);
              }
            }
            previous = revision;
          }
          const extra = t.extra();
          activity.incremental += Number(extra.incrementalUpdates);
          activity.rechecked += Number(extra.rechecked);
          activity.bitsChanged += Number(extra.bitsChanged);
          activity.rebuilds += Number(extra.rebuilds);
          activity.tooBroad += Number(extra["fallback.tooBroad"]);
          expect(extra.liveBitmaps).toBe(extra.bitmaps);
        },
      ),
      { numRuns: Number(process.env.TIGER_PROPERTY_RUNS ?? 60) },
    );
    if (process.env.TIGER_PROPERTY_RUNS !== undefined) console.log(activity);
    expect(activity.answered).toBeGreaterThan(0);
    expect(activity.incremental).toBeGreaterThan(0);
    expect(activity.rechecked).toBeGreaterThan(0);
    expect(activity.bitsChanged).toBeGreaterThan(0);
    expect(activity.rebuilds).toBeGreaterThan(0);
    expect(activity.tooBroad).toBeGreaterThan(0);
    // The point of incremental maintenance: most stale bitmaps are brought forward, not rebuilt.
    expect(activity.incremental).toBeGreaterThan(activity.rebuilds);
  }, 120_000);
});

/** One filter question per (subject, relation, type): every object id the model uses, plus one never written. */
function groupsOf(model: GeneratedModel): { user: string; relation: string; objects: string[] }[] {
  const out: { user: string; relation: string; objects: string[] }[] = [];
  for (const type of model.types) {
    for (const relation of model.program.types.get(type)!.relations.keys()) {
      for (const user of subjectsOf(model)) {
        out.push({ user, relation, objects: [...IDS.map((id) => `${type}:${id}`), `${type}:zz`] });
      }
    }
  }
  return out;
}

/** Writes the picked slots that do not count now (expiring at `expiresAt` when given), deletes the others. */
async function toggle(
  engine: Engine,
  model: GeneratedModel,
  picks: readonly number[],
  expiresAt: number | undefined,
): Promise<void> {
  if (model.slots.length === 0) return;
  const writes: TupleKey[] = [];
  const deletes: TupleKey[] = [];
  const seen = new Set<string>();
  const live = new Set((await engine.read({})).map((t) => `${t.object}#${t.relation}@${t.user}`));
  for (const pick of picks) {
    const slot = model.slots[pick % model.slots.length]!;
    const identity = `${slot.object}#${slot.relation}@${slot.user}`;
    if (seen.has(identity)) continue;
    seen.add(identity);
    if (live.has(identity)) deletes.push({ object: slot.object, relation: slot.relation, user: slot.user });
    else writes.push(expiresAt === undefined ? slot : { ...slot, expiresAt: new Date(expiresAt) });
  }
  // A tuple may still be stored after it expired: delete what is written first (its own revision), then write.
  await engine.write({
    deletes: [...deletes, ...writes.map(({ object, relation, user }) => ({ object, relation, user }))],
    onMissing: "ignore",
  });
  if (writes.length > 0) await engine.write({ writes });
}
