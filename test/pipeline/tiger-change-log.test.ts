/**
 * Tiger's change log keeps the newer half of what it was given once past its bound, and moves its floor to the
 * newest change it dropped: against the plain rule (append everything, then drop the older part), under random
 * page sizes (smaller and larger than the bound) and bounds.
 */
import { describe, expect, it } from "vitest";
import { ChangeLog } from "../../src/pipeline/tiger/change-log.js";
import type { StoredChange } from "../../src/tuples/types.js";

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("Tiger's ChangeLog", () => {
  it("holds what appending everything and dropping the older half past the bound holds", () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const next = random(seed);
      const max = 1 + Math.floor(next() * 40);
      const log = new ChangeLog(max);
      let plain: StoredChange[] = [];
      let floor = 0;
      let revision = 0;
      for (let step = 0; step < 300; step++) {
        const size = Math.floor(next() * (next() < 0.2 ? 3 * max : max / 2 + 1));
        const page: StoredChange[] = [];
        for (let i = 0; i < size; i++) {
          if (next() < 0.3) revision++;
          page.push({ revision, op: "write", tuple: { i: `${step}.${i}` } } as unknown as StoredChange);
        }
        log.append(page);
        plain.push(...page);
        if (plain.length > max) {
          const drop = plain.length - (max >>> 1);
          floor = Math.max(floor, plain[drop - 1]!.revision);
          plain = plain.slice(drop);
        }
        expect(log.floor).toBe(floor);
        expect(log.size).toBe(plain.length);
        expect(log.between(-1, revision)).toEqual(plain);
        const low = Math.floor(next() * (revision + 1));
        expect(log.between(low, revision)).toEqual(plain.filter((c) => c.revision > low));
      }
    }
  });

  it("skip forgets what it held and raises its floor, never lowers it", () => {
    const log = new ChangeLog(100);
    const change = (revision: number, i: number) =>
      ({ revision, op: "write", tuple: { i } }) as unknown as StoredChange;
    log.append([change(1, 0), change(2, 1)]);
    log.skip(4);
    expect(log.size).toBe(0);
    expect(log.floor).toBe(4);
    log.skip(3);
    expect(log.floor).toBe(4);
    log.append([change(5, 2)]);
    expect(log.between(4, 5)).toEqual([change(5, 2)]);
  });
});
