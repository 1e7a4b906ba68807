import { describe, expect, it } from "vitest";
import { compileModelAsync } from "../../src/model/index.js";
import { validCheck } from "../../src/request/validate.js";

const withTeams = `model
  schema 1.1
type user
type team
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, team#member]`;

const withoutTeams = `model
  schema 1.1
type person
type doc
  relations
    define viewer: [person]`;

describe("validCheck's remembered subjects", () => {
  it("are the program's own: a subject one model accepts is refused by another, in any order", async () => {
    const a = await compileModelAsync(withTeams);
    const b = await compileModelAsync(withoutTeams);
    const check = (user: string) => ({ user, relation: "viewer", object: "doc:1" });
    const users = ["user:anne", "team:eng#member", "user:bob"];
    for (let round = 0; round < 3; round++) {
      for (const user of users) {
        expect(validCheck(a, check(user), 10).user).toBe(user);
        expect(() => validCheck(b, check(user), 10)).toThrow(/not defined/);
      }
      // Interleaved with the other program's own subjects.
      expect(validCheck(b, check("person:carl"), 10).subject).toEqual({
        kind: "object",
        type: "person",
        id: "carl",
      });
      expect(() => validCheck(a, check("person:carl"), 10)).toThrow(/not defined/);
    }
  });

  it("are the text's own: many subjects in turn each get their own parse", async () => {
    const a = await compileModelAsync(withTeams);
    for (let i = 0; i < 10_000; i++) {
      const user = `user:u${i % 5000}`;
      const valid = validCheck(a, { user, relation: "viewer", object: "doc:1" }, 10);
      expect(valid.subject).toEqual({ kind: "object", type: "user", id: `u${i % 5000}` });
      expect(valid.user).toBe(user);
    }
  });
});

describe("validCheck's remembered relation", () => {
  it("is the type's and the program's own: a relation accepted on one type or model is refused where undefined", async () => {
    const a = await compileModelAsync(withTeams);
    const b = await compileModelAsync(withoutTeams);
    for (let round = 0; round < 3; round++) {
      // Accepted on doc, then asked of team (no viewer there), then of doc again.
      expect(validCheck(a, { user: "user:anne", relation: "viewer", object: "doc:1" }, 10).relation).toBe(
        "viewer",
      );
      expect(() => validCheck(a, { user: "user:anne", relation: "viewer", object: "team:1" }, 10)).toThrow(
        /relation "viewer"/,
      );
      expect(validCheck(a, { user: "user:anne", relation: "member", object: "team:1" }, 10).relation).toBe(
        "member",
      );
      expect(() => validCheck(a, { user: "user:anne", relation: "member", object: "doc:1" }, 10)).toThrow(
        /relation "member"/,
      );
      // The other program has doc#viewer but no team at all; a remembered (doc, viewer) of one is not the other's.
      expect(validCheck(b, { user: "person:carl", relation: "viewer", object: "doc:1" }, 10).relation).toBe(
        "viewer",
      );
      expect(() => validCheck(b, { user: "person:carl", relation: "member", object: "doc:1" }, 10)).toThrow(
        /relation "member"/,
      );
      expect(() => validCheck(a, { user: "user:anne", relation: "editor", object: "doc:1" }, 10)).toThrow(
        /relation "editor"/,
      );
    }
  });

  it("skips no field check: an unknown field is refused unless the caller says it looked (fieldsKnown)", async () => {
    const a = await compileModelAsync(withTeams);
    const request = { user: "user:anne", relation: "viewer", object: "doc:1", consitency: "x" };
    expect(() => validCheck(a, request, 10)).toThrow(/no field "consitency"/);
  });
});

describe("ids with a lone surrogate", () => {
  it("are refused as an invalid argument naming the field, before and after the same type was accepted", async () => {
    const { createEngine } = await import("../../src/engine/engine.js");
    await using engine = await createEngine({ model: withTeams });
    await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] });
    for (const [object, user, field] of [
      ["doc:\uD800", "user:anne", "object"],
      ["doc:1", "user:\uDC00", "user"],
      ["doc:a\uDC00", "team:eng#member", "object"],
      ["doc:1", "team:\uD83D#member", "user"],
    ] as const) {
      // A check of the same type just before: the remembered type's shortcut must refuse it as well.
      expect(await engine.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(true);
      await expect(engine.check({ user, relation: "viewer", object })).rejects.toMatchObject({
        code: "invalid_argument",
        message: expect.stringContaining(field),
      });
      await expect(
        engine.checkBulk([
          { user: "user:anne", relation: "viewer", object: "doc:1" },
          { user, relation: "viewer", object },
        ]),
      ).rejects.toMatchObject({ code: "invalid_argument" });
    }
    // A surrogate pair (an astral character) is a well-formed id.
    expect(await engine.check({ user: "user:\u{1F600}", relation: "viewer", object: "doc:\u{1F600}" })).toBe(
      false,
    );
  });
});
