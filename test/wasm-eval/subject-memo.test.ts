/**
 * The symbols' subject memo (src/wasm-eval/symbols.ts) keeps the symbols of subjects that were found, never a
 * miss: a subject asked about before any tuple named it is interned by the next write, and must then be found.
 * Checked one at a time and in batches (runs of one subject, subjects alternating), against the reference, with
 * cache: false so every answer comes from the kernel, and with the memo filled past its size (it starts over).
 */
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, group#member]
`;

describe("the subject memo", () => {
  it("finds a subject interned after it was asked about (one at a time and in batches)", async () => {
    await using engine = await createEngine({ model, cache: false });
    await using oracle = await createEngine({
      model,
      store: engine.store,
      evaluator: "reference",
      cache: false,
    });
    const ask = async (users: string[], objects: string[]) => {
      const qs = users.flatMap((user) =>
        objects.map((object) => ({
          user,
          relation: "viewer",
          object,
          consistency: "fully_consistent" as const,
        })),
      );
      const expected = await oracle.checkBulk(qs);
      expect(await engine.checkBulk(qs)).toEqual(expected);
      // Alternating subjects: no run of one subject to share a lookup.
      const alternating = qs.filter((_, i) => i % 2 === 0).concat(qs.filter((_, i) => i % 2 === 1));
      expect(await engine.checkBulk(alternating)).toEqual(await oracle.checkBulk(alternating));
      for (const [i, q] of qs.entries())
        expect(await engine.check(q), `${q.user} ${q.object}`).toBe(expected[i]);
      return expected;
    };
    const users = ["user:ann", "user:bob", "user:cat"];
    const docs = ["doc:1", "doc:2"];
    await engine.write({ writes: [{ user: "user:ann", relation: "viewer", object: "doc:1" }] });
    expect(await ask(users, docs)).toEqual([true, false, false, false, false, false]);
    // bob and cat were asked about (misses) before any tuple named them.
    await engine.write({
      writes: [
        { user: "user:bob", relation: "member", object: "group:g" },
        { user: "group:g#member", relation: "viewer", object: "doc:2" },
        { user: "user:cat", relation: "viewer", object: "doc:1" },
      ],
    });
    expect(await ask(users, docs)).toEqual([true, false, false, true, true, false]);
    expect(engine.wasmEvaluator?.stats.routed.unknown).toBe(0);
  });

  it("answers the same after the memo fills and starts over", async () => {
    await using engine = await createEngine({ model, cache: false });
    const users = Array.from({ length: 5000 }, (_, i) => `user:u${i}`);
    await engine.write({
      writes: users.map((user, i) => ({ user, relation: "viewer", object: `doc:${i % 7}` })),
    });
    for (let round = 0; round < 2; round++) {
      const qs = users.map((user, i) => ({ user, relation: "viewer", object: `doc:${(i + round) % 7}` }));
      expect(await engine.checkBulk(qs)).toEqual(qs.map(() => round === 0));
      for (const i of [0, 4095, 4096, 4999]) {
        expect(await engine.check({ user: users[i]!, relation: "viewer", object: `doc:${i % 7}` })).toBe(
          true,
        );
      }
    }
    expect(engine.wasmEvaluator?.stats.routed.unknown).toBe(0);
  });
});
