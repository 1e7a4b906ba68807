/**
 * Result-cache keys come from a canonical copy of the condition context, and the evaluator reads that same copy:
 * `{x: -0}` and `{x: 0}` never share an answer, and a property the key does not see (non-enumerable, inherited,
 * symbol-keyed) is not seen by the evaluator either, on every path (default engine, either evaluator, no cache).
 */
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { contextText } from "../../src/request/key.js";
import { contextOf } from "../../src/request/requests.js";
import { isNexusError } from "../../src/util/errors.js";

const model = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user with positive]
condition positive(x: double) {
  1.0 / x > 0.0
}`;

const request = { user: "user:anne", relation: "viewer", object: "doc:1" };

async function answer(run: () => Promise<boolean>): Promise<boolean | string> {
  try {
    return await run();
  } catch (error) {
    if (isNexusError(error)) return error.code;
    throw error;
  }
}

const configurations = [
  {},
  { evaluator: "reference" },
  { cache: false },
  { cache: false, evaluator: "reference" },
] as const;

describe("condition contexts in cache keys", () => {
  it("-0 and 0 get their own answers, in either order", async () => {
    for (const options of configurations) {
      for (const order of [
        [0, -0],
        [-0, 0],
      ]) {
        await using engine = await createEngine({ model, ...options });
        await engine.write({ writes: [{ ...request, condition: { name: "positive" } }] });
        for (let round = 0; round < 2; round++) {
          for (const x of order) {
            expect(
              await engine.check({ ...request, context: { x } }),
              `${JSON.stringify(options)} x=${Object.is(x, -0) ? "-0" : x}`,
            ).toBe(!Object.is(x, -0)); // 1.0 / -0.0 is -Infinity
          }
        }
        // Listing sees the same.
        expect(
          await engine.listObjects({
            user: "user:anne",
            relation: "viewer",
            type: "doc",
            context: { x: -0 },
          }),
        ).toEqual([]);
        expect(
          await engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc", context: { x: 0 } }),
        ).toEqual(["doc:1"]);
      }
    }
  });

  it("a property the key cannot see is invisible to the evaluator too", async () => {
    const hidden = (): object => Object.defineProperty({}, "x", { value: 1, enumerable: false });
    const inherited = (): object => Object.create(Object.assign(Object.create(null), { x: 1 }));
    for (const options of configurations) {
      await using engine = await createEngine({ model, ...options });
      await engine.write({ writes: [{ ...request, condition: { name: "positive" } }] });
      for (const context of [hidden(), { [Symbol("x")]: 1 }]) {
        // Asked first with the hidden property, then with none: both lack x.
        expect(await answer(() => engine.check({ ...request, context: context as never }))).toBe(
          "condition_missing_parameter",
        );
        expect(await answer(() => engine.check({ ...request, context: {} }))).toBe(
          "condition_missing_parameter",
        );
        expect(await engine.check({ ...request, context: { x: 1 } })).toBe(true);
        expect(await answer(() => engine.check({ ...request, context: context as never }))).toBe(
          "condition_missing_parameter",
        );
      }
      // A class instance (here: a null-prototype chain) has no canonical form: evaluated as given, never cached.
      expect(await answer(() => engine.check({ ...request, context: inherited() as never }))).toBe(
        "condition_missing_parameter",
      );
    }
  });

  it("a getter is read once: the evaluator and the key see the same value", async () => {
    await using engine = await createEngine({ model });
    await engine.write({ writes: [{ ...request, condition: { name: "positive" } }] });
    let reads = 0;
    const flipping = {
      get x() {
        reads++;
        return reads === 1 ? 1 : -1;
      },
    };
    expect(await engine.check({ ...request, context: flipping })).toBe(true);
    expect(reads).toBe(1);
    expect(await engine.check({ ...request, context: { x: -1 } })).toBe(false);
    expect(await engine.check({ ...request, context: { x: 1 } })).toBe(true);
  });

  it("the canonical copy: sorted own enumerable keys, -0 apart, too deep refused", () => {
    const copy = contextOf({ b: [1, { d: -0 }], a: new Date(0) })!;
    expect(Object.keys(copy)).toEqual(["a", "b"]);
    expect(contextText(copy)).toBe('{"a":D1970-01-01T00:00:00.000Z,"b":[1,{"d":-0}]}');
    expect(contextText({ x: 0 })).not.toBe(contextText({ x: -0 }));
    let deep: object = {};
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    expect(() => contextOf(deep)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
  });
});
