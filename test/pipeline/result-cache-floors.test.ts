/**
 * The result cache forgets tracking data when its tables fill up; what it forgot must never let an answer be
 * reused across a change. Two cases a review found (both answered the old revision's `true` after a delete):
 * - the read-set table overflows while the feed is inside a large revision handed over in parts (the cache has
 *   the revision's changes, the watermark has not moved yet): the floor must cover what was received;
 * - the per-subject table overflows in the middle of a revision: the floor must cover that whole revision.
 * And the cache shortcut in front of validation must not take a relation or tenant holding a NUL (the scope is
 * NUL-separated text, so such a request could name another tenant's cached answer).
 */
import { describe, expect, it } from "vitest";
import { influenceOf } from "../../src/changes/influence.js";
import { createEngine } from "../../src/engine/engine.js";
import { compileModelAsync } from "../../src/model/index.js";
import { ResultCacheResolver } from "../../src/pipeline/result-cache.js";
import type { CheckResolver, ResolvedCheck } from "../../src/pipeline/types.js";
import type { StoredChange } from "../../src/tuples/types.js";

const MODEL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]`;

/** An evaluator stand-in that counts calls and answers what the test sets. */
function counting() {
  const state = { calls: 0, allowed: true, reads: undefined as string[] | undefined };
  const inner = {
    layer: "counting",
    async resolve(c: ResolvedCheck) {
      state.calls++;
      return {
        allowed: state.allowed,
        revision: c.revision,
        validUntil: Number.POSITIVE_INFINITY,
        ...(state.reads ? { reads: state.reads } : {}),
      };
    },
    async resolveMany(cs: readonly ResolvedCheck[]) {
      return Promise.all(cs.map((c) => inner.resolve(c)));
    },
    stats: () => [],
    close: async () => {},
  } as unknown as CheckResolver;
  return { inner, state };
}

const question = (user: string, object: string, revision: number) =>
  ({
    tenant: "default",
    subjectTenant: "default",
    object,
    objectType: "doc",
    relation: "viewer",
    subject: { kind: "object", type: "user", id: user.slice(5) },
    user,
    revision,
    now: 0,
    context: undefined,
    contextualTuples: [],
    scope: "viewer",
  }) as unknown as ResolvedCheck;

const deleted = (user: string, object: string, revision: number) =>
  ({
    revision,
    op: "delete",
    tuple: {
      tenant: "default",
      subjectTenant: "default",
      object,
      objectType: "doc",
      relation: "viewer",
      subject: { kind: "object", type: "user", id: user.slice(5) },
      user,
    },
  }) as unknown as StoredChange;

const readKey = (object: string) => `default\u0000${object}\u0000viewer`;

describe("result cache floors", () => {
  it("a read-set overflow inside a revision handed over in parts forgets through what was received", async () => {
    const influence = influenceOf(await compileModelAsync(MODEL));
    const { inner, state } = counting();
    const cache = new ResultCacheResolver(inner, influence, { maxTrackedLists: 4 });
    const knowledge = { watermark: 1, complete: 0 };
    cache.follow(knowledge);
    state.reads = [readKey("doc:0")];
    await cache.resolve(question("user:anne", "doc:0", 1)); // an entry with reads: changes are interned
    // Revision 2 deletes anne's grant on doc:1; the watermark has not moved yet (the feed is between parts).
    cache.onChanges([deleted("user:anne", "doc:1", 2)]);
    // An answer computed at revision 1 is stored meanwhile, and its reads overflow the tracking table.
    state.reads = [readKey("doc:1"), "a", "b", "c"];
    await cache.resolve(question("user:anne", "doc:1", 1));
    knowledge.watermark = 2;
    state.allowed = false;
    const before = state.calls;
    expect((await cache.resolve(question("user:anne", "doc:1", 2))).allowed).toBe(false);
    expect(state.calls).toBe(before + 1);
  });

  it("a per-subject overflow in the middle of a revision forgets that whole revision", async () => {
    const influence = influenceOf(await compileModelAsync(MODEL));
    const { inner, state } = counting();
    const cache = new ResultCacheResolver(inner, influence, { maxTrackedSubjects: 1 });
    const knowledge = { watermark: 1, complete: 0 };
    cache.follow(knowledge);
    await cache.resolve(question("user:anne", "doc:1", 1));
    cache.onChanges([deleted("user:anne", "doc:1", 2), deleted("user:bob", "doc:1", 2)]);
    knowledge.watermark = 2;
    state.allowed = false;
    expect((await cache.resolve(question("user:anne", "doc:1", 2))).allowed).toBe(false);
  });

  it("the cache shortcut leaves a relation or tenant holding a NUL to validation", async () => {
    await using engine = await createEngine({ model: MODEL });
    await engine.write({
      tenant: "acme",
      writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }],
    });
    expect(
      await engine.check({ tenant: "acme", user: "user:anne", relation: "viewer", object: "doc:1" }),
    ).toBe(true);
    for (const forged of [
      { user: "user:anne", relation: "acme\u0000acme\u0000viewer\u0000", object: "doc:1" },
      { tenant: "acme\u0000acme", user: "user:anne", relation: "viewer", object: "doc:1" },
      { tenant: "acme", subjectTenant: "acme\u0000viewer", user: "user:anne", relation: "", object: "doc:1" },
    ]) {
      await expect(engine.check(forged)).rejects.toMatchObject({ name: "NexusError" });
    }
  });
});
