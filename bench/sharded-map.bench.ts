/**
 * The store's ShardedMap (src/tuples/sharded-map.ts) against a plain Map, measured in the same run, over 1.1M
 * string keys shaped like the peer workload's objects:
 * - facts: the longest single set() while filling past 2^20 keys (the stall the split is for: one Map doubles its
 *   table inside one set) and the whole fill, each map filled once from empty in this process;
 * - cases: batches of 1,024 gets of keys present (random order) and of keys absent, on the filled maps.
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/sharded-map.bench.ts
 */
import { ShardedMap } from "../src/tuples/sharded-map.js";
import { seededRandom } from "../src/util/random.js";
import { runSuite } from "./harness.js";

const KEYS = 1_100_000;
const BATCH = 1024;
// Flat strings, as a request's JSON hands them over (the peer workload's ids are file:f_<leaf>_<n>).
const keys: string[] = JSON.parse(
  JSON.stringify(Array.from({ length: KEYS }, (_, i) => `file:f_${i % 1000}_${Math.floor(i / 1000)}`)),
);
const absent: string[] = JSON.parse(JSON.stringify(Array.from({ length: BATCH }, (_, i) => `file:g_${i}`)));
const rng = seededRandom(7);
const probes = Array.from({ length: BATCH }, () => keys[Math.floor(rng() * KEYS)]!);

/** Fills `map` with every key, timing each set: the longest one and the whole fill, in milliseconds. */
function fill(map: { set(key: string, value: number): unknown }): { longestMs: number; totalMs: number } {
  let longest = 0;
  const started = performance.now();
  for (let i = 0; i < KEYS; i++) {
    const t = performance.now();
    map.set(keys[i]!, i);
    const took = performance.now() - t;
    if (took > longest) longest = took;
  }
  return { longestMs: longest, totalMs: performance.now() - started };
}

const plain = new Map<string, number>();
const plainFill = fill(plain);
const sharded = new ShardedMap<number>();
const shardedFill = fill(sharded);

// The gets add into `sink`, so no engine can drop them as unused.
let sink = 0;
/** One batch of gets on `map`, a missing key counted as 1. */
function gets(map: { get(key: string): number | undefined }, batch: readonly string[]): number {
  for (const key of batch) sink += map.get(key) ?? 1;
  return sink;
}
await runSuite(
  "sharded-map",
  [
    {
      name: "ShardedMap get, present (1024)",
      opsPerCall: BATCH,
      fn: () => gets(sharded, probes),
    },
    {
      name: "Map get, present (1024)",
      opsPerCall: BATCH,
      fn: () => gets(plain, probes),
    },
    {
      name: "ShardedMap get, absent (1024)",
      opsPerCall: BATCH,
      fn: () => gets(sharded, absent),
    },
    {
      name: "Map get, absent (1024)",
      opsPerCall: BATCH,
      fn: () => gets(plain, absent),
    },
  ],
  {
    comparisons: [
      { subject: "ShardedMap get, present (1024)", peer: "Map get, present (1024)" },
      { subject: "ShardedMap get, absent (1024)", peer: "Map get, absent (1024)" },
    ],
    facts: {
      keys: KEYS,
      "Map: longest single set (ms)": plainFill.longestMs.toFixed(1),
      "ShardedMap: longest single set (ms)": shardedFill.longestMs.toFixed(1),
      "Map: fill (ms)": plainFill.totalMs.toFixed(0),
      "ShardedMap: fill (ms)": shardedFill.totalMs.toFixed(0),
    },
  },
);
