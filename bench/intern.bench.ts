/**
 * Interner and memo tables (WASM) against the fastest honest JS equivalents, measured in the same run:
 * - intern: Map<string, number> over the very same string objects (V8 caches a string's hash in the string, so
 *   this is Map's best case; strings freshly decoded from a request would pay for hashing too).
 * - memo arity 2: Map<number, number> keyed a * 2^21 + b (ids below 2^21).
 * - memo arity 3: Map<string, number> keyed `${a},${b},${c}` (any u32 ids), and, as the most favourable JS peer,
 *   Map<number, number> keyed a * 2^34 + b * 2^17 + c (only correct while ids stay below 2^17).
 * Batched cases do N operations per timed call; ops/s is per operation.
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/intern.bench.ts
 */
import { Interner, MemoTable } from "../src/kernels/intern.js";
import { seededRandom as mulberry32 } from "../src/util/random.js";
import { ready } from "../src/wasm/loader.js";
import { type BenchCase, runSuite } from "./harness.js";

await ready();

const gc = (globalThis as { gc?: () => void }).gc;
function heapUsed(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

const rng = mulberry32(2024);

// ---- interner ---------------------------------------------------------------------------------------------------
const STRINGS = 200_000;
const STRING_BATCH = 1024;
// Flat strings, as JSON.parse hands them over from a request. (Strings built by `+` or templates are V8 cons
// strings, for which the per-character encoding of single calls is about 1.5-2x slower; batches are not affected.)
const texts: string[] = JSON.parse(
  JSON.stringify(
    Array.from({ length: STRINGS }, (_, i) =>
      i % 3 === 0
        ? `document:${(i * 7919) % 1_000_003}`
        : i % 3 === 1
          ? `user:${i * 31}`
          : `folder:${i}#parent`,
    ),
  ),
);
// Probe order: random, so both sides pay for cache misses the same way.
const probeTexts = Array.from({ length: STRINGS }, () => texts[Math.floor(rng() * STRINGS)]!);
const textBatches: string[][] = [];
for (let i = 0; i + STRING_BATCH <= STRINGS; i += STRING_BATCH) {
  textBatches.push(probeTexts.slice(i, i + STRING_BATCH));
}

const interner = new Interner();
const internerBase = interner.memoryBytes;
interner.internMany(texts);
const internerBytesPerSymbol = (interner.memoryBytes - internerBase) / interner.size;
let utf8Bytes = 0;
for (const t of texts) utf8Bytes += t.length; // all ASCII

const heapBeforeMap = heapUsed();
const textMap = new Map<string, number>();
for (let i = 0; i < texts.length; i++) textMap.set(texts[i]!, i);
const mapBytesPerString = (heapUsed() - heapBeforeMap) / textMap.size;
// What the strings themselves cost on the JS heap (a Map keeps them alive; the interner keeps UTF-8 bytes instead).
const heapBeforeCopies = heapUsed();
const copies: string[] = JSON.parse(JSON.stringify(texts));
const jsBytesPerString = (heapUsed() - heapBeforeCopies - 8 * copies.length) / copies.length;
const symbolsOut = new Uint32Array(STRING_BATCH);
const symbols = interner.lookupMany(probeTexts);
const reverse = texts.slice();

let cursor = 0;
let sink = 0;
const nextBatch = () => textBatches[cursor++ % textBatches.length]!;

const internCases: BenchCase[] = [
  {
    name: "Interner.lookupMany (batch 1024)",
    opsPerCall: STRING_BATCH,
    fn: () => interner.lookupMany(nextBatch(), symbolsOut),
  },
  {
    name: "Interner.internMany, all present (batch 1024)",
    opsPerCall: STRING_BATCH,
    fn: () => interner.internMany(nextBatch(), symbolsOut),
  },
  {
    name: "Interner.lookup (single calls)",
    opsPerCall: STRING_BATCH,
    fn: () => {
      const batch = nextBatch();
      for (let i = 0; i < batch.length; i++) sink += interner.lookup(batch[i]!)!;
    },
  },
  {
    name: "Map<string,number>.get",
    opsPerCall: STRING_BATCH,
    fn: () => {
      const batch = nextBatch();
      for (let i = 0; i < batch.length; i++) symbolsOut[i] = textMap.get(batch[i]!)!;
    },
  },
  {
    name: "Interner.resolve (single calls)",
    opsPerCall: STRING_BATCH,
    fn: () => {
      const start = (cursor++ * STRING_BATCH) % (STRINGS - STRING_BATCH);
      for (let i = 0; i < STRING_BATCH; i++) sink += interner.resolve(symbols[start + i]!).length;
    },
  },
  {
    name: "string[] index (reverse peer)",
    opsPerCall: STRING_BATCH,
    fn: () => {
      const start = (cursor++ * STRING_BATCH) % (STRINGS - STRING_BATCH);
      for (let i = 0; i < STRING_BATCH; i++) sink += reverse[symbols[start + i]!]!.length;
    },
  },
];

// ---- memo tables ------------------------------------------------------------------------------------------------
const ENTRIES = 250_000;
const KEY_BATCH = 4096;
const ID_RANGE = 1 << 17; // ids below 2^17 so the numeric Map keys stay exact for arity 3 too

const keys2 = Uint32Array.from({ length: 2 * ENTRIES }, () => Math.floor(rng() * ID_RANGE));
const keys3 = Uint32Array.from({ length: 3 * ENTRIES }, () => Math.floor(rng() * ID_RANGE));
const values = Uint32Array.from({ length: ENTRIES }, (_, i) => i);

const memo2 = new MemoTable(2);
memo2.setMany(keys2, values);
const memo3 = new MemoTable(3);
memo3.setMany(keys3, values);

const num2 = (a: number, b: number) => a * 2 ** 21 + b;
const str3 = (a: number, b: number, c: number) => `${a},${b},${c}`;
const num3 = (a: number, b: number, c: number) => a * 2 ** 34 + b * 2 ** 17 + c;

let before = heapUsed();
const map2 = new Map<number, number>();
for (let i = 0; i < ENTRIES; i++) map2.set(num2(keys2[2 * i]!, keys2[2 * i + 1]!), i);
const map2Bytes = (heapUsed() - before) / map2.size;
before = heapUsed();
const map3s = new Map<string, number>();
for (let i = 0; i < ENTRIES; i++) map3s.set(str3(keys3[3 * i]!, keys3[3 * i + 1]!, keys3[3 * i + 2]!), i);
const map3sBytes = (heapUsed() - before) / map3s.size;
const map3n = new Map<number, number>();
for (let i = 0; i < ENTRIES; i++) map3n.set(num3(keys3[3 * i]!, keys3[3 * i + 1]!, keys3[3 * i + 2]!), i);

// Probe batches: random existing keys (hits), as a warm memo cache sees them.
const BATCHES = 64;
const probes2: Uint32Array[] = [];
const probes3: Uint32Array[] = [];
for (let b = 0; b < BATCHES; b++) {
  const p2 = new Uint32Array(2 * KEY_BATCH);
  const p3 = new Uint32Array(3 * KEY_BATCH);
  for (let i = 0; i < KEY_BATCH; i++) {
    const e = Math.floor(rng() * ENTRIES);
    p2.set(keys2.subarray(2 * e, 2 * e + 2), 2 * i);
    p3.set(keys3.subarray(3 * e, 3 * e + 3), 3 * i);
  }
  probes2.push(p2);
  probes3.push(p3);
}
const batchValues = Uint32Array.from({ length: KEY_BATCH }, (_, i) => i + 1);
const valuesOut = new Uint32Array(KEY_BATCH);
let round = 0;
const probe2 = () => probes2[round++ % BATCHES]!;
const probe3 = () => probes3[round++ % BATCHES]!;

// A small table refilled from empty every call: insert throughput (clear is O(1) and keeps capacity).
const fill2 = new MemoTable(2, { capacity: KEY_BATCH });
const fillMap = new Map<number, number>();

const memoCases: BenchCase[] = [
  {
    name: "MemoTable(2).getMany (batch 4096)",
    opsPerCall: KEY_BATCH,
    fn: () => memo2.getMany(probe2(), valuesOut),
  },
  {
    name: "MemoTable(2).get (single calls)",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe2();
      for (let i = 0; i < KEY_BATCH; i++) valuesOut[i] = memo2.get(p[2 * i]!, p[2 * i + 1]!)!;
    },
  },
  {
    name: "Map<a*2^21+b>.get",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe2();
      for (let i = 0; i < KEY_BATCH; i++) valuesOut[i] = map2.get(num2(p[2 * i]!, p[2 * i + 1]!))!;
    },
  },
  {
    name: "MemoTable(2).setMany, updates (batch 4096)",
    opsPerCall: KEY_BATCH,
    fn: () => memo2.setMany(probe2(), batchValues),
  },
  {
    name: "MemoTable(2).set (single calls), updates",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe2();
      for (let i = 0; i < KEY_BATCH; i++) memo2.set(p[2 * i]!, p[2 * i + 1]!, i);
    },
  },
  {
    name: "Map<a*2^21+b>.set, updates",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe2();
      for (let i = 0; i < KEY_BATCH; i++) map2.set(num2(p[2 * i]!, p[2 * i + 1]!), i);
    },
  },
  {
    name: "MemoTable(2) clear + setMany 4096 new",
    opsPerCall: KEY_BATCH,
    fn: () => {
      fill2.clear();
      fill2.setMany(probe2(), batchValues);
    },
  },
  {
    name: "Map<a*2^21+b> clear + 4096 set",
    opsPerCall: KEY_BATCH,
    fn: () => {
      fillMap.clear();
      const p = probe2();
      for (let i = 0; i < KEY_BATCH; i++) fillMap.set(num2(p[2 * i]!, p[2 * i + 1]!), i);
    },
  },
  {
    name: "MemoTable(3).getMany (batch 4096)",
    opsPerCall: KEY_BATCH,
    fn: () => memo3.getMany(probe3(), valuesOut),
  },
  {
    name: "MemoTable(3).get (single calls)",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe3();
      for (let i = 0; i < KEY_BATCH; i++) valuesOut[i] = memo3.get(p[3 * i]!, p[3 * i + 1]!, p[3 * i + 2]!)!;
    },
  },
  {
    name: "Map<`a,b,c`>.get",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe3();
      for (let i = 0; i < KEY_BATCH; i++)
        valuesOut[i] = map3s.get(str3(p[3 * i]!, p[3 * i + 1]!, p[3 * i + 2]!))!;
    },
  },
  {
    name: "Map<a*2^34+b*2^17+c>.get (ids < 2^17 only)",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe3();
      for (let i = 0; i < KEY_BATCH; i++)
        valuesOut[i] = map3n.get(num3(p[3 * i]!, p[3 * i + 1]!, p[3 * i + 2]!))!;
    },
  },
  {
    name: "MemoTable(3).setMany, updates (batch 4096)",
    opsPerCall: KEY_BATCH,
    fn: () => memo3.setMany(probe3(), batchValues),
  },
  {
    name: "Map<`a,b,c`>.set, updates",
    opsPerCall: KEY_BATCH,
    fn: () => {
      const p = probe3();
      for (let i = 0; i < KEY_BATCH; i++) map3s.set(str3(p[3 * i]!, p[3 * i + 1]!, p[3 * i + 2]!), i);
    },
  },
];

