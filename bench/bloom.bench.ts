/**
 * Bloom filter: nexus-fast's WASM blocked filter vs its TypeScript twin vs the `bloom-filters` package, same keys,
 * same run. All three are sized for 100,000 keys at 1% and filled to capacity; lookups are half members, half not.
 * Keys are flat strings of ≈35 chars (as decoded from a network or database row); keys built by `+`/template
 * literals are ropes, which cost extra to encode (measured separately). Also measures a hot kernel call through
 * the raw `instance.exports` vs through `@assemblyscript/loader`'s demangled `exports`. The parts API the Bloom
 * negative layer uses (a key as prefix + name) against building the key with a template: measured at a73ef60 about
 * even (0.89-0.98×; addParts 0.57× of addMany over keys already built), so its gain on the load path is the key
 * strings it does not keep, not faster hashing.
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/bloom.bench.ts
 */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { instantiateSync } from "@assemblyscript/loader";
import bloomFilters from "bloom-filters";
import { BloomFilter } from "../src/kernels/bloom.js";
import { ready } from "../src/wasm/loader.js";
import { BloomTwin } from "../test/twins/bloom.js";
import { runSuite } from "./harness.js";

// bloom-filters is CommonJS with getter exports, which Node's named-import detection does not see.
const PeerBloomFilter = bloomFilters.BloomFilter;
const CAPACITY = 100_000;
const FP_RATE = 0.01;
const BATCH = 1000;

await ready();

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
/** A flat (non-rope) copy of a string. */
const flat = (s: string) => fromUtf8.decode(utf8.encode(s));
const memberKey = (i: number) => `document:${i}#viewer@user:${(i * 7919) % 100_003}`;
const members = Array.from({ length: CAPACITY }, (_, i) => flat(memberKey(i)));
const strangers = Array.from({ length: CAPACITY }, (_, i) => flat(`document:${i}#editor@user:${i}`));
const probes = members.map((key, i) => (i % 2 === 0 ? key : strangers[i]!));
const probeBatches = Array.from({ length: CAPACITY / BATCH }, (_, b) =>
  probes.slice(b * BATCH, (b + 1) * BATCH),
);
const byteBatches = probeBatches.map((batch) => batch.map((key) => utf8.encode(key)));
// Ropes, rebuilt for every call (as a caller building keys with templates would): not flattened by earlier use.
const ropeBatch = (b: number) =>
  Array.from({ length: BATCH }, (_, j) => {
    const i = b * BATCH + j;
    return i % 2 === 0 ? memberKey(i) : `document:${i}#editor@user:${i}`;
  });

// The same keys as two parts (a prefix and a name), as the Bloom negative layer passes them (addParts,
// mightContainParts, mightContainJoined): the peer is building each key with a template and passing the string.
const split = (key: string): [string, string] => {
  const at = key.indexOf("@");
  return [key.slice(0, at + 1), key.slice(at + 1)];
};
const probeParts = probeBatches.map((batch) => batch.flatMap(split));
const probePairs = probes.map(split);

const ours = new BloomFilter(CAPACITY, FP_RATE);
ours.addMany(members);
const ourAdds = new BloomFilter(CAPACITY, FP_RATE);
const twin = new BloomTwin(ours.blocks, ours.hashes);
twin.addMany(members);
const twinAdds = new BloomTwin(ours.blocks, ours.hashes);
const peer = PeerBloomFilter.create(CAPACITY, FP_RATE);
for (const key of members) peer.add(key);
const peerAdds = PeerBloomFilter.create(CAPACITY, FP_RATE);

/** Measured false-positive rate at capacity over 200,000 keys never added. */
function measuredFpRate(has: (key: string) => boolean): number {
  let positives = 0;
  const n = 200_000;
  for (let i = 0; i < n; i++) if (has(`stranger:${i}`)) positives++;
  return positives / n;
}

