/**
 * engine.batchCheck (per-item errors, correlation ids, limits) and the paged listings (listObjectsPage,
 * listUsersPage, readPage: pages at one pinned revision, tokens refused when altered or expired), each held to the
 * plain answers and, on random models, to the reference evaluator without caches.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { namedChecks } from "../../src/engine/batch.js";
import { createEngine, type Engine, type EngineOptions } from "../../src/engine/engine.js";
import { isNexusError, NexusError } from "../../src/util/errors.js";
import { IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, group#member, user with office_hours]
condition office_hours(hour: int) {
  hour >= 9 && hour < 17
}
`;

async function seeded(options: Partial<EngineOptions> = {}, docs = 5): Promise<Engine> {
  const engine = await createEngine({ model, ...options });
  await engine.write({
    writes: [
      { user: "user:anne", relation: "member", object: "group:eng" },
      ...Array.from({ length: docs }, (_, i) => ({
        user: i % 2 === 0 ? "group:eng#member" : "user:bob",
        relation: "viewer",
        object: `doc:${i}`,
      })),
      { user: "user:carl", relation: "viewer", object: "doc:0", condition: { name: "office_hours" } },
    ],
  });
  return engine;
}

async function rejection(promise: Promise<unknown>): Promise<NexusError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof NexusError) return error;
    throw error;
  }
  throw new Error("expected a NexusError");
}

const ENGINES: [string, Partial<EngineOptions>][] = [
  ["default engine", {}],
  ["cache: false", { cache: false }],
  ["reference evaluator, cache: false", { evaluator: "reference", cache: false }],
];

describe("engine.batchCheck", () => {
  for (const [name, options] of ENGINES) {
    it(`answers every item, a failing one with its own error (${name})`, async () => {
      await using engine = await seeded(options);
      const { result } = await engine.batchCheck({
        checks: [
          { user: "user:anne", relation: "viewer", object: "doc:0", correlationId: "ok-1" },
          { user: "user:anne", relation: "nope", object: "doc:0", correlationId: "bad-relation" },
          { user: "user:anne", relation: "viewer", object: "doc:1", correlationId: "ok-2" },
          { user: "user:carl", relation: "viewer", object: "doc:0", correlationId: "no-hour" },
          {
            user: "user:carl",
            relation: "viewer",
            object: "doc:0",
            context: { hour: 10 },
            correlationId: "hour",
          },
          { user: "anne", relation: "viewer", object: "doc:0", correlationId: "bad-user" },
          { user: "user:anne", relation: "viewer", object: "nodoc:1", correlationId: "bad-type" },
          { user: "user:anne", relation: "viewer", object: "doc:2", correlationId: "ok-3" },
        ],
      });
      expect(result.map((r) => [r.correlationId, r.allowed, r.error?.code])).toEqual([
        ["ok-1", true, undefined],
        ["bad-relation", false, "relation_not_found"],
        ["ok-2", false, undefined],
        ["no-hour", false, "condition_missing_parameter"],
        ["hour", true, undefined],
        ["bad-user", false, "invalid_argument"],
        ["bad-type", false, "type_not_found"],
        ["ok-3", true, undefined],
      ]);
      expect(result[1]!.error).toBeInstanceOf(NexusError);
      expect(result[1]!.error!.message).toContain("nope");
      expect(result[0]!.request).toMatchObject({ object: "doc:0", correlationId: "ok-1" });
      // checkBulk over the same items still rejects the whole batch at the first failing one, naming it.
      const bulk = await rejection(
        engine.checkBulk(result.map(({ request: { correlationId: _, ...r } }) => r)),
      );
      expect(bulk.code).toBe("relation_not_found");
      expect(bulk.details?.index).toBe(1);
    });
  }

  it("generates correlation ids where absent (unique), keeps given ones, refuses duplicates and malformed ones", async () => {
    await using engine = await seeded();
    const checks = Array.from({ length: 50 }, (_, i) => ({
      user: "user:anne",
      relation: "viewer",
      object: `doc:${i % 5}`,
      ...(i === 7 ? { correlationId: "mine_7" } : {}),
    }));
    const { result } = await engine.batchCheck({ checks });
    expect(result).toHaveLength(50);
    expect(new Set(result.map((r) => r.correlationId)).size).toBe(50);
    expect(result[7]!.correlationId).toBe("mine_7");
    for (const r of result) expect(r.correlationId).toMatch(/^[A-Za-z0-9_-]{1,36}$/);
    expect(result.map((r) => r.allowed)).toEqual(
      checks.map((c) => ["doc:0", "doc:2", "doc:4"].includes(c.object)),
    );

    const duplicate = await rejection(
      engine.batchCheck({
        checks: [
          { user: "user:anne", relation: "viewer", object: "doc:0", correlationId: "x" },
          { user: "user:anne", relation: "viewer", object: "doc:1" },
          { user: "user:anne", relation: "viewer", object: "doc:2", correlationId: "x" },
        ],
      }),
    );
    expect(duplicate.code).toBe("invalid_argument");
    expect(duplicate.details).toMatchObject({
      reason: "duplicate_correlation_id",
      correlationId: "x",
      indices: [0, 2],
    });
    for (const id of ["", "a b", "x".repeat(37), 7]) {
      const bad = await rejection(
        engine.batchCheck({
          checks: [{ user: "user:anne", relation: "viewer", object: "doc:0", correlationId: id as string }],
        }),
      );
      expect(bad.code).toBe("invalid_argument");
      expect(bad.message).toContain("correlationId");
    }
  });

  it("never generates an id that an item names further on", () => {
    const ids = ["a", "b"];
    const checks = [{ user: "user:x" }, { user: "user:y", correlationId: "a" }];
    const named = namedChecks({ checks }, 10, () => ids.shift()!);
    expect(named.map((n) => n.correlationId)).toEqual(["b", "a"]);
  });

  it("states its limits and checks its request", async () => {
    await using engine = await seeded();
    const check = { user: "user:anne", relation: "viewer", object: "doc:0" };
    const over = await rejection(engine.batchCheck({ checks: Array.from({ length: 10_001 }, () => check) }));
    expect(over.code).toBe("invalid_argument");
    expect(over.details).toMatchObject({ limit: 10_000, count: 10_001 });
    const small = await rejection(engine.batchCheck({ checks: [check, check, check] }, { maxChecks: 2 }));
    expect(small.details).toMatchObject({ limit: 2, count: 3 });
    expect((await engine.batchCheck({ checks: [] })).result).toEqual([]);
    expect((await rejection(engine.batchCheck({ checks: "no" as never }))).code).toBe("invalid_argument");
    expect((await rejection(engine.batchCheck({ checks: [], consitency: 1 } as never))).message).toContain(
      "consistency",
    );
    expect((await rejection(engine.batchCheck({ checks: [] }, { maxChecks: 0 }))).code).toBe(
      "invalid_argument",
    );
    // A non-object item is that item's error.
    const { result } = await engine.batchCheck({ checks: [null as never, check] });
    expect(result.map((r) => [r.allowed, r.error?.code])).toEqual([
      [false, "invalid_argument"],
      [true, undefined],
    ]);
  });

  it("applies the call's tenant and consistency to items that name none", async () => {
    await using engine = await seeded();
    const { token } = await engine.write({
      tenant: "t2",
      writes: [{ user: "user:zed", relation: "viewer", object: "doc:9" }],
    });
    const { result } = await engine.batchCheck({
      tenant: "t2",
      consistency: { atLeastAsFresh: token },
      checks: [
        { user: "user:zed", relation: "viewer", object: "doc:9" },
        { user: "user:zed", relation: "viewer", object: "doc:9", tenant: "default" },
        { user: "user:anne", relation: "viewer", object: "doc:0", tenant: "default" },
      ],
    });
    expect(result.map((r) => r.allowed)).toEqual([true, false, true]);
    const stale = await engine.batchCheck({
      consistency: { atLeastAsFresh: "garbage" },
      checks: [{ user: "user:anne", relation: "viewer", object: "doc:0" }],
    });
    expect(stale.result[0]!.error?.code).toBe("invalid_token");
  });

  it("rejects the whole call when its signal aborts", async () => {
    await using engine = await seeded();
    const error = await rejection(
      engine.batchCheck(
        { checks: [{ user: "user:anne", relation: "viewer", object: "doc:0" }] },
        { signal: AbortSignal.abort() },
      ),
    );
    expect(error.code).toBe("aborted");
  });
});

/** Every page of a paged listing, following the tokens. */
async function allPages<T>(
  first: (token: string | undefined) => Promise<{ items: T[]; continuationToken: string }>,
): Promise<{ pages: T[][]; tokens: string[] }> {
  const pages: T[][] = [];
  const tokens: string[] = [];
  let token: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await first(token);
    pages.push(page.items);
    if (page.continuationToken === "") return { pages, tokens };
    tokens.push(page.continuationToken);
    token = page.continuationToken;
  }
  throw new Error("no last page");
}

