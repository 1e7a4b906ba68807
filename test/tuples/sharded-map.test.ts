/**
 * ShardedMap answers as one Map would, before and after it splits into shards (at 16,384 keys), through sets,
 * overwrites and deletes of keys that differ at the end, in the middle or only in length.
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
      i % 3 === 0 ? `file:r_${i}` : i % 3 === 1 ? `${i}:x:${"a".repeat(i % 7)}` : "";
    const keys = Array.from({ length: 40_000 }, (_, i) => key(i));
    for (let step = 0; step < 120_000; step++) {
      const k = keys[Math.floor(random() * keys.length)]!;
      if (random() < 0.75) {
        model.set(k, step);
        sharded.set(k, step);
      } else {
        expect(sharded.delete(k)).toBe(model.delete(k));
      }
      if (step % 5000 === 0) expect(sharded.size).toBe(model.size);
    }
    expect(model.size).toBeGreaterThan(16_384); // it split
    for (const k of keys) expect(sharded.get(k)).toBe(model.get(k));
    for (const k of [...model.keys()]) {
      sharded.delete(k);
      model.delete(k);
    }
    expect(sharded.size).toBe(0);
    expect(sharded.get("file:r_3")).toBeUndefined();
  });

  it("finds the empty key after a split where it put it (review finding: the remembered shard started at 0)", () => {
    const map = new ShardedMap<number>();
    for (let i = 0; i < 16_384; i++) map.set(`k${i}`, i);
    map.set("", 1);
    expect(map.get("k5")).toBe(5);
    expect(map.get("")).toBe(1);
    expect(map.delete("")).toBe(true);
    expect(map.size).toBe(16_384);
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
