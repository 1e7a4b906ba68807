/**
 * The engine's check path is the cache chain by default (src/pipeline/chain.ts): every layer on (the Bloom layer
 * only over the reference evaluator: the WASM evaluator's interner answers its rules), switchable by option, counted in engine.stats(), and the default engine answers exactly as the plain reference under random
 * write sequences (check, checkBulk, listObjects, filter).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
`;

const layer = (engine: Engine, name: string) => engine.stats().chain!.layers.find((l) => l.layer === name)!;

async function seeded(options: Parameters<typeof createEngine>[0] | object = {}): Promise<Engine> {
  const engine = await createEngine({ model, ...options });
  await engine.write({
    writes: [
      { user: "user:anne", relation: "member", object: "group:eng" },
      { user: "group:eng#member", relation: "viewer", object: "folder:f" },
      { user: "folder:f", relation: "parent", object: "doc:1" },
      { user: "folder:f", relation: "parent", object: "doc:2" },
      { user: "user:bob", relation: "viewer", object: "doc:3" },
    ],
  });
  return engine;
}

describe("the engine's cache chain", () => {
  it("is on by default: repeated checks in a window hit the result cache, and stats count each layer", async () => {
    let now = 1_000_000;
    await using engine = await seeded({ clock: () => now });
    now += 6000;
    const request = { user: "user:anne", relation: "viewer", object: "doc:1" };
    expect(await engine.check(request)).toBe(true);
    expect(await engine.check(request)).toBe(true);
    expect(await engine.check({ ...request, object: "doc:99" })).toBe(false);
    const stats = engine.stats();
    expect(stats.evaluator).toBe("wasm");
    expect(stats.chain!.layers.map((l) => [l.layer, l.enabled])).toEqual([
      ["result-cache", true],
      ["bloom-negative", false],
      ["singleflight", true],
      ["cross-tenant", true],
      ["tiger", true],
      ["wasm-evaluator", true],
      ["evaluator", true],
    ]);
    expect(layer(engine, "result-cache")).toMatchObject({ requests: 3, hits: 1, misses: 2 });
    // Off by default over the WASM evaluator, saying why: doc:99 has no tuple, which the kernel answers at once.
    expect(layer(engine, "bloom-negative").extra?.note).toMatch(
      /WASM evaluator: its interner answers both rules/,
    );
    expect(layer(engine, "wasm-evaluator")).toMatchObject({ requests: 2, hits: 2 });
    expect(stats.wasm!.answered).toBe(2);
    // The kernel's memory: the parts it accounts for, and apart from them the buffer that holds them (its sum
    // with them, and a tuple count, was reported as memoryBytes before).
    const { memoryBytes, kernelBufferBytes } = layer(engine, "wasm-evaluator").extra as Record<
      string,
      number
    >;
    expect(memoryBytes).toBeGreaterThan(0);
    expect(kernelBufferBytes).toBeGreaterThan(memoryBytes!);
    expect(kernelBufferBytes! % 65536).toBe(0);
  });

  it("builds the Bloom layer by default over the reference evaluator, and over the WASM one when asked", async () => {
    for (const options of [
      { evaluator: "reference" },
      { cache: { bloom: true } },
      { cache: { bloom: {} } },
    ]) {
      await using engine = await seeded(options);
      expect(await engine.check({ user: "user:anne", relation: "viewer", object: "doc:99" })).toBe(false);
      expect(await engine.check({ user: "user:nobody", relation: "viewer", object: "doc:1" })).toBe(false);
      expect(await engine.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(true);
      const bloom = layer(engine, "bloom-negative");
      expect(bloom.enabled, JSON.stringify(options)).toBe(true);
      expect(bloom.extra).toMatchObject({ objectDenials: 1, subjectDenials: 1 });
    }
    await using off = await seeded({ evaluator: "reference", cache: { bloom: false } });
    expect(layer(off, "bloom-negative").enabled).toBe(false);
    expect(layer(off, "bloom-negative").extra?.note).toBeUndefined();
  });

  it("answers repeated plain checks from the cache before validation, and still rejects every bad request", async () => {
    let now = 1_000_000;
    await using engine = await seeded({ clock: () => now });
    now += 6001;
    const request = { user: "user:anne", relation: "viewer", object: "doc:1" };
    expect(await engine.check(request)).toBe(true);
    expect(await engine.check({ ...request, tenant: "default" })).toBe(true);
    expect(layer(engine, "result-cache").hits).toBe(1);
    const bad: [object, string][] = [
      [{ ...request, tenant: "" }, "invalid_argument"],
      [{ ...request, object: { toString: () => "doc:1" } }, "invalid_argument"],
      [{ ...request, relation: "nope" }, "relation_not_found"],
      [{ ...request, user: "anne" }, "invalid_argument"],
      [{ ...request, consistency: "sometimes" }, "invalid_argument"],
    ];
    for (const [req, code] of bad) {
      await expect(engine.check(req as never), JSON.stringify(req)).rejects.toMatchObject({ code });
    }
    // A bad consistency is rejected where its revision is chosen, after validation.
    expect(engine.stats().chain!.validate.rejected).toBe(bad.length - 1);
  });

  it("materialises Tiger bitmaps in the background: a listing never waits, later ones read the bitmap", async () => {
    await using engine = await seeded();
    const request = { user: "user:anne", relation: "viewer", objects: ["doc:3", "doc:2", "doc:1"] };
    for (let i = 0; i < 4; i++) expect(await engine.filter(request)).toEqual(["doc:2", "doc:1"]);
    for (let i = 0; i < 100 && Number(layer(engine, "tiger").extra?.materialised ?? 0) === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(Number(layer(engine, "tiger").extra?.materialised)).toBe(1);
    expect(await engine.filter(request)).toEqual(["doc:2", "doc:1"]);
    expect(await engine.check({ user: "user:anne", relation: "viewer", object: "doc:3" })).toBe(false);
    expect(layer(engine, "tiger").hits).toBeGreaterThan(0);
  });

  it("switches layers by option, and `cache: false` goes straight to the evaluator", async () => {
    await using partial = await seeded({ cache: { bloom: false, resultCache: false } });
    expect(layer(partial, "bloom-negative").enabled).toBe(false);
    expect(layer(partial, "result-cache").enabled).toBe(false);
    expect(layer(partial, "singleflight").enabled).toBe(true);
    expect(partial.stats().chain!.warming).toBeDefined();
    await using cold = await seeded({ cache: { warming: false } });
    expect(cold.stats().chain!.warming).toBeUndefined();
    await using plain = await seeded({ cache: false });
    expect(plain.stats().chain).toBeUndefined();
    expect(await plain.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(true);
    await using reference = await seeded({ evaluator: "reference" });
    expect(reference.stats().chain!.layers.some((l) => l.layer === "wasm-evaluator")).toBe(false);
  });

  it("rejects malformed cache options with invalid_argument", async () => {
    for (const cache of [true, 3, "on", [], { tigre: true }]) {
      await expect(createEngine({ model, cache: cache as never })).rejects.toMatchObject({
        code: "invalid_argument",
      });
    }
  });

  it("filter keeps input order; listObjects and checkBulk flow through the layers", async () => {
    await using engine = await seeded();
    const objects = ["doc:3", "doc:2", "doc:9", "doc:1"];
    expect(await engine.filter({ user: "user:anne", relation: "viewer", objects })).toEqual([
      "doc:2",
      "doc:1",
    ]);
    expect(await engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc" })).toEqual([
      "doc:1",
      "doc:2",
    ]);
    const before = layer(engine, "result-cache").requests;
    expect(
      await engine.checkBulk(objects.map((object) => ({ user: "user:anne", relation: "viewer", object }))),
    ).toEqual([false, true, false, true]);
    expect(layer(engine, "result-cache").requests).toBe(before + 4);
    await expect(
      engine.filter({ user: "user:anne", relation: "viewer", objects: ["doc:1", "folder:f"] }),
    ).rejects.toMatchObject({ code: "invalid_argument" });
  });

  it("sees its own revoke at once by default, though the grant's answer was cached (read-your-writes)", async () => {
    let now = 1_000_000;
    await using engine = await seeded({ clock: () => now });
    now += 1;
    const request = { user: "user:anne", relation: "viewer", object: "doc:1" };
    expect(await engine.check(request)).toBe(true);
    expect(await engine.check(request)).toBe(true);
    const { token } = await engine.write({
      deletes: [{ user: "user:anne", relation: "member", object: "group:eng" }],
    });
    expect(await engine.check(request)).toBe(false);
    expect(await engine.check({ ...request, consistency: { atLeastAsFresh: token } })).toBe(false);
    expect(await engine.check({ ...request, consistency: "fully_consistent" })).toBe(false);
    expect(
      await engine.filter({ user: "user:anne", relation: "viewer", objects: ["doc:1", "doc:2"] }),
    ).toEqual([]);
  });

  it("keeps the WASM evaluator answering under interleaved writes and reads (nothing routed as stale)", async () => {
    await using engine = await seeded();
    const questions = ["doc:1", "doc:2", "doc:3", "folder:f"].flatMap((object) =>
      ["user:anne", "user:bob"].map((user) => ({ user, relation: "viewer", object })),
    );
    for (let i = 0; i < 60; i++) {
      const grant = { user: `user:u${i % 7}`, relation: "viewer", object: `doc:${i % 5}` };
      if (i % 2 === 0) await engine.write({ writes: [grant], onDuplicate: "ignore" });
      else await engine.write({ deletes: [grant], onMissing: "ignore" });
      for (const q of questions) await engine.check(q);
      await engine.checkBulk(questions);
      await engine.check({ user: grant.user, relation: "viewer", object: grant.object });
    }
    const fast = engine.stats().wasm!;
    expect(fast.routed.stale_revision).toBe(0);
    expect(fast.answered).toBeGreaterThan(0);
    expect(Number(layer(engine, "result-cache").extra?.crossRevisionHits)).toBeGreaterThan(0);
  });

  it("leaves nothing running after close", async () => {
    const baseline = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length;
    const engine = await seeded();
    await engine.checkBulk([{ user: "user:anne", relation: "viewer", object: "doc:1" }]);
    await engine.caughtUp();
    await engine.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length).toBeLessThanOrEqual(
      baseline,
    );
  });

  it("answers as the plain reference on random models and write sequences (default engine)", async () => {
    await fc.assert(
      fc.asyncProperty(
        scenarioArb(),
        fc.array(
          fc.record({ toggle: fc.uniqueArray(fc.nat(200), { maxLength: 4 }), advance: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 5,
          },
        ),
        async ({ model: generated, tuples }, steps) => {
          let now = 1_000_000;
          const clock = () => now;
          await using engine = await createEngine({ model: generated.program, clock });
          // The oracle shares the store but not the engine's writes: it reads fully_consistent.
          await using oracle = await createEngine({
            model: generated.program,
            clock,
            store: engine.store,
            evaluator: "reference",
            cache: false,
          });
          const latest = { consistency: "fully_consistent" } as const;
          if (tuples.length > 0) await engine.write({ writes: tuples });
          const present = new Set(tuples.map((t) => JSON.stringify(t)));
          const subjects = subjectsOf(generated);
          for (const step of steps) {
            const writes: TupleKey[] = [];
            const deletes: TupleKey[] = [];
            for (const pick of new Set(step.toggle.map((p) => p % Math.max(1, generated.slots.length)))) {
              const slot = generated.slots[pick];
              if (slot === undefined) continue;
              const text = JSON.stringify(slot);
              if (present.delete(text))
                deletes.push({ user: slot.user, relation: slot.relation, object: slot.object });
              else {
                present.add(text);
                writes.push(slot);
              }
            }
            if (writes.length + deletes.length > 0) await engine.write({ writes, deletes });
            if (step.advance) now += 1500;
            for (const type of generated.types) {
              for (const relation of generated.program.types.get(type)!.relations.keys()) {
                const requests = IDS.flatMap((id) =>
                  subjects.map((user) => ({ user, relation, object: `${type}:${id}` })),
                );
                const expected = await Promise.all(
                  requests.map((r) => answerOf(() => oracle.check({ ...r, ...latest }))),
                );
                const actual = await Promise.all(requests.map((r) => answerOf(() => engine.check(r))));
                expect(actual).toEqual(expected);
                if (expected.every((a) => typeof a === "boolean")) {
                  expect(await engine.checkBulk(requests)).toEqual(expected);
                }
                for (const user of subjects) {
                  const list = await answerOf(() => engine.listObjects({ user, relation, type }));
                  const want = await answerOf(() => oracle.listObjects({ user, relation, type, ...latest }));
                  expect(list).toEqual(want);
                }
              }
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

async function answerOf<T>(run: () => Promise<T>): Promise<T | string> {
  try {
    return await run();
  } catch (error) {
    return isNexusError(error) ? `error:${error.code}` : `error:${String(error)}`;
  }
}