describe("paged listings", () => {
  for (const [name, options] of ENGINES) {
    it(`listObjectsPage, listUsersPage and readPage add up to the unpaged answers (${name})`, async () => {
      await using engine = await seeded(options, 23);
      const q = { user: "user:anne", relation: "viewer", type: "doc" };
      const objects = await engine.listObjects(q);
      expect(objects.length).toBe(12);
      const paged = await allPages(async (continuationToken) => {
        const p = await engine.listObjectsPage({
          ...q,
          pageSize: 5,
          ...(continuationToken ? { continuationToken } : {}),
        });
        return { items: p.objects, continuationToken: p.continuationToken };
      });
      expect(paged.pages.map((p) => p.length)).toEqual([5, 5, 2]);
      expect(paged.pages.flat()).toEqual(objects);
      // A page size that divides the answer ends with a full page and an empty token.
      const exact = await engine.listObjectsPage({ ...q, pageSize: 12 });
      expect(exact).toEqual({ objects, continuationToken: "" });

      await engine.write({
        writes: Array.from({ length: 7 }, (_, i) => ({
          user: `user:u${i}`,
          relation: "viewer",
          object: "doc:1",
        })),
      });
      const uq = { object: "doc:1", relation: "viewer", userFilters: [{ type: "user" }] };
      const users = await engine.listUsers(uq);
      const usersPaged = await allPages(async (continuationToken) => {
        const p = await engine.listUsersPage({
          ...uq,
          pageSize: 3,
          ...(continuationToken ? { continuationToken } : {}),
        });
        return { items: p.users, continuationToken: p.continuationToken };
      });
      expect(usersPaged.pages.flat()).toEqual(users);
      expect(usersPaged.pages.length).toBe(3);

      const tuples = await engine.read({ object: "doc:" });
      const readPaged = await allPages(async (continuationToken) => {
        const p = await engine.readPage({
          object: "doc:",
          pageSize: 4,
          ...(continuationToken ? { continuationToken } : {}),
        });
        return { items: p.tuples, continuationToken: p.continuationToken };
      });
      const key = (t: { object: string; relation: string; user: string }) =>
        `${t.object} ${t.relation} ${t.user}`;
      expect(readPaged.pages.flat().map(key)).toEqual(
        tuples
          .map(key)
          .sort((a, b) => (JSON.stringify(a.split(" ")) < JSON.stringify(b.split(" ")) ? -1 : 1)),
      );
      expect(new Set(readPaged.pages.flat().map(key)).size).toBe(tuples.length);
    });
  }

  it("reads every page at the first page's revision, whatever is written meanwhile", async () => {
    await using engine = await seeded({}, 10);
    const q = { user: "user:anne", relation: "viewer", type: "doc" };
    const before = await engine.listObjects(q);
    const first = await engine.listObjectsPage({ ...q, pageSize: 2 });
    // Grant one object that sorts before the cursor and one after it, revoke one after it.
    await engine.write({
      writes: [
        { user: "user:anne", relation: "viewer", object: "doc:00" },
        { user: "user:anne", relation: "viewer", object: "doc:99" },
      ],
      deletes: [{ user: "group:eng#member", relation: "viewer", object: "doc:8" }],
    });
    const rest: string[] = [];
    let token = first.continuationToken;
    while (token !== "") {
      const page = await engine.listObjectsPage({ ...q, pageSize: 2, continuationToken: token });
      rest.push(...page.objects);
      token = page.continuationToken;
    }
    expect([...first.objects, ...rest]).toEqual(before);
    // A new listing sees the writes.
    expect((await engine.listObjectsPage({ ...q, pageSize: 100 })).objects).toEqual(
      await engine.listObjects(q),
    );
    expect(await engine.listObjects(q)).toContain("doc:99");
  });

  it("keeps each question's listing apart when pages of several are read in turn", async () => {
    await using engine = await seeded({}, 12);
    const anne = { user: "user:anne", relation: "viewer", type: "doc", pageSize: 2 };
    const bob = { ...anne, user: "user:bob" };
    const got = { anne: [] as string[], bob: [] as string[] };
    const tokens: Record<"anne" | "bob", string | undefined> = { anne: "", bob: "" };
    while (tokens.anne !== undefined || tokens.bob !== undefined) {
      for (const [who, q] of [
        ["anne", anne],
        ["bob", bob],
      ] as const) {
        const token = tokens[who];
        if (token === undefined) continue;
        const page = await engine.listObjectsPage({ ...q, continuationToken: token });
        got[who].push(...page.objects);
        tokens[who] = page.continuationToken === "" ? undefined : page.continuationToken;
      }
    }
    expect(got.anne).toEqual(
      await engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc" }),
    );
    expect(got.bob).toEqual(await engine.listObjects({ user: "user:bob", relation: "viewer", type: "doc" }));
    expect(got.anne).not.toEqual(got.bob);
  });

  it("refuses altered, foreign and expired tokens with invalid_continuation_token", async () => {
    let now = 1_000_000;
    await using engine = await seeded({ clock: () => now }, 10);
    await using other = await seeded({ clock: () => now }, 10);
    const q = { user: "user:anne", relation: "viewer", type: "doc" };
    const { continuationToken: token } = await engine.listObjectsPage({ ...q, pageSize: 2 });
    expect(token).not.toBe("");
    const refused = async (request: Promise<unknown>, text?: string) => {
      const error = await rejection(request);
      expect(error.code).toBe("invalid_continuation_token");
      if (text !== undefined) expect(error.message).toContain(text);
      return error;
    };
    // Every single-character change of the token is refused.
    for (let i = 5; i < token.length; i++) {
      const c = token[i] === "A" ? "B" : "A";
      await refused(
        engine.listObjectsPage({ ...q, continuationToken: token.slice(0, i) + c + token.slice(i + 1) }),
      );
    }
    await refused(engine.listObjectsPage({ ...q, continuationToken: token.slice(0, -3) }));
    await refused(engine.listObjectsPage({ ...q, continuationToken: "garbage" }));
    await refused(engine.listObjectsPage({ ...q, continuationToken: 42 as never }));
    await refused(
      engine.listObjectsPage({ ...q, user: "user:bob", continuationToken: token }),
      "another question",
    );
    await refused(
      engine.listUsersPage({
        object: "doc:1",
        relation: "viewer",
        userFilters: [{ type: "user" }],
        continuationToken: token,
      }),
      "list-objects",
    );
    await refused(other.listObjectsPage({ ...q, continuationToken: token }), "another store");
    // The same question with its fields in another order (and another consistency) is the same listing.
    const same = await engine.listObjectsPage({
      type: "doc",
      relation: "viewer",
      user: "user:anne",
      consistency: "fully_consistent",
      continuationToken: token,
      pageSize: 2,
    });
    expect(same.objects.length).toBe(2);
    for (const pageSize of [0, -1, 1.5, 10_001, "2"]) {
      const error = await rejection(engine.listObjectsPage({ ...q, pageSize: pageSize as number }));
      expect(error.code).toBe("invalid_argument");
    }
    // Once the store no longer keeps the pinned revision (its snapshot retention is 10 s here), the token expires.
    // (The store collects old versions once enough have been deleted.)
    now += 60_000;
    const churn = Array.from({ length: 300 }, (_, i) => ({
      user: `user:c${i}`,
      relation: "viewer",
      object: "doc:x",
    }));
    await engine.write({ writes: churn });
    await engine.write({ deletes: churn });
    now += 60_000;
    await engine.write({ writes: [{ user: "user:y", relation: "viewer", object: "doc:y" }] });
    const expired = await refused(
      engine.listObjectsPage({ ...q, continuationToken: token }),
      "older than the store keeps",
    );
    expect(expired.details?.reason).toBe("expired");
  });
});

