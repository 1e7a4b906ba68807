/**
 * The result cache keeps read sets (the tuple lists an answer read) only as far as the last slot given one: the
 * WASM kernel's answers carry none. A read set must stay with its own slot, and a slot reused by an answer without
 * one must not keep the read set of the answer it held before (that would reuse an answer across a change to what
 * it read).
 */
import { describe, expect, it } from "vitest";
import { influenceOf } from "../../src/changes/influence.js";
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

const question = (object: string, revision: number) =>
  ({
    tenant: "default",
    subjectTenant: "default",
    object,
    objectType: "doc",
    relation: "viewer",
    subject: { kind: "object", type: "user", id: "anne" },
    user: "user:anne",
    revision,
    now: 0,
    context: undefined,
    contextualTuples: [],
    scope: "viewer",
  }) as unknown as ResolvedCheck;

const changed = (object: string, revision: number) =>
  ({
    revision,
    op: "delete",
    tuple: {
      tenant: "default",
      subjectTenant: "default",
      object,
      objectType: "doc",
      relation: "viewer",
      subject: { kind: "object", type: "user", id: "anne" },
      user: "user:anne",
    },
  }) as unknown as StoredChange;

const readKey = (object: string) => `default\u0000${object}\u0000viewer`;

describe("result cache read sets", () => {
  it("a read set stored after answers without one serves its own slot only", async () => {
    const influence = influenceOf(await compileModelAsync(MODEL));
    const { inner, state } = counting();
    const cache = new ResultCacheResolver(inner, influence);
    const knowledge = { watermark: 1, complete: 0 };
    cache.follow(knowledge);
    for (let i = 0; i < 5; i++) await cache.resolve(question(`doc:${i}`, 1));
    state.reads = [readKey("doc:5")];
    await cache.resolve(question("doc:5", 1));
    state.reads = undefined;
    await cache.resolve(question("doc:6", 1));
    // Anne's grant on doc:9 changes at 2: the subject rule withdraws every answer of hers; the read set keeps doc:5's.
    cache.onChanges([changed("doc:9", 2)]);
    knowledge.watermark = 2;
    const before = state.calls;
    await cache.resolve(question("doc:5", 2));
    expect(state.calls).toBe(before);
    await cache.resolve(question("doc:6", 2));
    await cache.resolve(question("doc:3", 2));
    expect(state.calls).toBe(before + 2);
    // What doc:5's answer read changes at 3: not reused.
    state.allowed = false;
    cache.onChanges([changed("doc:5", 3)]);
    knowledge.watermark = 3;
    expect((await cache.resolve(question("doc:5", 3))).allowed).toBe(false);
  });

  it("a slot reused by an answer without a read set drops the one it held", async () => {
    const influence = influenceOf(await compileModelAsync(MODEL));
    const { inner, state } = counting();
    const cache = new ResultCacheResolver(inner, influence, { maxEntries: 3 });
    const knowledge = { watermark: 1, complete: 0 };
    cache.follow(knowledge);
    state.reads = [readKey("doc:0")];
    await cache.resolve(question("doc:0", 1)); // slot 0
    state.reads = [readKey("doc:1")];
    await cache.resolve(question("doc:1", 1)); // slot 1, kept holding a read set (changes stay interned)
    state.reads = undefined;
    await cache.resolve(question("doc:2", 1)); // slot 2
    await cache.resolve(question("doc:1", 1)); // a hit: slot 1 gets its second chance
    await cache.resolve(question("doc:3", 1)); // evicts slot 0 (doc:0) and takes it, without a read set
    // What doc:3's answer depended on changes at 2 (doc:0's list did not): doc:3 must be evaluated again.
    cache.onChanges([changed("doc:3", 2)]);
    knowledge.watermark = 2;
    state.allowed = false;
    const before = state.calls;
    expect((await cache.resolve(question("doc:3", 2))).allowed).toBe(false);
    expect(state.calls).toBe(before + 1);
    // doc:1's read set is still its own: reused across the change.
    expect((await cache.resolve(question("doc:1", 2))).allowed).toBe(true);
    expect(state.calls).toBe(before + 1);
  });
});
