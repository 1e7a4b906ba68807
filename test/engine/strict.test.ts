/**
 * Every request field is checked: an unknown field in any engine request or option object is "invalid_argument"
 * naming it and the closest known field; expiry instants are validated strictly (a day that does not exist is
 * refused, not rolled over); after close() every method, stats() included, says "closed".
 */
import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { isNexusError } from "../../src/util/errors.js";

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

const anne = { user: "user:anne", relation: "viewer", object: "doc:1" };

async function failure(run: () => unknown): Promise<{ code: string; message: string; details?: unknown }> {
  try {
    await run();
  } catch (error) {
    if (isNexusError(error)) return { code: error.code, message: error.message, details: error.details };
    throw error;
  }
  throw new Error(`expected a NexusError, got an answer: ${String(run)}`);
}

describe("unknown request fields", () => {
  it("are invalid_argument naming the field and the closest known one, in every request", async () => {
    for (const evaluator of ["wasm", "reference"] as const) {
      for (const cache of [undefined, false] as const) {
        await using engine = await createEngine({ model, evaluator, ...(cache === false ? { cache } : {}) });
        await engine.write({ writes: [anne] });
        // The cached-answer shortcut must not answer around validation either.
        expect(await engine.check(anne)).toBe(true);
        const cases: [string, () => unknown, string, string | undefined][] = [
          [
            "check",
            () => engine.check({ ...anne, consitency: "fully_consistent" } as never),
            "consitency",
            "consistency",
          ],
          [
            "check (relation typo)",
            () => engine.check({ ...anne, relaton: "x" } as never),
            "relaton",
            "relation",
          ],
          [
            "checkBulk",
            () => engine.checkBulk([anne, { ...anne, tenent: "a" } as never]),
            "tenent",
            "tenant",
          ],
          [
            "filter",
            () =>
              engine.filter({
                user: "user:anne",
                relation: "viewer",
                objects: ["doc:1"],
                object: "doc:1",
              } as never),
            "object",
            "objects",
          ],
          [
            "listObjects",
            () =>
              engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc", contex: {} } as never),
            "contex",
            "context",
          ],
          [
            "listUsers",
            () =>
              engine.listUsers({
                object: "doc:1",
                relation: "viewer",
                userFilters: [{ type: "user" }],
                userFilter: [],
              } as never),
            "userFilter",
            "userFilters",
          ],
          [
            "user filter",
            () =>
              engine.listUsers({
                object: "doc:1",
                relation: "viewer",
                userFilters: [{ type: "user", relations: "x" }],
              } as never),
            "relations",
            "relation",
          ],
          [
            "expand",
            () => engine.expand({ object: "doc:1", relation: "viewer", context: {} } as never),
            "context",
            undefined,
          ],
          ["read", () => engine.read({ ojbect: "doc:1" } as never), "ojbect", "object"],
          [
            "write",
            () => engine.write({ writes: [{ ...anne, object: "doc:2" }], onDuplicates: "ignore" } as never),
            "onDuplicates",
            "onDuplicate",
          ],
          [
            "written tuple",
            () =>
              engine.write({
                writes: [{ ...anne, object: "doc:2", expires_at: "2030-01-01T00:00:00Z" }],
              } as never),
            "expires_at",
            "expiresAt",
          ],
          [
            "tuple condition",
            () =>
              engine.write({
                writes: [{ ...anne, object: "doc:2", condition: { name: "c", contxt: {} } }],
              } as never),
            "contxt",
            "context",
          ],
          [
            "deleted tuple",
            () => engine.write({ deletes: [{ ...anne, usr: "user:anne" }] } as never),
            "usr",
            "user",
          ],
          [
            "contextual tuple",
            () => engine.check({ ...anne, contextualTuples: [{ ...anne, objet: "doc:3" }] } as never),
            "objet",
            "object",
          ],
          [
            "consistency token",
            () => engine.check({ ...anne, consistency: { atLeastAsFresh: "x", atMostAsStale: 1 } } as never),
            "atMostAsStale",
            undefined,
          ],
          ["check options", () => engine.check(anne, { signl: undefined } as never), "signl", "signal"],
        ];
        for (const [what, run, field, suggestion] of cases) {
          const error = await failure(run);
          expect(error.code, `${what}: ${error.message}`).toBe("invalid_argument");
          expect(error.message, what).toContain(JSON.stringify(field));
          expect(error.details, what).toMatchObject({ field });
          if (suggestion !== undefined) expect(error.message, what).toContain(`did you mean ${suggestion}?`);
          else expect(error.message, what).not.toContain("did you mean");
        }
        // Nothing was written by the refused writes.
        expect(await engine.read({})).toHaveLength(1);
        const watch = await failure(async () => {
          for await (const _ of engine.watch({ afer: "x" } as never)) break;
        });
        expect(watch).toMatchObject({
          code: "invalid_argument",
          details: { field: "afer", suggestion: "after" },
        });
      }
    }
  });

  it("in createEngine options, and in its changelog option", async () => {
    const error = await failure(() => createEngine({ model, quantisationWindowMs: 10 } as never));
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain("did you mean quantizationWindowMs?");
    expect(await failure(() => createEngine({ model, changelog: { maxEntrys: 5 } } as never))).toMatchObject({
      code: "invalid_argument",
      details: { field: "maxEntrys", suggestion: "maxEntries" },
    });
    expect(await failure(() => createEngine({ modle: model } as never))).toMatchObject({
      details: { field: "modle", suggestion: "model" },
    });
  });
});