// Raw exports vs @assemblyscript/loader's demangled exports, on a second instance of the same module.
interface RawBloom {
  alloc(size: number): number;
  create(blocks: number, k: number): number;
  add(f: number, ptr: number, len: number): void;
  mightContain(f: number, ptr: number, len: number): number;
  bits(f: number): number;
  memory: WebAssembly.Memory;
}
const module = new WebAssembly.Module(readFileSync(new URL("../dist/wasm/bloom.wasm", import.meta.url)));
const loaded = instantiateSync<Record<string, unknown>>(module, {});
const raw = loaded.instance.exports as unknown as RawBloom;
const demangled = loaded.exports as unknown as RawBloom;
const rawFilter = raw.create(ours.blocks, ours.hashes);
const rawKey = utf8.encode(members[42]!);
const rawKeyPtr = raw.alloc(rawKey.length);
new Uint8Array(raw.memory.buffer).set(rawKey, rawKeyPtr);
raw.add(rawFilter, rawKeyPtr, rawKey.length);

let cursor = 0;
let batchCursor = 0;
let sink = 0;
const out = new Uint8Array(BATCH);
const next = () => {
  const i = cursor;
  cursor = cursor + 1 === CAPACITY ? 0 : cursor + 1;
  return i;
};
const nextBatch = () => {
  const b = batchCursor;
  batchCursor = batchCursor + 1 === probeBatches.length ? 0 : batchCursor + 1;
  return b;
};
/** BATCH single operations per timed call, so the timer's own cost does not swamp nanosecond operations. */
const repeat = (op: (i: number) => unknown) => () => {
  for (let j = 0; j < BATCH; j++) op(next());
};

const facts: Record<string, string | number> = {
  "machine load (1-min loadavg, 2 cores shared with other jobs)": loadavg()[0]!.toFixed(2),
  "nexus bytes/key": (ours.memoryBytes / CAPACITY).toFixed(3),
  "bloom-filters bytes/key (bit array only)": (Math.ceil(peer.size / 8) / CAPACITY).toFixed(3),
  "nexus bits/key, hashes": `${((ours.blocks * 512) / CAPACITY).toFixed(2)}, ${ours.hashes}`,
  "bloom-filters bits/key, hashes": `${(peer.size / CAPACITY).toFixed(2)}, ${peer._nbHashes}`,
  "nexus measured fp rate at capacity": measuredFpRate((k) => ours.mightContain(k)).toFixed(5),
  "bloom-filters measured fp rate at capacity": measuredFpRate((k) => peer.has(k)).toFixed(5),
};

