/**
 * The subject rule over the WASM evaluator (src/wasm-eval/evaluator.ts, handed its class test by
 * src/pipeline/wasm.ts): a question whose plain subject and its type's wildcard no tuple names is denied without
 * running the kernel, where the default engine no longer builds the Bloom layer. Held to the reference (an engine
 * with evaluator "reference" and no layers) on random models and tuples, with subjects and objects no tuple names,
 * two tenants (one subject known in the other tenant only), deletes (the interner keeps what was deleted), an
 * expiring tuple (flagged: its subject is not interned) and small depth limits (the reference may report
 * resolution_too_complex). Then by hand: a subject named only by a flagged tuple is never denied.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";

const TENANTS = ["default", "t2"] as const;
const HOUR = 3_600_000;

const seen = { compared: 0, denied: 0, errors: 0 };
afterAll(() => {
  console.log("unknown subjects: compared with the reference", seen);
  // The rule ran (it is not vacuous) and questions that end in an error were among those compared.
  expect(seen.denied).toBeGreaterThan(100);
  expect(seen.errors).toBeGreaterThan(0);
});

async function answerOf<T>(run: () => Promise<T>): Promise<T | string> {
  try {
    return await run();
  } catch (error) {
    return isNexusError(error) ? `error:${error.code}` : `error:${String(error)}`;
  }
}

describe("the subject rule over the WASM evaluator", () => {
  it("answers as the reference on random models, with unknown subjects and objects, tenants and depth limits", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(scenarioArb(), scenarioArb({ conditions: false })),
        fc.constantFrom(2, 3, 25),
        fc.boolean(),
        async ({ model: generated, tuples, extra }, maxResolutionDepth, expiring) => {
          await using engine = await createEngine({ model: generated.program, maxResolutionDepth });
          await using oracle = await createEngine({
            model: generated.program,
            store: engine.store,
            evaluator: "reference",
            cache: false,
            maxResolutionDepth,
          });
          const bloom = engine.stats().chain!.layers.find((l) => l.layer === "bloom-negative")!;
          expect(bloom.enabled).toBe(false);
          // Known subjects, then ones no tuple names: another user, every type's object and userset "zz".
          const subjects = [
            ...subjectsOf(generated),
            "user:nobody",
            ...generated.types.flatMap((t) => [`${t}:zz`, `${t}:zz#r0`]),
          ];
          const compare = async () => {
            for (const tenant of TENANTS) {
              for (const type of generated.types) {
                for (const relation of generated.program.types.get(type)!.relations.keys()) {
                  const requests = [...IDS, "zz"].flatMap((id) =>
                    subjects.map((user) => ({ user, relation, object: `${type}:${id}`, tenant })),
                  );
                  const expected = await Promise.all(
                    requests.map((r) =>
                      answerOf(() => oracle.check({ ...r, consistency: "fully_consistent" })),
                    ),
                  );
                  const actual = await Promise.all(
                    requests.map((r) =>
                      answerOf(() => engine.check({ ...r, consistency: "fully_consistent" })),
                    ),
                  );
                  expect(actual).toEqual(expected);
                  if (expected.every((a) => typeof a === "boolean")) {
                    const bulk = await engine.checkBulk(
                      requests.map((r) => ({ ...r, consistency: "fully_consistent" as const })),
                    );
                    expect(bulk).toEqual(expected);
                  }
                  seen.compared += requests.length;
                  seen.errors += expected.filter((a) => typeof a === "string").length;
                }
              }
            }
          };
          // The base tuples in the default tenant, the extra ones in t2 (one of them expiring, maybe).
          if (tuples.length > 0) await engine.write({ writes: tuples });
          const inT2: TupleKey[] = extra.map((t, i) =>
            expiring && i === 0 ? { ...t, expiresAt: Date.now() + HOUR } : t,
          );
          if (inT2.length > 0) await engine.write({ writes: inT2, tenant: "t2" });
          await compare();
          // Deletes: what they named stays interned (a superset: never a wrong denial), answers still agree.
          const deletes = tuples
            .filter((_, i) => i % 2 === 0)
            .map((t) => ({ user: t.user, relation: t.relation, object: t.object }));
          if (deletes.length > 0) await engine.write({ deletes });
          await compare();
          seen.denied += engine.stats().wasm!.unknownSubjects;
        },
      ),
      { numRuns: 40 },
    );
  });

  it("never denies a subject named only by a flagged tuple (expiring, conditional, from another tenant)", async () => {
    const model = `model
  schema 1.1
type user
type folder
  relations
    define viewer: [user]
type doc
  relations
    define parent: [folder]
    define viewer: [user, user with small] or viewer from parent
    define shared-reader: [user]
    define reader: [user] or viewer from parent or shared-reader
condition small(x: int) {
  x < 5
}
`;
    await using engine = await createEngine({ model });
    await using oracle = await createEngine({
      model,
      store: engine.store,
      evaluator: "reference",
      cache: false,
    });
    await engine.write({
      writes: [
        { user: "folder:f", relation: "parent", object: "doc:1" },
        { user: "user:anne", relation: "viewer", object: "folder:f" },
        // Named by an expiring tuple only: flagged, so not interned.
        { user: "user:exp", relation: "viewer", object: "folder:f", expiresAt: Date.now() + HOUR },
      ],
    });
    await engine.write({
      writes: [{ user: "user:gina", relation: "viewer", object: "doc:1", condition: { name: "small" } }],
    });
    await engine.write({
      tenant: "t2",
      writes: [{ user: "user:zed", relation: "shared-reader", object: "doc:1", subjectTenant: "default" }],
    });
    const asked = (engine: Engine, user: string, relation: string, extra: object = {}) =>
      answerOf(() =>
        engine.check({ user, relation, object: "doc:1", consistency: "fully_consistent", ...extra }),
      );
    const cases: [string, string, object][] = [
      ["user:exp", "reader", {}],
      ["user:exp", "viewer", {}],
      ["user:gina", "viewer", { context: { x: 1 } }],
      ["user:nobody", "reader", {}],
      ["user:nobody", "viewer", { context: { x: 1 } }],
      ["user:zed", "reader", { tenant: "t2", subjectTenant: "default" }],
      ["user:zed", "reader", { tenant: "t2" }],
    ];
    for (const [user, relation, extra] of cases) {
      expect(await asked(engine, user, relation, extra), `${user} ${relation}`).toEqual(
        await asked(oracle, user, relation, extra),
      );
    }
    expect(await asked(engine, "user:exp", "reader")).toBe(true);
    // The default tenant holds flagged tuples: the rule stays out of it, the kernel walks (and routes).
    expect(engine.stats().wasm!.unknownSubjects).toBe(0);
    // A tenant without flagged tuples: an unknown subject is denied without the kernel.
    await engine.write({
      tenant: "t3",
      writes: [{ user: "user:anne", relation: "reader", object: "doc:1" }],
    });
    expect(await asked(engine, "user:nobody", "reader", { tenant: "t3" })).toBe(false);
    expect(await asked(engine, "user:anne", "reader", { tenant: "t3" })).toBe(true);
    expect(engine.stats().wasm!.unknownSubjects).toBe(1);
  });
});
