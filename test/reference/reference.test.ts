/** Targeted cases of the reference evaluator's semantics that random tests rarely reach. */
import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { TupleKey } from "../../src/tuples/tuple.js";

async function engineWith(model: string, tuples: TupleKey[]): Promise<Engine> {
  const engine = await createEngine({
    model: `model\n  schema 1.1\ntype user\n${model}`,
  });
  if (tuples.length > 0) await engine.write({ writes: tuples });
  return engine;
}

describe("reference evaluator", () => {
  it("does not remember a node that was false only because of a cycle on one path", async () => {
    await using engine = await engineWith(
      `type doc
  relations
    define j: [user]
    define x: b or j
    define b: [doc#x]
    define a: x and b
`,
      [
        { user: "user:jon", relation: "j", object: "doc:1" },
        { user: "doc:1#x", relation: "b", object: "doc:1" },
      ],
    );
    // Resolving x first reaches b, whose only way in is x again (a cycle on that path); b must still be
    // evaluated afresh for the second operand of `a`.
    expect(await engine.check({ user: "user:jon", relation: "b", object: "doc:1" })).toBe(true);
    expect(await engine.check({ user: "user:jon", relation: "a", object: "doc:1" })).toBe(true);
  });

  it("treats a userset as a member of itself and of what includes its relation", async () => {
    await using engine = await engineWith(
      `type group
  relations
    define owner: [user]
    define member: [user] or owner
type doc
  relations
    define viewer: [group#member]
`,
      [{ user: "group:eng#member", relation: "viewer", object: "doc:1" }],
    );
    expect(await engine.check({ user: "group:eng#member", relation: "member", object: "group:eng" })).toBe(
      true,
    );
    expect(await engine.check({ user: "group:eng#owner", relation: "viewer", object: "doc:1" })).toBe(true);
    expect(await engine.check({ user: "group:other#owner", relation: "viewer", object: "doc:1" })).toBe(
      false,
    );
    expect(await engine.listObjects({ user: "group:eng#member", relation: "member", type: "group" })).toEqual(
      ["group:eng"],
    );
  });

  it("skips tuple-to-userset parents whose type lacks the computed relation", async () => {
    await using engine = await engineWith(
      `type folder
  relations
    define viewer: [user]
type team
type doc
  relations
    define parent: [folder, team]
    define viewer: viewer from parent
`,
      [
        { user: "team:t", relation: "parent", object: "doc:1" },
        { user: "folder:f", relation: "parent", object: "doc:1" },
        { user: "user:anne", relation: "viewer", object: "folder:f" },
      ],
    );
    expect(await engine.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(true);
    expect(await engine.check({ user: "user:bob", relation: "viewer", object: "doc:1" })).toBe(false);
  });

  it("lists a wildcard, not the users only a subtraction names", async () => {
    await using engine = await engineWith(
      `type doc
  relations
    define other: [user]
    define blocked: [user] and other
    define viewer: [user:*] but not blocked
`,
      [
        { user: "user:*", relation: "viewer", object: "doc:1" },
        { user: "user:bob", relation: "blocked", object: "doc:1" },
      ],
    );
    expect(
      await engine.listUsers({ object: "doc:1", relation: "viewer", userFilters: [{ type: "user" }] }),
    ).toEqual(["user:*"]);
    expect(await engine.check({ user: "user:bob", relation: "viewer", object: "doc:1" })).toBe(true);
  });

  it("lists a user a double negation grants", async () => {
    await using engine = await engineWith(
      `type doc
  relations
    define unblocked: [user]
    define blocked: [user:*] but not unblocked
    define viewer: [user:*] but not blocked
`,
      [
        { user: "user:*", relation: "viewer", object: "doc:1" },
        { user: "user:*", relation: "blocked", object: "doc:1" },
        { user: "user:bob", relation: "unblocked", object: "doc:1" },
      ],
    );
    expect(
      await engine.listUsers({ object: "doc:1", relation: "viewer", userFilters: [{ type: "user" }] }),
    ).toEqual(["user:bob"]);
    expect(await engine.check({ user: "user:*", relation: "viewer", object: "doc:1" })).toBe(false);
    expect(await engine.check({ user: "user:carl", relation: "viewer", object: "doc:1" })).toBe(false);
  });

  it("ignores stored tuples a newer model no longer allows", async () => {
    const first = await createEngine({
      model: "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user, user:*]\n",
    });
    await first.write({ writes: [{ user: "user:*", relation: "viewer", object: "doc:1" }] });
    await using second = await createEngine({
      model: "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n",
      store: first.store,
    });
    expect(await first.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(true);
    expect(await second.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(false);
    expect(await second.listObjects({ user: "user:anne", relation: "viewer", type: "doc" })).toEqual([]);
    await first.close();
  });
});