await runSuite(
  "bloom",
  [
    { name: "nexus add", opsPerCall: BATCH, fn: repeat((i) => ourAdds.add(members[i]!)) },
    { name: "twin add", opsPerCall: BATCH, fn: repeat((i) => twinAdds.add(members[i]!)) },
    { name: "bloom-filters add", opsPerCall: BATCH, fn: repeat((i) => peerAdds.add(members[i]!)) },
    {
      name: "nexus mightContain",
      opsPerCall: BATCH,
      fn: repeat((i) => (sink += ours.mightContain(probes[i]!) ? 1 : 0)),
    },
    {
      name: "twin mightContain",
      opsPerCall: BATCH,
      fn: repeat((i) => (sink += twin.mightContain(probes[i]!) ? 1 : 0)),
    },
    {
      name: "bloom-filters has",
      opsPerCall: BATCH,
      fn: repeat((i) => (sink += peer.has(probes[i]!) ? 1 : 0)),
    },
    {
      name: "nexus mightContainMany (1000)",
      opsPerCall: BATCH,
      fn: () => ours.mightContainMany(probeBatches[nextBatch()]!, out),
    },
    {
      name: "twin mightContainMany (1000)",
      opsPerCall: BATCH,
      fn: () => twin.mightContainMany(probeBatches[nextBatch()]!),
    },
    {
      name: "bloom-filters has ×1000 (no batch API)",
      opsPerCall: BATCH,
      fn: () => {
        for (const key of probeBatches[nextBatch()]!) sink += peer.has(key) ? 1 : 0;
      },
    },
    {
      name: "nexus mightContainMany (1000, Uint8Array keys)",
      opsPerCall: BATCH,
      fn: () => ours.mightContainMany(byteBatches[nextBatch()]!, out),
    },
    {
      name: "nexus mightContainMany (1000, rope keys incl. building them)",
      opsPerCall: BATCH,
      fn: () => ours.mightContainMany(ropeBatch(nextBatch()), out),
    },
    {
      name: "building 1000 rope keys alone",
      opsPerCall: BATCH,
      fn: () => (sink += ropeBatch(nextBatch()).length),
    },
    {
      name: "nexus mightContainParts (1000 keys as 2 parts)",
      opsPerCall: BATCH,
      fn: () => ours.mightContainParts(probeParts[nextBatch()]!, 2, out),
    },
    {
      name: "nexus mightContainMany (1000 keys joined by a template, incl. joining)",
      opsPerCall: BATCH,
      fn: () => {
        const parts = probeParts[nextBatch()]!;
        const keys: string[] = new Array(BATCH);
        for (let j = 0; j < BATCH; j++) keys[j] = `${parts[2 * j]}${parts[2 * j + 1]}`;
        ours.mightContainMany(keys, out);
      },
    },
    {
      name: "nexus mightContainJoined (2 parts)",
      opsPerCall: BATCH,
      fn: repeat((i) => {
        const [a, b] = probePairs[i]!;
        sink += ours.mightContainJoined(a, b) ? 1 : 0;
      }),
    },
    {
      name: "nexus mightContain (key joined by a template, incl. joining)",
      opsPerCall: BATCH,
      fn: repeat((i) => {
        const [a, b] = probePairs[i]!;
        sink += ours.mightContain(`${a}${b}`) ? 1 : 0;
      }),
    },
    {
      name: "nexus addParts (1000 keys as 2 parts)",
      opsPerCall: BATCH,
      fn: () => ourAdds.addParts(probeParts[nextBatch()]!, 2),
    },
    {
      name: "nexus addMany (1000)",
      opsPerCall: BATCH,
      fn: () => ourAdds.addMany(probeBatches[nextBatch()]!),
    },
    {
      name: "kernel call (mightContain) via raw instance.exports",
      opsPerCall: BATCH,
      fn: () => {
        for (let j = 0; j < BATCH; j++) sink += raw.mightContain(rawFilter, rawKeyPtr, rawKey.length);
      },
    },
    {
      name: "kernel call (mightContain) via loader's demangled exports",
      opsPerCall: BATCH,
      fn: () => {
        for (let j = 0; j < BATCH; j++) sink += demangled.mightContain(rawFilter, rawKeyPtr, rawKey.length);
      },
    },
    {
      name: "trivial export call (bits) via raw instance.exports",
      opsPerCall: BATCH,
      fn: () => {
        for (let j = 0; j < BATCH; j++) sink += raw.bits(rawFilter);
      },
    },
    {
      name: "trivial export call (bits) via loader's demangled exports",
      opsPerCall: BATCH,
      fn: () => {
        for (let j = 0; j < BATCH; j++) sink += demangled.bits(rawFilter);
      },
    },
  ],
  {
    comparisons: [
      {
        subject: "nexus mightContainMany (1000)",
        peer: "bloom-filters has ×1000 (no batch API)",
        goalRatio: 300,
      },
      { subject: "nexus mightContain", peer: "bloom-filters has", goalRatio: 300 },
      { subject: "nexus add", peer: "bloom-filters add", goalRatio: 300 },
      { subject: "nexus mightContainMany (1000)", peer: "twin mightContainMany (1000)" },
      { subject: "nexus mightContain", peer: "twin mightContain" },
      { subject: "nexus add", peer: "twin add" },
      { subject: "nexus mightContainMany (1000)", peer: "nexus mightContain" },
      {
        subject: "nexus mightContainParts (1000 keys as 2 parts)",
        peer: "nexus mightContainMany (1000 keys joined by a template, incl. joining)",
      },
      {
        subject: "nexus mightContainJoined (2 parts)",
        peer: "nexus mightContain (key joined by a template, incl. joining)",
      },
      { subject: "nexus addParts (1000 keys as 2 parts)", peer: "nexus addMany (1000)" },
      {
        subject: "kernel call (mightContain) via raw instance.exports",
        peer: "kernel call (mightContain) via loader's demangled exports",
      },
      {
        subject: "trivial export call (bits) via raw instance.exports",
        peer: "trivial export call (bits) via loader's demangled exports",
      },
    ],
    goals: [{ case: "nexus mightContainMany (1000)", minOpsPerSec: 30_000_000 }],
    facts,
  },
);

if (sink === -1) console.log(sink); // keep results observable
ours.dispose();
ourAdds.dispose();
