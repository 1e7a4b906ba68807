/**
 * The repeated-check path was written so that a hit runs the code a miss ran before it (V8 compiles it from what
 * had run; see CheckChain.check): counts taken without a branch on the outcome, a ring that drops its oldest
 * without a branch on fullness, and the result cache's lookup run once a process on a scratch cache. These tests
 * hold what that must not change: the counts, the ring's order and drops, and that the scratch cache leaves no
 * trace in a real one.
 */
import { describe, expect, it } from "vitest";
import { influenceOf } from "../../src/changes/influence.js";
import { createEngine } from "../../src/engine/engine.js";
import { compileModel } from "../../src/model/index.js";
import { isCheckField } from "../../src/pipeline/pipeline.js";
import { ResultCacheResolver } from "../../src/pipeline/result-cache.js";
import type { CheckResolver, Resolution, ResolvedCheck } from "../../src/pipeline/types.js";
import { Observations } from "../../src/pipeline/warming/observations.js";
import { REQUEST_FIELDS } from "../../src/request/requests.js";

const MODEL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`;

describe("the repeated-check path", () => {
  it("counts a hit as a validated request and a revision read, a miss once, by its own path", async () => {
    await using engine = await createEngine({ model: MODEL, cache: { warming: false } });
    const { token } = await engine.write({
      writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }],
    });
    const withToken = { atLeastAsFresh: token };
    const before = engine.stats().chain!;
    // Two misses (one per consistency), then three hits each.
    for (let pass = 0; pass < 4; pass++) {
      expect(
        await engine.check({
          user: "user:anne",
          relation: "viewer",
          object: "doc:1",
          consistency: withToken,
        }),
      ).toBe(true);
      expect(await engine.check({ user: "user:bob", relation: "viewer", object: "doc:1" })).toBe(false);
    }
    const after = engine.stats().chain!;
    expect(after.validate.requests - before.validate.requests).toBe(8);
    expect(after.validate.rejected - before.validate.rejected).toBe(0);
    expect(after.revision.requests - before.revision.requests).toBe(8);
    expect(after.revision.explicit - before.revision.explicit).toBe(4);
    expect(after.revision.windowHits - before.revision.windowHits).toBe(4);
    const cache = (s: typeof after) => s.layers.find((layer) => layer.layer === "result-cache")!;
    expect(cache(after).hits - cache(before).hits).toBe(6);
    expect(cache(after).requests - cache(before).requests).toBe(8);
  });

  it("still refuses, as validation does, what the shortcut must not answer around it", async () => {
    await using engine = await createEngine({ model: MODEL });
    await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] });
    const plain = { user: "user:anne", relation: "viewer", object: "doc:1" };
    for (let pass = 0; pass < 3; pass++) expect(await engine.check(plain)).toBe(true);
    await expect(engine.check({ ...plain, extra: 1 } as never)).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(engine.check({ ...plain, relation: "viewer\u0000x" })).rejects.toThrow();
    await expect(engine.check({ ...plain, tenant: "a\u0000b" })).rejects.toThrow();
    await expect(engine.check({ ...plain, subjectTenant: "a\u0000b" })).rejects.toThrow();
  });

  it("hands every failure of engine.check back as a rejection, never a throw", async () => {
    let failClock = false;
    const engine = await createEngine({
      model: MODEL,
      clock: () => {
        if (failClock) throw new Error("clock failed");
        return Date.now();
      },
    });
    const plain = { user: "user:anne", relation: "viewer", object: "doc:1" };
    expect(await engine.check(plain)).toBe(false);
    failClock = true;
    const failed = engine.check(plain);
    await expect(failed).rejects.toThrow("clock failed");
    failClock = false;
    await expect(engine.check(plain, { bogus: 1 } as never)).rejects.toMatchObject({
      code: "invalid_argument",
    });
    expect(await engine.check(plain, undefined)).toBe(false);
    // null is not a missing argument (review finding: the short path took it for no options; checkBulk refuses it).
    await expect(engine.check(plain, null as never)).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(engine.checkBulk([plain], null as never)).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await engine.close();
    await expect(engine.check(plain)).rejects.toMatchObject({ code: "closed" });
  });

  it("refuses a result cache size that is not a whole number ≥ 0 when the engine is created", async () => {
    // Review findings: maxEntries NaN hung the first stored answer (a free bucket looked for in an empty table);
    // 2.5 handed out a slot past the arrays' end, read back as a denial, or as an answer kept across a revoke.
    for (const maxEntries of [Number.NaN, 2.5, -1, Number.POSITIVE_INFINITY, "5" as never]) {
      await expect(
        createEngine({ model: MODEL, cache: { resultCache: { maxEntries } } }),
      ).rejects.toMatchObject({
        code: "invalid_argument",
      });
    }
    await using engine = await createEngine({ model: MODEL, cache: { resultCache: { maxEntries: 0 } } });
    expect(await engine.check({ user: "user:anne", relation: "viewer", object: "doc:1" })).toBe(false);
  });

  it("takes as a check's fields exactly validation's (isCheckField against REQUEST_FIELDS.check)", () => {
    // Update isCheckField's switch with REQUEST_FIELDS.check: a field only the switch knew would let the shortcut
    // answer a request validation refuses.
    expect([...REQUEST_FIELDS.check].sort()).toEqual(
      [
        "context",
        "contextualTuples",
        "consistency",
        "object",
        "relation",
        "subjectTenant",
        "tenant",
        "user",
      ].sort(),
    );
    for (const field of REQUEST_FIELDS.check) expect(isCheckField(field)).toBe(true);
    for (const field of [
      "",
      "users",
      "objects",
      "type",
      "signal",
      "__proto__",
      "toString",
      "User",
      "user ",
    ]) {
      expect(isCheckField(field)).toBe(false);
    }
  });

  it("leaves a new result cache empty and uncounted (the lookup runs on a scratch cache)", async () => {
    const program = compileModel(MODEL);
    const answer: Resolution = { allowed: true, revision: 1, validUntil: Number.POSITIVE_INFINITY };
    let asked = 0;
    const inner: CheckResolver = {
      layer: "inner",
      resolve: async () => {
        asked++;
        return answer;
      },
      resolveMany: async (checks) => checks.map(() => answer),
      stats: () => [],
      close: async () => {},
    };
    const cache = new ResultCacheResolver(inner, influenceOf(program));
    expect(cache.size).toBe(0);
    const [stats] = cache.stats();
    expect(stats).toMatchObject({ requests: 0, hits: 0, misses: 0 });
    expect(cache.allowedAt("viewer", "user:a", "doc:1", 1, 1)).toBeUndefined();
    const check: ResolvedCheck = {
      tenant: "default",
      subjectTenant: "default",
      object: "doc:1",
      objectType: "doc",
      relation: "viewer",
      subject: { kind: "object", type: "user", id: "a" },
      user: "user:a",
      revision: 1,
      now: 1,
      context: undefined,
      contextualTuples: [],
      scope: "viewer",
    };
    expect((await cache.resolveMissed(check)).allowed).toBe(true);
    expect(asked).toBe(1);
    expect(cache.allowedAt("viewer", "user:a", "doc:1", 1, 1)).toBe(true);
    // Expired, and computed later than asked: not answered.
    expect(cache.allowedAt("viewer", "user:a", "doc:1", 1, 0)).toBeUndefined();
    expect(cache.stats()[0]).toMatchObject({ requests: 2, hits: 1, misses: 1 });
  });

  it("keeps the newest accesses of a full ring, oldest first, and reports each drop", () => {
    const ring = new Observations(3);
    const dropped: boolean[] = [];
    for (let i = 0; i < 7; i++) {
      dropped.push(ring.pushAccess(`user:${i}`, "viewer", "doc:1", undefined, undefined, true, i));
    }
    expect(dropped).toEqual([false, false, false, true, true, true, true]);
    expect(ring.length).toBe(3);
    const users: string[] = [];
    while (ring.length > 0) users.push(ring.shiftAccess().user);
    expect(users).toEqual(["user:4", "user:5", "user:6"]);
    ring.pushAccess("user:7", "viewer", "doc:1", undefined, undefined, true, 7);
    expect(ring.shiftAccess().user).toBe("user:7");
  });
});
