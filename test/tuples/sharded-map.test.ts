/**
 * ShardedMap answers as one Map would, before, while and after it splits into shards (the split begins at 131,072
 * keys and moves them over the sets that follow), through sets, overwrites and deletes of keys that differ at the
 * end, in the middle or only in length.
 */
import { describe, expect, it } from "vitest";
import { ShardedMap, shardOf } from "../../src/tuples/sharded-map.js";
import { seededRandom } from "../../src/util/random.js";

describe("ShardedMap", () => {
  it("agrees with a Map through a split and back down to empty", () => {
    const random = seededRandom(7);
    const model = new Map<string, number>();
    const sharded = new ShardedMap<number>();
    const key = (i: number) =>
      i % 3 === 0 ? `file:r_${i}` : i % 3 === 1 ? `${i}:x:${"a".repeat(i % 7)}` : `${i % 5 === 0 ? "" : i}`;
    const keys = Array.from({ length: 200_000 }, (_, i) => key(i));
    // Up to just below the split, then random sets, overwrites and deletes while the split moves keys (checked
    // as it goes: keys not moved yet, deleted and set again) and after it ended.
    for (let i = 0; model.size < 131_000; i++) {
      model.set(keys[i]!, i);
      sharded.set(keys[i]!, i);
    }
    for (let step = 0; step < 60_000; step++) {
      const k = keys[Math.floor(random() * keys.length)]!;
      if (random() < 0.75) {
        model.set(k, step);
        sharded.set(k, step);
      } else {
        expect(sharded.delete(k)).toBe(model.delete(k));
      }
      if (step % 500 === 0) {
        expect(sharded.size).toBe(model.size);
        for (let j = 0; j < 50; j++) {
          const probe = keys[Math.floor(random() * keys.length)]!;
          expect(sharded.get(probe)).toBe(model.get(probe));
        }
      }
    }
    expect(model.size).toBeGreaterThan(131_072); // it split
    for (const k of keys) expect(sharded.get(k)).toBe(model.get(k));
    for (const k of [...model.keys()]) {
      expect(sharded.delete(k)).toBe(true);
      model.delete(k);
    }
    expect(sharded.size).toBe(0);
    expect(sharded.get("file:r_3")).toBeUndefined();
  });

  it("answers as a Map while a split moves keys: a key deleted, or set again, before it moved", () => {
    const map = new ShardedMap<number>();
    for (let i = 0; i < 131_071; i++) map.set(`k${i}`, i);
    map.set("last", -1); // the split begins
    expect(map.get("k131070")).toBe(131_070); // not moved yet
    expect(map.delete("k131069")).toBe(true);
    expect(map.delete("k131069")).toBe(false);
    map.set("k131068", 7);
    for (let i = 0; i < 20_000; i++) map.set(`n${i}`, i); // the split ends
    expect(map.get("k131069")).toBeUndefined();
    expect(map.get("k131068")).toBe(7);
    expect(map.get("k0")).toBe(0);
    expect(map.get("last")).toBe(-1);
    expect(map.size).toBe(131_072 - 1 + 20_000);
  });

  it("finds the empty key after a split where it put it (review finding: the remembered shard started at 0)", () => {
    const map = new ShardedMap<number>();
    for (let i = 0; i < 131_072; i++) map.set(`k${i}`, i);
    map.set("", 1);
    expect(map.get("k5")).toBe(5);
    expect(map.get("")).toBe(1);
    expect(map.delete("")).toBe(true);
    expect(map.size).toBe(131_072);
  });

  it("spreads ids of one shape over the shards, those that end alike (emails) too", () => {
    const shapes = [
      (i: number) => `user:${String(i).padStart(7, "0")}@example.com`,
      (i: number) => `doc:${String(i).padStart(8, "0")}`,
      (i: number) => `group:${i}#member`,
      (i: number) => `file:r_${i % 10}_${Math.floor(i / 10) % 10}_${i}`,
    ];
    for (const shape of shapes) {
      const counts = new Array<number>(16).fill(0);
      for (let i = 0; i < 50_000; i++) counts[shardOf(shape(i))]!++;
      expect(Math.max(...counts) / 50_000, shape(1)).toBeLessThan(0.08); // even is 6.25%
    }
  });
});
