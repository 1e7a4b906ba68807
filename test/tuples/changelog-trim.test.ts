import { describe, expect, it } from "vitest";
import { Changelog } from "../../src/tuples/changelog.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";

/** A deterministic PRNG (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tupleOf = (n: number): RelationTuple => ({ object: `doc:${n}` }) as unknown as RelationTuple;

describe("Changelog.trim drops whole revisions (binary search over a revision's changes)", () => {
  it("keeps what a change-by-change reference keeps, at every step of random writes", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const next = rng(seed);
      const maxEntries = 1 + Math.floor(next() * 60);
      const log = new Changelog({ maxEntries, maxAgeMs: Number.POSITIVE_INFINITY, snapshotRetentionMs: 0 });
      // Reference: the retained changes as (revision, n); past maxEntries whole revisions go, oldest first (the
      // latest too: the limit is on entries).
      let kept: { revision: number; n: number }[] = [];
      let floor = 0;
      let n = 0;
      for (let revision = 1; revision <= 80; revision++) {
        const size = next() < 0.2 ? 30 + Math.floor(next() * 40) : 1 + Math.floor(next() * 5);
        for (let i = 0; i < size; i++) {
          log.push(revision, next() < 0.8 ? "write" : "delete", tupleOf(n));
          kept.push({ revision, n: n++ });
        }
        log.commit(revision, revision);
        log.trim(revision, revision);
        while (kept.length > maxEntries) {
          const oldest = kept[0]!.revision;
          kept = kept.filter((c) => c.revision !== oldest);
          floor = oldest;
        }
        const got = log.after(floor, Number.MAX_SAFE_INTEGER);
        expect(got.map((c) => [c.revision, (c.tuple as unknown as { object: string }).object])).toEqual(
          kept.map((c) => [c.revision, `doc:${c.n}`]),
        );
        if (floor > 0) expect(() => log.after(floor - 1, 1)).toThrow(/no longer retained/);
      }
    }
  });
});
