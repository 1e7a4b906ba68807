/**
 * The kernel's symbols note a type's wildcard by its text: `user:*`, and not a plain user whose id ends in `:*`
 * (`user:x:*`; ids may hold colons). Taking `user:x:*` for user's wildcard made its tuple grant every user
 * (a wrong grant) and hid the real `user:*` tuple (a wrong denial). Review finding; both cases fail before the fix.
 */
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";

const model = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user, user:*]
`;

async function answers(writes: { user: string; relation: string; object: string }[][], objects: string[]) {
  await using engine = await createEngine({ model });
  await using oracle = await createEngine({
    model,
    store: engine.store,
    evaluator: "reference",
    cache: false,
  });
  for (const batch of writes) await engine.write({ writes: batch });
  for (const object of objects) {
    const q = { user: "user:bob", relation: "viewer", object, consistency: "fully_consistent" as const };
    const expected = await oracle.check(q);
    expect(await engine.check(q), object).toBe(expected);
    expect(await engine.checkBulk([q]), object).toEqual([expected]);
  }
}

describe("a user id ending in ':*' is not its type's wildcard", () => {
  it("the real wildcard still grants after such a user is interned", async () => {
    await answers(
      [
        [{ user: "user:*", relation: "viewer", object: "doc:1" }],
        [{ user: "user:x:*", relation: "viewer", object: "doc:2" }],
      ],
      ["doc:1", "doc:2"],
    );
  });

  it("such a user's tuple grants only that user", async () => {
    await answers([[{ user: "user:x:*", relation: "viewer", object: "doc:2" }]], ["doc:2"]);
  });
});