describe("expiry instants", () => {
  it("are RFC 3339 strings checked field by field, Dates or epoch ms; anything else is invalid_tuple", async () => {
    await using engine = await createEngine({ model, clock: () => Date.UTC(2029, 0, 1) });
    for (const expiresAt of [
      "2030-02-30T00:00:00Z", // no such day (not March 2)
      "2029-02-29T00:00:00Z", // not a leap year
      "2030-13-01T00:00:00Z",
      "2030-01-01T24:00:00Z",
      "2030-01-01T00:00:00+24:00",
      "2030-01-01T00:00", // no seconds, no offset: local time is not an instant
      "2030-01-01",
      "tomorrow",
      new Date("nope"),
      Number.NaN,
      Number.POSITIVE_INFINITY,
      true,
    ]) {
      const error = await failure(() => engine.write({ writes: [{ ...anne, expiresAt } as never] }));
      expect(error.code, String(expiresAt)).toBe("invalid_tuple");
      expect(error.message).toContain("expiresAt");
    }
    expect(await engine.read({})).toEqual([]);
    const accepted: [unknown, string][] = [
      ["2032-02-29T12:00:00Z", "2032-02-29T12:00:00.000Z"],
      ["2030-06-01t10:00:00.5+02:00", "2030-06-01T08:00:00.500Z"],
      ["2030-06-01 10:00:00Z", "2030-06-01T10:00:00.000Z"],
      [new Date(Date.UTC(2031, 0, 2)), "2031-01-02T00:00:00.000Z"],
      [Date.UTC(2033, 4, 5), "2033-05-05T00:00:00.000Z"],
    ];
    for (const [i, [expiresAt, stored]] of accepted.entries()) {
      await engine.write({ writes: [{ ...anne, object: `doc:${i}`, expiresAt } as never] });
      expect((await engine.read({ object: `doc:${i}` }))[0]!.expiresAt).toBe(stored);
    }
  });
});

describe("after close()", () => {
  it("every method, stats() included, rejects with closed", async () => {
    const engines: Engine[] = [await createEngine({ model }), await createEngine({ model, cache: false })];
    for (const engine of engines) {
      await engine.close();
      const calls: [string, () => unknown][] = [
        ["stats", () => engine.stats()],
        ["check", () => engine.check(anne)],
        ["checkBulk", () => engine.checkBulk([anne])],
        ["filter", () => engine.filter({ user: "user:anne", relation: "viewer", objects: ["doc:1"] })],
        ["listObjects", () => engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc" })],
        [
          "listUsers",
          () => engine.listUsers({ object: "doc:1", relation: "viewer", userFilters: [{ type: "user" }] }),
        ],
        ["expand", () => engine.expand({ object: "doc:1", relation: "viewer" })],
        ["read", () => engine.read({})],
        ["write", () => engine.write({ writes: [anne] })],
        ["token", () => engine.token()],
        ["caughtUp", () => engine.caughtUp()],
        ["watch", () => engine.watch({}).next()],
      ];
      for (const [name, call] of calls) expect((await failure(call)).code, name).toBe("closed");
    }
  });
});