describe("batchCheck and paged listings against the reference on random models", () => {
  it("answer as the reference evaluator without caches", async () => {
    await fc.assert(
      fc.asyncProperty(
        scenarioArb({ conditions: true }),
        fc.integer({ min: 1, max: 4 }),
        async ({ model: generated, tuples }, pageSize) => {
          await using engine = await createEngine({ model: generated.program });
          await using oracle = await createEngine({
            model: generated.program,
            store: engine.store,
            evaluator: "reference",
            cache: false,
          });
          if (tuples.length > 0) await engine.write({ writes: tuples });
          const latest = { consistency: "fully_consistent" } as const;
          const checks = [];
          for (const type of generated.types) {
            for (const relation of [...generated.program.types.get(type)!.relations.keys(), "missing"]) {
              for (const id of IDS) {
                for (const user of subjectsOf(generated))
                  checks.push({ user, relation, object: `${type}:${id}` });
              }
            }
          }
          const { result } = await engine.batchCheck({ checks, ...latest });
          const expected = await Promise.all(
            checks.map((c) =>
              oracle.check({ ...c, ...latest }).then(
                (allowed) => [allowed, undefined] as const,
                (error: unknown) => [false, isNexusError(error) ? error.code : String(error)] as const,
              ),
            ),
          );
          expect(result.map((r) => [r.allowed, r.error?.code])).toEqual(expected);

          for (const type of generated.types) {
            for (const relation of generated.program.types.get(type)!.relations.keys()) {
              for (const user of subjectsOf(generated).slice(0, 4)) {
                const q = { user, relation, type };
                let whole: string[] | string;
                try {
                  whole = await oracle.listObjects({ ...q, ...latest });
                } catch (error) {
                  whole = isNexusError(error) ? error.code : String(error);
                }
                let paged: string[] | string = [];
                try {
                  let token = "";
                  do {
                    const page = await engine.listObjectsPage({
                      ...q,
                      ...latest,
                      pageSize,
                      continuationToken: token,
                    });
                    paged.push(...page.objects);
                    token = page.continuationToken;
                  } while (token !== "");
                } catch (error) {
                  paged = isNexusError(error) ? error.code : String(error);
                }
                expect(paged).toEqual(whole);
              }
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});
