/**
 * The result cache finds its entries through one open-addressing table (linear probing, removal by backward
 * shift). Against a plain model: after stores, replacements and CLOCK evictions in a table that is kept at most
 * half full (long runs of occupied buckets, removals inside them), every entry the cache holds is reached by its
 * own question and by no other, and the number reached is its size.
 */
import { describe, expect, it } from "vitest";
import { influenceOf } from "../../src/changes/influence.js";
import { compileModelAsync } from "../../src/model/index.js";
import { ResultCacheResolver } from "../../src/pipeline/result-cache.js";
import type { Resolution, ResolvedCheck } from "../../src/pipeline/types.js";
import { seededRandom } from "../../src/util/random.js";
import { DOC_MODEL, docQuestion as question, ruleResolver } from "./result-cache-fixtures.js";

describe("ResultCacheResolver table", () => {
  it("reaches every entry it holds, and only those, through stores, replacements and evictions", async () => {
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    for (const [seed, maxEntries] of [
      [1, 300],
      [2, 1024],
      [3, 1500],
      [4, 57],
    ] as const) {
      const next = seededRandom(seed);
      // The answer changes with the revision: a replaced entry must answer with its newer answer.
      const answerOf = (c: ResolvedCheck): Resolution => ({
        allowed:
          (c.user.length * 7 + c.object.length * 3 + c.revision + (c.relation === "viewer" ? 1 : 0)) % 2 ===
          0,
        revision: c.revision,
        validUntil: Number.POSITIVE_INFINITY,
      });
      const inner = ruleResolver(answerOf);
      const cache = new ResultCacheResolver(inner, influence, { maxEntries });
      const keys: [string, string, string][] = [];
      for (let u = 0; u < 40; u++)
        for (let d = 0; d < 60; d++) keys.push([`user:u${u}`, `doc:${d}`, d % 3 === 0 ? "editor" : "viewer"]);
      // The revision each question was last stored at (its answer then), as the model of what an entry holds.
      const storedAt = new Map<string, number>();
      let revision = 1;
      for (let step = 0; step < 12_000; step++) {
        if (next() < 0.01) revision++;
        // Fresh strings each time (equal text, other identity), as requests bring them.
        const [user, object, relation] = keys[Math.floor(next() * keys.length)]!;
        const c = question(`${user} `.trim(), `${object} `.trim(), relation, revision);
        if (next() < 0.5) {
          await cache.resolve(c);
        } else {
          const batch = [c, question(user, `${object} `.trim(), relation, revision)];
          await cache.resolveMany(batch);
        }
        storedAt.set(`${user} ${object} ${relation}`, revision);
        expect(cache.size).toBeLessThanOrEqual(maxEntries);
      }
      let reached = 0;
      for (const [user, object, relation] of keys) {
        const at = storedAt.get(`${user} ${object} ${relation}`);
        const hit = cache.hit(relation, user, object, at ?? 1, 1000);
        if (hit === undefined) continue;
        reached++;
        expect(at).toBeDefined();
        expect(hit.revision).toBe(at);
        expect(hit.allowed).toBe(answerOf(question(user, object, relation, at!)).allowed);
        // Another scope never finds it.
        const other = relation === "viewer" ? "editor" : "viewer";
        const cross = cache.hit(other, user, object, at!, 1000);
        if (cross !== undefined) expect(storedAt.has(`${user} ${object} ${other}`)).toBe(true);
      }
      expect(reached).toBe(cache.size);
      const [stats] = cache.stats();
      if (maxEntries < keys.length) expect(Number(stats!.extra!.evictions)).toBeGreaterThan(0);
      cache.clear();
      expect(cache.hit(keys[0]![2], keys[0]![0], keys[0]![1], revision, 1000)).toBeUndefined();
    }
  });

  it("reaches every entry after the table grows past its first size (entries placed again), with and without evictions", async () => {
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    const answerOf = (c: ResolvedCheck): Resolution => ({
      allowed: (c.user.length + c.object.length) % 2 === 0,
      revision: c.revision,
      validUntil: Number.POSITIVE_INFINITY,
    });
    const inner = ruleResolver(answerOf);
    for (const [maxEntries, questions] of [
      [50_000, 40_000],
      [20_000, 30_000],
    ] as const) {
      const cache = new ResultCacheResolver(inner, influence, { maxEntries });
      const all: ResolvedCheck[] = [];
      for (let i = 0; i < questions; i++) all.push(question(`user:u${i % 397}`, `doc:${i}`, "viewer", 1));
      for (let i = 0; i < questions; i += 1000) await cache.resolveManyMissed(all.slice(i, i + 1000));
      expect(cache.size).toBe(Math.min(maxEntries, questions));
      let reached = 0;
      for (const c of all) {
        const hit = cache.hit(c.scope!, c.user, c.object, 1, 1000);
        if (hit === undefined) continue;
        reached++;
        expect(hit.allowed).toBe(answerOf(c).allowed);
      }
      expect(reached).toBe(cache.size);
      // The newest questions are all there (CLOCK evicts only entries older than the hand's sweep).
      for (const c of all.slice(-1000)) expect(cache.hit(c.scope!, c.user, c.object, 1, 1000)).toBeDefined();
    }
  });
});
