/**
 * The result cache keeps its entries in slots of flat arrays, reused by CLOCK eviction: a reused slot must never
 * answer for the question that held it before, nor a replaced answer for its older one. Against a plain model of
 * what was stored, under random single and batch questions with answers, instants and revisions that change.
 */
import { describe, expect, it } from "vitest";
import { influenceOf } from "../../src/changes/influence.js";
import { compileModelAsync } from "../../src/model/index.js";
import { ResultCacheResolver } from "../../src/pipeline/result-cache.js";
import type { BatchOutcome, CheckResolver, Resolution, ResolvedCheck } from "../../src/pipeline/types.js";
import { seededRandom } from "../../src/util/random.js";
import { DOC_MODEL, docQuestion as question } from "./result-cache-fixtures.js";

describe("ResultCacheResolver slots", () => {
  it("answer only for the question, revision and instant they were filled for, across evictions and replacements", async () => {
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    for (const seed of [1, 2, 3, 4, 5]) {
      const next = seededRandom(seed);
      // The evaluator's answer to each question at each revision (changes at random as revisions pass).
      const truth = new Map<string, boolean>();
      const answerOf = (c: ResolvedCheck): Resolution => {
        const key = `${c.relation} ${c.user} ${c.object} ${c.revision}`;
        let allowed = truth.get(key);
        if (allowed === undefined) {
          allowed = next() < 0.5;
          truth.set(key, allowed);
        }
        // Some answers expire (validUntil), as answers reading expiring tuples do.
        return {
          allowed,
          revision: c.revision,
          validUntil: next() < 0.2 ? c.now + 5 : Number.POSITIVE_INFINITY,
        };
      };
      let evaluations = 0;
      const inner: CheckResolver = {
        layer: "truth",
        resolve: async (c) => {
          evaluations++;
          return answerOf(c);
        },
        resolveNow: (c) => {
          evaluations++;
          return answerOf(c);
        },
        resolveMany: async (cs) => cs.map(answerOf) as BatchOutcome[],
        resolveManyNow: (cs) => cs.map(answerOf) as BatchOutcome[],
        stats: () => [],
        close: async () => {},
      };
      const maxEntries = 1 + Math.floor(next() * 9);
      const cache = new ResultCacheResolver(inner, influence, { maxEntries });
      let revision = 1;
      let now = 1000;
      const pick = () =>
        question(
          `user:u${Math.floor(next() * 4)}`,
          `doc:${Math.floor(next() * 5)}`,
          next() < 0.5 ? "viewer" : "editor",
          revision,
          now,
        );
      for (let step = 0; step < 3000; step++) {
        const r = next();
        if (r < 0.02) revision++;
        else if (r < 0.05) now += 3;
        if (next() < 0.7) {
          const c = pick();
          const got = next() < 0.5 ? await cache.resolve(c) : await cache.resolveNow(c);
          expect(got.allowed).toBe(truth.get(`${c.relation} ${c.user} ${c.object} ${c.revision}`));
          expect(got.revision).toBe(c.revision);
        } else {
          const cs = Array.from({ length: 1 + Math.floor(next() * 6) }, pick);
          const got = await cache.resolveMany(cs);
          cs.forEach((c, i) => {
            const o = got[i] as Resolution;
            expect(o.allowed).toBe(truth.get(`${c.relation} ${c.user} ${c.object} ${c.revision}`));
          });
        }
        expect(cache.size).toBeLessThanOrEqual(maxEntries);
      }
      // Something was reused, something evicted.
      const [stats] = cache.stats();
      expect(stats!.hits).toBeGreaterThan(0);
      expect(Number(stats!.extra!.evictions)).toBeGreaterThan(0);
      expect(evaluations).toBeGreaterThan(0);
    }
  });

  it("store each answer in one slot every question reaches, when the store follows its miss (remembered) or comes later", async () => {
    const influence = influenceOf(await compileModelAsync(DOC_MODEL));
    for (const seed of [11, 12, 13, 14, 15, 16]) {
      const next = seededRandom(seed);
      const answerOf = (c: ResolvedCheck): Resolution => ({
        allowed: (c.user.length + c.object.length + c.relation.length) % 2 === 0,
        revision: c.revision,
        validUntil: Number.POSITIVE_INFINITY,
      });
      // Some answers wait (a promise), so their stores come after other questions' lookups, misses and stores.
      const pending: (() => void)[] = [];
      const later = <T>(value: T): Promise<T> =>
        new Promise((resolve) => {
          pending.push(() => resolve(value));
        });
      const inner: CheckResolver = {
        layer: "truth",
        resolve: async (c) => answerOf(c),
        resolveNow: (c) => (next() < 0.4 ? later(answerOf(c)) : answerOf(c)),
        resolveMany: async (cs) => cs.map(answerOf) as BatchOutcome[],
        resolveManyNow: (cs) =>
          next() < 0.4 ? later(cs.map(answerOf) as BatchOutcome[]) : (cs.map(answerOf) as BatchOutcome[]),
        stats: () => [],
        close: async () => {},
      };
      const maxEntries = 3 + Math.floor(next() * 12);
      const cache = new ResultCacheResolver(inner, influence, { maxEntries });
      const all: ResolvedCheck[] = [];
      for (const relation of ["viewer", "editor"])
        for (let u = 0; u < 4; u++)
          for (let d = 0; d < 5; d++) all.push(question(`user:u${u}`, `doc:${d}`, relation, 1, 1000));
      // Fresh string objects each time (equal text, other identity), as requests bring them.
      const pick = (): ResolvedCheck => {
        const c = all[Math.floor(next() * all.length)]!;
        return question(`${c.user} `.trim(), `${c.object} `.trim(), c.relation, 1, 1000);
      };
      const settled: Promise<unknown>[] = [];
      for (let step = 0; step < 2000; step++) {
        const r = next();
        if (r < 0.5) {
          const c = pick();
          const hit = cache.hit(c.scope!, c.user, c.object, c.revision, c.now);
          const got = hit ?? cache.resolveMissedNow(c);
          settled.push(Promise.resolve(got).then((o) => expect(o.allowed).toBe(answerOf(c).allowed)));
        } else if (r < 0.8) {
          const cs = Array.from({ length: 1 + Math.floor(next() * 5) }, pick);
          const missed = cs.filter(
            (c) => cache.hit(c.scope!, c.user, c.object, c.revision, c.now) === undefined,
          );
          settled.push(
            Promise.resolve(cache.resolveManyMissedNow(missed)).then((got) =>
              missed.forEach((c, i) => {
                expect((got[i] as Resolution).allowed).toBe(answerOf(c).allowed);
              }),
            ),
          );
        } else {
          // Let some waiting answers arrive (their stores run now).
          for (let k = Math.floor(next() * pending.length); k > 0; k--) pending.shift()!();
          await Promise.resolve();
        }
        expect(cache.size).toBeLessThanOrEqual(maxEntries);
      }
      while (pending.length > 0) pending.shift()!();
      await Promise.all(settled);
      // Every slot in use is reached by exactly one question (no slot left behind by a store that took a stale
      // miss as its lookup), and each such question answers from it.
      let reached = 0;
      for (const c of all) {
        const hit = cache.hit(c.scope!, c.user, c.object, c.revision, c.now);
        if (hit === undefined) continue;
        reached++;
        expect(hit.allowed).toBe(answerOf(c).allowed);
      }
      expect(reached).toBe(cache.size);
    }
  });
});
