/**
 * The ring (src/cluster/ring.ts, on hashring): every key has one owner among the members, the same for rings built
 * from the same members in any order, each member owns about 1/N of the keys, and adding or removing one member of
 * N moves about 1/(N+1) or 1/N of the keys — only the keys the member gains or loses.
 */
import { describe, expect, it } from "vitest";
import { keyMovement, loadOf, Ring } from "../../src/cluster/ring.js";

const keys = Array.from({ length: 20_000 }, (_, i) => `01J${i.toString(36).padStart(10, "0")}`);
const members = (n: number): string[] => Array.from({ length: n }, (_, i) => `127.0.0.1:${8000 + i}-m${i}`);

describe("Ring", () => {
  it("places every key on one member, independently of the order members are given in", () => {
    const a = new Ring(members(5));
    const b = new Ring([...members(5)].reverse());
    expect(a.sameMembers(b)).toBe(true);
    for (const key of keys.slice(0, 2_000)) {
      expect(members(5)).toContain(a.owner(key));
      expect(b.owner(key)).toBe(a.owner(key));
    }
    expect(new Ring([]).owner("x")).toBeUndefined();
  });

  it.each([2, 3, 10])("spreads keys evenly over %i members", (n) => {
    const load = [...loadOf(new Ring(members(n)), keys).values()];
    const mean = keys.length / n;
    for (const count of load) expect(Math.abs(count - mean) / mean).toBeLessThan(0.2);
  });

  it.each([3, 10])("moves about 1/N of the keys when one of %i members joins or leaves", (n) => {
    const before = new Ring(members(n));
    const joined = new Ring([...members(n), "127.0.0.1:9999-new"]);
    const left = new Ring(members(n).slice(1));
    expect(keyMovement(before, joined, keys)).toBeGreaterThan(0.5 / (n + 1));
    expect(keyMovement(before, joined, keys)).toBeLessThan(1.5 / (n + 1));
    expect(keyMovement(before, left, keys)).toBeGreaterThan(0.5 / n);
    expect(keyMovement(before, left, keys)).toBeLessThan(1.5 / n);
    // Only keys the newcomer takes move, and only keys of the leaver.
    for (const key of keys.slice(0, 2_000)) {
      if (joined.owner(key) !== before.owner(key)) expect(joined.owner(key)).toBe("127.0.0.1:9999-new");
      if (left.owner(key) !== before.owner(key)) expect(before.owner(key)).toBe(members(n)[0]);
    }
  });
});
