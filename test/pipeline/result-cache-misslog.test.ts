/**
 * The result cache remembers its recent misses with their hashes, so storing a batch's answers does not hash each
 * question again, and readies room for a whole batch before storing it. A store may take a remembered hash only
 * for the very same question: batches as the pipeline sends them (some misses dropped before the store, as a
 * request failing validation is; a question twice; lookups of other batches in between; answers that arrive
 * later; batches longer than the log), and every entry must still be reached by its own question, with its
 * answer, and the size stay within maxEntries.
 */
import { describe, expect, it } from "vitest";
import { influenceOf } from "../../src/changes/influence.js";
import { compileModelAsync } from "../../src/model/index.js";
import { ResultCacheResolver } from "../../src/pipeline/result-cache.js";
import type { BatchOutcome, CheckResolver, Resolution, ResolvedCheck } from "../../src/pipeline/types.js";
import { seededRandom } from "../../src/util/random.js";
import { DOC_MODEL, docQuestion as question, ruleResolver } from "./result-cache-fixtures.js";

const answerOf = (c: ResolvedCheck): Resolution => ({
  allowed: (c.user.length * 5 + c.object.length + (c.relation === "viewer" ? 1 : 0)) % 2 === 0,
  revision: c.revision,
  validUntil: Number.POSITIVE_INFINITY,
});

/** Fresh strings of the same text (another identity), as each request brings its own. */
const fresh = (text: string): string => `${text} `.trim();

/** Every question of `asked` the cache holds answers with its answer; returns how many it holds. */
function reachedOf(cache: ResultCacheResolver, asked: Iterable<string>): number {
  let reached = 0;
  for (const key of asked) {
    const [relation, user, object] = key.split(" ") as [string, string, string];
    const hit = cache.hit(relation, fresh(user), fresh(object), 1, 1000);
    if (hit === undefined) continue;
    reached++;
    expect(hit.allowed).toBe(answerOf(question(user, object, relation, 1)).allowed);
  }
  return reached;
}

describe("ResultCacheResolver miss log", () => {
  it("stores batches whose misses were dropped, repeated or interleaved under their own questions", async () => {
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    for (const [seed, maxEntries, wait] of [
      [1, 100_000, false],
      [2, 100_000, true],
      [3, 700, false],
      [4, 3, true],
      [5, 0, false],
    ] as const) {
      const next = seededRandom(seed);
      const sync = ruleResolver(answerOf);
      // Answers that arrive a turn later (the pipeline's lookups of other requests can run in between).
      const later: CheckResolver = {
        ...sync,
        resolveNow: undefined,
        resolveManyNow: undefined,
        resolveMany: async (cs) => {
          await Promise.resolve();
          return cs.map(answerOf) as BatchOutcome[];
        },
      };
      const cache = new ResultCacheResolver(wait ? later : sync, influence, { maxEntries });
      const asked = new Set<string>();
      const pick = (): ResolvedCheck =>
        question(
          fresh(`user:u${Math.floor(next() * 30)}`),
          fresh(`doc:${Math.floor(next() * 400)}`),
          next() < 0.5 ? "viewer" : "editor",
          1,
        );
      const pending: Promise<unknown>[] = [];
      for (let round = 0; round < 60; round++) {
        const size = 1 + Math.floor(next() * (next() < 0.1 ? 3000 : 200));
        const batch: ResolvedCheck[] = [];
        for (let i = 0; i < size; i++) {
          // A question asked twice in one batch, sometimes.
          batch.push(
            i > 0 && next() < 0.05
              ? question(batch[i - 1]!.user, fresh(batch[i - 1]!.object), batch[i - 1]!.relation, 1)
              : pick(),
          );
        }
        // The pipeline's shortcut looks each one up; those that missed go on, less some (failed validation).
        const missed = batch.filter(
          (c) => cache.allowedAt(c.scope!, c.user, c.object, 1, 1000) === undefined,
        );
        const stored = missed.filter(() => next() < 0.9);
        for (const c of stored) asked.add(`${c.relation} ${c.user} ${c.object}`);
        const done = cache.resolveManyMissed(stored);
        if (wait && next() < 0.5) {
          // Another batch's lookups before this one's answers are stored.
          for (let i = 0; i < 20; i++) {
            const c = pick();
            cache.allowedAt(c.scope!, c.user, c.object, 1, 1000);
          }
          pending.push(done);
        } else {
          await done;
        }
        expect(cache.size).toBeLessThanOrEqual(maxEntries);
      }
      await Promise.all(pending);
      expect(reachedOf(cache, asked)).toBe(cache.size);
      if (maxEntries >= asked.size) expect(cache.size).toBe(asked.size);
      else expect(cache.size).toBe(maxEntries);
    }
  });

  it("stores single checks under their own questions when another lookup came between the miss and the store", async () => {
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    const cache = new ResultCacheResolver(ruleResolver(answerOf), influence);
    const asked = new Set<string>();
    const next = seededRandom(9);
    for (let i = 0; i < 3000; i++) {
      const c = question(
        fresh(`user:u${Math.floor(next() * 20)}`),
        fresh(`doc:${Math.floor(next() * 90)}`),
        "viewer",
        1,
      );
      if (cache.allowedAt(c.scope!, c.user, c.object, 1, 1000) !== undefined) continue;
      if (next() < 0.3) cache.allowedAt("viewer", fresh("user:other"), fresh(`doc:${i}`), 1, 1000);
      await cache.resolveMissed(c);
      asked.add(`viewer ${c.user} ${c.object}`);
    }
    expect(cache.size).toBe(asked.size);
    expect(reachedOf(cache, asked)).toBe(asked.size);
  });

  it("grows once for a batch, to the batch's need and no further than maxEntries", async () => {
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    for (const [maxEntries, count] of [
      [5000, 4500],
      [1500, 4000],
      [1024, 1024],
      [1025, 3000],
    ] as const) {
      const cache = new ResultCacheResolver(ruleResolver(answerOf), influence, { maxEntries });
      const all: ResolvedCheck[] = [];
      for (let i = 0; i < count; i++) all.push(question(`user:u${i % 13}`, `doc:${i}`, "viewer", 1));
      const missed = all.filter((c) => cache.allowedAt(c.scope!, c.user, c.object, 1, 1000) === undefined);
      await cache.resolveManyMissed(missed);
      expect(cache.size).toBe(Math.min(maxEntries, count));
      let reached = 0;
      for (const c of all) if (cache.hit("viewer", c.user, fresh(c.object), 1, 1000) !== undefined) reached++;
      expect(reached).toBe(cache.size);
      // The newest questions are all there (the batch's evictions took the oldest).
      for (const c of all.slice(-Math.min(maxEntries, 500))) {
        expect(cache.hit("viewer", c.user, c.object, 1, 1000)).toBeDefined();
      }
    }
  });
  it("forgets its logged misses on clear: a later question of empty strings is stored under its own hash", async () => {
    // Not reachable through validation (no empty user or object), but clear() must leave nothing a store could
    // take: a blanked log slot kept its hash, and the empty strings matched it.
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    const cache = new ResultCacheResolver(ruleResolver(answerOf), influence);
    for (let i = 0; i < 10; i++) cache.allowedAt("viewer", "user:a", `doc:${i}`, 1, 1000);
    cache.clear();
    const empty = {
      ...question("user:x", "doc:1", "viewer", 1),
      user: "",
      object: "",
      scope: "",
    } as ResolvedCheck;
    await cache.resolveManyMissed([empty]);
    expect(cache.size).toBe(1);
    expect(cache.hit("", "", "", 1, 1000)).toBeDefined();
  });
});
