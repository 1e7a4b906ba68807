/**
 * writeOf validates a write's tuples on a quick path (one interner per write, the relation's allowed forms) and
 * hands anything it does not accept outright to validTuple. On random and malformed tuples its result must be
 * validTuple's exactly: the same tuple, or the same error.
 */
import { describe, expect, it } from "vitest";
import { writeOf } from "../../src/engine/tuples.js";
import { compileModelAsync } from "../../src/model/index.js";
import { validTuple } from "../../src/request/requests.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { seededRandom } from "../../src/util/random.js";

const MODEL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member, user with nice]
type doc
  relations
    define parent: [doc]
    define viewer: [user, user:*, group#member]
    define view: viewer or view from parent
condition nice(x: int) {
  x > 1
}
`;

const pieces = {
  object: ["doc:1", "doc:a#b", "doc:*", "doc:", ":1", "nope:1", "do c:1", 7, undefined, "doc:\u0000"],
  relation: ["viewer", "member", "parent", "view", "vi ewer", "x#y", "", undefined, 3],
  user: [
    "user:anne",
    "user:*",
    "group:eng#member",
    "group:eng#viewer",
    "doc:2",
    "user",
    "user:",
    "bad:1",
    null,
  ],
  extra: [
    {},
    {},
    {},
    { tenant: "default" },
    { tenant: "" },
    { subjectTenant: "other" },
    { condition: { name: "nice" } },
    { condition: { name: "nice", context: { x: 2 } } },
    { condition: { name: "nice", extra: 1 } },
    { condition: null },
    { condition: "nice" },
    { expiresAt: "2030-01-01T00:00:00Z" },
    { expiresAt: "2030-02-30T00:00:00Z" },
    { colour: "red" },
  ],
};

function outcome(run: () => unknown): unknown {
  try {
    return { value: run() };
  } catch (error) {
    return { error: (error as Error).message, code: (error as { code?: string }).code };
  }
}

describe("writeOf", () => {
  it("gives validTuple's tuple or error for every random tuple", async () => {
    const program = await compileModelAsync(MODEL);
    const random = seededRandom(42);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    for (let i = 0; i < 5000; i++) {
      const key =
        random() < 0.02
          ? pick([null, "doc:1", 5])
          : {
              object: pick(pieces.object),
              relation: pick(pieces.relation),
              user: pick(pieces.user),
              ...pick(pieces.extra),
            };
      const got = outcome(() => writeOf(program, { writes: [key as TupleKey] }).writes[0]);
      const want = outcome(() => validTuple(program, key as TupleKey, "default", "write 0"));
      expect(got, JSON.stringify(key)).toEqual(want);
    }
  });

  it("shares type names and subjects between the tuples of one write", async () => {
    const program = await compileModelAsync(MODEL);
    const keys = [
      { object: "doc:1", relation: "parent", user: "doc:9" },
      { object: "doc:2", relation: "parent", user: "doc:9" },
      { object: "doc:3", relation: "viewer", user: "group:eng#member" },
    ];
    const { writes } = writeOf(program, { writes: keys });
    expect(writes[1]!.subject).toBe(writes[0]!.subject);
    expect(writes[1]!.objectType).toBe(writes[0]!.subject.type);
    expect(keys.map((k) => validTuple(program, k, "default", "w"))).toEqual(writes);
  });
});
