/**
 * Checks answered without waiting (a cache hit, a first-pass kernel answer) hand back one of two shared settled
 * promises. Each must still carry its own question's answer, and a caller must not be able to leave anything on
 * one that another caller would see.
 */
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";

const MODEL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`;

describe("settled check answers", () => {
  it("first-pass and repeated checks answer their own question; the shared promises are frozen", async () => {
    await using engine = await createEngine({ model: MODEL });
    const { token } = await engine.write({
      writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }],
    });
    const consistency = { atLeastAsFresh: token };
    const ask = (user: string, object: string) =>
      engine.check({ user, relation: "viewer", object, consistency });
    for (let pass = 0; pass < 3; pass++) {
      const yes = ask("user:anne", "doc:1");
      const no = ask("user:bob", "doc:1");
      const other = ask("user:anne", "doc:2");
      expect(await Promise.all([yes, no, other])).toEqual([true, false, false]);
      // Repeats are cache hits, always answered without waiting.
      if (pass > 0)
        for (const p of [yes, no, other]) {
          expect(() => {
            (p as unknown as { tag: number }).tag = 1;
          }).toThrow(TypeError);
        }
    }
  });
});
