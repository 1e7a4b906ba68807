/**
 * Tuple stores side by side, in the same run: the in-memory store (the library default) against the durable file
 * store (nexus-fast/file-store) under fsync "always" (its default) and "batch".
 *
 * 1. Writes: a batch of 1 tuple and a batch of 1,000 tuples per call (tuples/s), sequentially; and 16 one-tuple
 *    writes in flight at once, where "batch" shares one fdatasync among them (group commit).
 * 2. Checks: an engine (createEngine defaults) over each store holding the Nexus filesystem workload, answering
 *    its questions in turn. Reads are served from memory by both stores, so the ratio should be about 1.
 * 3. Open: a file store holding 100,000 tuples written as 100,000 one-tuple batches, opened with only its log
 *    (every batch replayed) and with a checkpoint (one file read); the peer fills a memory store with the same
 *    tuples in batches of 1,000. Then a history larger than the state (100,000 tuples written and 90,000 deleted
 *    again): a checkpoint makes open time follow the state, the log alone follows the history.
 *
 * 4. Load: the peer workload (bench/peers, 103,360 tuples) as engine.write takes it (the engine's writeOf validates
 *    and normalizes, then the memory store writes) in batches of 10,000: tuples/s, and the heap the store holds per
 *    tuple afterwards (with --expose-gc), the store's share of the peer table's load and memory rows.
 *
 * Run: BENCH_TIME=200 node --import tsx --expose-gc bench/stores.bench.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEngine, type Engine } from "../src/engine/engine.js";
import { writeOf } from "../src/engine/tuples.js";
import { compileModelAsync } from "../src/model/index.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { openFileTupleStore } from "../src/tuples/file/index.js";
import { MemoryTupleStore } from "../src/tuples/memory.js";
import { normalizeTuple } from "../src/tuples/normalize.js";
import type { RelationTuple } from "../src/tuples/tuple.js";
import type { TupleStore } from "../src/tuples/types.js";
import { type BenchCase, runSuite } from "./harness.js";
import { buildWorkload, model as peerModel, SIZES } from "./peers/workload.js";
import { buildFilesystemWorkload } from "./workloads/filesystem.js";

const root = mkdtempSync(join(tmpdir(), "nexus-stores-bench-"));
process.on("exit", () => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `s${++dirs}`);

function tuple(object: string, user: string): RelationTuple {
  const n = normalizeTuple({ object, relation: "viewer", user }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

// ---- 1. writes ---------------------------------------------------------------------------------------------
const stores: [string, TupleStore & AsyncDisposable][] = [
  ["memory", new MemoryTupleStore()],
  ["file always", await openFileTupleStore({ dir: freshDir(), fsync: "always" })],
  ["file batch", await openFileTupleStore({ dir: freshDir(), fsync: "batch" })],
];
let next = 0;
const batchOf = (n: number) => ({
  writes: Array.from({ length: n }, () => tuple(`doc:${next++}`, "user:anne")),
  deletes: [],
});
const writeCases: BenchCase[] = [];
for (const [name, store] of stores) {
  writeCases.push({ name: `write 1: ${name}`, fn: () => store.write(batchOf(1)) });
}
for (const [name, store] of stores) {
  writeCases.push({ name: `write 1,000: ${name}`, fn: () => store.write(batchOf(1000)), opsPerCall: 1000 });
}
for (const [name, store] of stores) {
  writeCases.push({
    name: `write 1 ×16 in flight: ${name}`,
    fn: () => Promise.all(Array.from({ length: 16 }, () => store.write(batchOf(1)))),
    opsPerCall: 16,
  });
}
await runSuite("stores-write", writeCases, {
  comparisons: [
    { subject: "write 1: file always", peer: "write 1: memory" },
    { subject: "write 1: file batch", peer: "write 1: memory" },
    { subject: "write 1,000: file always", peer: "write 1,000: memory" },
    { subject: "write 1,000: file batch", peer: "write 1,000: memory" },
    { subject: "write 1 ×16 in flight: file batch", peer: "write 1 ×16 in flight: file always" },
    { subject: "write 1 ×16 in flight: file always", peer: "write 1 ×16 in flight: memory" },
  ],
});
for (const [, store] of stores) await store.close();

// ---- 2. checks ---------------------------------------------------------------------------------------------
const workload = buildFilesystemWorkload({ questions: 5000, seed: 7 });
const checkStores: [string, TupleStore & AsyncDisposable][] = [
  ["memory", new MemoryTupleStore()],
  ["file always", await openFileTupleStore({ dir: freshDir(), fsync: "always" })],
  ["file batch", await openFileTupleStore({ dir: freshDir(), fsync: "batch" })],
];
const engines: [string, Engine][] = [];
for (const [name, store] of checkStores) {
  const engine = await createEngine({ model: nexusFilesystemModel, format: "nexus", store });
  await engine.write({ writes: [...workload.tuples] });
  engines.push([name, engine]);
}
// Same answers from every store.
const answers = await Promise.all(
  engines.map(([, engine]) => Promise.all(workload.questions.slice(0, 500).map((q) => engine.check(q)))),
);
for (const a of answers) if (a.join() !== answers[0]!.join()) throw new Error("stores answer differently");
const checkCases: BenchCase[] = engines.map(([name, engine]) => {
  let i = 0;
  return {
    name: `check: ${name}`,
    fn: () => engine.check(workload.questions[i++ % workload.questions.length]!),
  };
});
await runSuite("stores-check", checkCases, {
  comparisons: [
    { subject: "check: file always", peer: "check: memory" },
    { subject: "check: file batch", peer: "check: memory" },
  ],
  facts: { tuples: workload.tuples.length, questions: workload.questions.length },
});
for (const [, engine] of engines) await engine.close();
for (const [, store] of checkStores) await store.close();

// ---- 3. open after 100k tuples -----------------------------------------------------------------------------
const HISTORY = 100_000;
const history = Array.from({ length: HISTORY }, (_, i) => tuple(`doc:${i}`, `user:${i % 1000}`));
const logOnly = freshDir();
{
  const store = await openFileTupleStore({ dir: logOnly, fsync: "never", checkpointBytes: 0 });
  for (const t of history) await store.write({ writes: [t], deletes: [] });
  await store.close();
}
const checkpointed = freshDir();
{
  const store = await openFileTupleStore({ dir: checkpointed, fsync: "never", checkpointBytes: 0 });
  for (const t of history) await store.write({ writes: [t], deletes: [] });
  await store.checkpoint();
  await store.close();
}
// History much larger than the state: 100k tuples written and 90k of them deleted again, in batches of 100.
async function churned(checkpoint: boolean): Promise<string> {
  const dir = freshDir();
  const store = await openFileTupleStore({ dir, fsync: "never", checkpointBytes: 0 });
  for (let i = 0; i < HISTORY; i += 100)
    await store.write({ writes: history.slice(i, i + 100), deletes: [] });
  for (let i = 0; i < 0.9 * HISTORY; i += 100)
    await store.write({ writes: [], deletes: history.slice(i, i + 100) });
  if (checkpoint) await store.checkpoint();
  await store.close();
  return dir;
}
const churnLog = await churned(false);
const churnCheckpoint = await churned(true);
const openCase = (dir: string) => async () => {
  const store = await openFileTupleStore({ dir });
  await store.close();
};
await runSuite(
  "stores-open",
  [
    { name: "open 100k: log only (100k batches replayed)", fn: openCase(logOnly) },
    { name: "open 100k: checkpoint", fn: openCase(checkpointed) },
    { name: "open 100k written, 90k deleted: log only", fn: openCase(churnLog) },
    { name: "open 100k written, 90k deleted: checkpoint", fn: openCase(churnCheckpoint) },
    {
      name: "memory store filled with 100k (batches of 1,000)",
      fn: async () => {
        const store = new MemoryTupleStore();
        for (let i = 0; i < HISTORY; i += 1000) {
          await store.write({ writes: history.slice(i, i + 1000), deletes: [] });
        }
        await store.close();
      },
    },
  ],
  {
    iterations: 5,
    comparisons: [
      { subject: "open 100k: checkpoint", peer: "open 100k: log only (100k batches replayed)" },
      { subject: "open 100k: checkpoint", peer: "memory store filled with 100k (batches of 1,000)" },
      {
        subject: "open 100k written, 90k deleted: checkpoint",
        peer: "open 100k written, 90k deleted: log only",
      },
    ],
  },
);

// ---- 4. load: the peer workload through writeOf and the memory store ----------------------------------------
const peerTuples = buildWorkload(SIZES["100k"]!).tuples;
const peerProgram = await compileModelAsync(peerModel);
const LOAD_BATCH = 10_000;
async function loadPeerWorkload(): Promise<MemoryTupleStore> {
  const store = new MemoryTupleStore();
  for (let i = 0; i < peerTuples.length; i += LOAD_BATCH) {
    const { writes, deletes } = writeOf(peerProgram, { writes: peerTuples.slice(i, i + LOAD_BATCH) });
    await store.write({ writes, deletes });
  }
  return store;
}
await runSuite(
  "stores-load",
  [
    {
      name: `load ${peerTuples.length.toLocaleString("en-US")} peer tuples: writeOf + memory store, batches of 10,000`,
      fn: async () => (await loadPeerWorkload()).close(),
      opsPerCall: peerTuples.length,
    },
  ],
  { iterations: 5 },
);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc !== undefined) {
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const before = heap();
  const store = await loadPeerWorkload();
  const bytes = (heap() - before) / peerTuples.length;
  console.log(
    `memory store after the load: ${bytes.toFixed(0)} B of heap per tuple (tuples, versions, changelog)`,
  );
  await store.close();
}