const bytes = (n: number) => `${n.toFixed(1)} B`;
await runSuite("intern", [...internCases, ...memoCases], {
  comparisons: [
    { subject: "Interner.lookupMany (batch 1024)", peer: "Map<string,number>.get" },
    { subject: "Interner.internMany, all present (batch 1024)", peer: "Map<string,number>.get" },
    { subject: "Interner.lookup (single calls)", peer: "Map<string,number>.get" },
    { subject: "Interner.resolve (single calls)", peer: "string[] index (reverse peer)" },
    { subject: "MemoTable(2).getMany (batch 4096)", peer: "Map<a*2^21+b>.get", goalRatio: 1 },
    { subject: "MemoTable(2).get (single calls)", peer: "Map<a*2^21+b>.get" },
    {
      subject: "MemoTable(2).setMany, updates (batch 4096)",
      peer: "Map<a*2^21+b>.set, updates",
      goalRatio: 1,
    },
    { subject: "MemoTable(2).set (single calls), updates", peer: "Map<a*2^21+b>.set, updates" },
    { subject: "MemoTable(2) clear + setMany 4096 new", peer: "Map<a*2^21+b> clear + 4096 set" },
    { subject: "MemoTable(3).getMany (batch 4096)", peer: "Map<`a,b,c`>.get", goalRatio: 1 },
    { subject: "MemoTable(3).getMany (batch 4096)", peer: "Map<a*2^34+b*2^17+c>.get (ids < 2^17 only)" },
    { subject: "MemoTable(3).get (single calls)", peer: "Map<`a,b,c`>.get" },
    { subject: "MemoTable(3).setMany, updates (batch 4096)", peer: "Map<`a,b,c`>.set, updates" },
  ],
  goals: [
    { case: "Interner.lookupMany (batch 1024)", minOpsPerSec: 10e6 },
    { case: "MemoTable(2).getMany (batch 4096)", minOpsPerSec: 50e6 },
    { case: "MemoTable(2).setMany, updates (batch 4096)", minOpsPerSec: 50e6 },
    { case: "MemoTable(3).getMany (batch 4096)", minOpsPerSec: 50e6 },
  ],
  facts: {
    "interned strings": STRINGS,
    "mean UTF-8 bytes per string": (utf8Bytes / STRINGS).toFixed(1),
    "Interner bytes/symbol (slots + entry + UTF-8 bytes)": bytes(internerBytesPerSymbol),
    "Map<string,number> bytes/entry (the strings themselves not counted)": gc
      ? bytes(mapBytesPerString)
      : "n/a",
    "JS heap bytes per string of this corpus": gc ? bytes(jsBytesPerString) : "n/a",
    "memo entries": ENTRIES,
    "MemoTable(2) bytes/entry": bytes(memo2.memoryBytes / memo2.size),
    "Map<a*2^21+b> bytes/entry": gc ? bytes(map2Bytes) : "n/a (run with --expose-gc)",
    "MemoTable(3) bytes/entry": bytes(memo3.memoryBytes / memo3.size),
    "Map<`a,b,c`> bytes/entry (keys included)": gc ? bytes(map3sBytes) : "n/a (run with --expose-gc)",
    "memo load factor (2 / 3)": `${(memo2.size / memo2.capacity).toFixed(2)} / ${(memo3.size / memo3.capacity).toFixed(2)}`,
  },
});

if (sink === 42 || copies.length === 0) console.log(""); // keeps the reverse-lookup loops observable
interner.dispose();
memo2.dispose();
memo3.dispose();
fill2.dispose();
