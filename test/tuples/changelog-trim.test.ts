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

  it("pages changes of every kind exactly, with any limit, through trims that compact the lists", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const next = rng(1000 + seed);
      const maxEntries = 200 + Math.floor(next() * 2000);
      const log = new Changelog({ maxEntries, maxAgeMs: Number.POSITIVE_INFINITY, snapshotRetentionMs: 0 });
      type Ref = { revision: number; op: "write" | "delete"; expired: boolean; n: number };
      let kept: Ref[] = [];
      let floor = 0;
      let n = 0;
      for (let revision = 1; revision <= 60; revision++) {
        // Runs of one kind and single changes of mixed kinds, as writes that delete, replace expired tuples, expire.
        const size = next() < 0.3 ? 100 + Math.floor(next() * 400) : 1 + Math.floor(next() * 6);
        const mixed = next() < 0.5;
        for (let i = 0; i < size; i++) {
          const r = mixed ? next() : 0.1;
          const op = r < 0.6 ? "write" : "delete";
          const expired = op === "delete" && r > 0.8;
          log.push(revision, op, tupleOf(n), expired);
          kept.push({ revision, op, expired, n: n++ });
        }
        log.commit(revision, revision);
        log.trim(revision, revision);
        while (kept.length > maxEntries) {
          const oldest = kept[0]!.revision;
          kept = kept.filter((c) => c.revision !== oldest);
          floor = oldest;
        }
        const shape = (c: {
          revision: number;
          op: string;
          expired?: boolean;
          tuple?: unknown;
          n?: number;
        }) => [
          c.revision,
          c.op,
          c.expired === true,
          c.tuple !== undefined ? (c.tuple as { object: string }).object : `doc:${c.n}`,
        ];
        expect(log.after(floor, Number.MAX_SAFE_INTEGER).map(shape)).toEqual(kept.map(shape));
        // Paged from a random retained revision with a small limit: whole revisions, at least `limit` changes.
        const after = floor + Math.floor(next() * (revision - floor + 1));
        const limit = 1 + Math.floor(next() * 50);
        const rest = kept.filter((c) => c.revision > after);
        let end = Math.min(rest.length, limit);
        while (end < rest.length && end > 0 && rest[end]!.revision === rest[end - 1]!.revision) end++;
        expect(log.after(after, limit).map(shape)).toEqual(rest.slice(0, end).map(shape));
        // What a checkpoint keeps, and a changelog restored from it, page the same.
        const state = log.exportState();
        const restored = new Changelog({
          maxEntries,
          maxAgeMs: Number.POSITIVE_INFINITY,
          snapshotRetentionMs: 0,
        });
        restored.restoreState(state);
        expect(restored.after(floor, Number.MAX_SAFE_INTEGER).map(shape)).toEqual(kept.map(shape));
      }
    }
  });
});
