/**
 * The tuple depth bound (src/changes/depth.ts) on the Nexus filesystem workload: what it costs on the check path
 * (`safeBelow`, asked by every denial shortcut) against a Map lookup, on the write path (a write reaching a feed
 * that feeds the bound) against the same write reaching a feed with a listener that does nothing, and one exact
 * recompute (what a check pays at most once a second after deletes).
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/depth.bench.ts
 */

import { TupleDepthBound } from "../src/changes/depth.js";
import { ChangeFeed } from "../src/changes/feed.js";
import { createEngine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { type BenchCase, runSuite } from "./harness.js";
import { buildFilesystemWorkload } from "./workloads/filesystem.js";

const workload = buildFilesystemWorkload({ seed: 7 });
const open = async () => {
  const engine = await createEngine({ model: nexusFilesystemModel, format: "nexus", cache: false });
  await engine.write({ writes: [...workload.tuples] });
  return { engine, feed: await ChangeFeed.open(engine.store) };
};
const withBound = await open();
const bound = await TupleDepthBound.open(withBound.engine.store, withBound.feed);
const plain = await open();
const unsubscribe = plain.feed.subscribe({ onChanges: () => {}, onReset: () => {} });
const revision = await withBound.engine.store.currentRevision();
await withBound.feed.caughtUp(revision);

const lookup = new Map(workload.files.map((f, i) => [f, i]));
let n = 0;
/** One new grant on a file: an edge from the file to a user (as most writes are). */
const writeOne = async (target: Awaited<ReturnType<typeof open>>) => {
  const i = n++;
  const { revision: r } = await target.engine.write({
    writes: [
      { user: `user:w${i}`, relation: "direct_viewer", object: workload.files[i % workload.files.length]! },
    ],
  });
  await target.feed.caughtUp(r);
};

const cases: BenchCase[] = [
  { name: "safeBelow(25) (check path)", fn: () => bound.safeBelow(25, revision) },
  { name: "Map.get (baseline)", fn: () => lookup.get(workload.files[17]!) },
  { name: "write → feed with the depth bound", fn: () => writeOne(withBound) },
  { name: "write → feed with a no-op listener", fn: () => writeOne(plain) },
  { name: "exact recompute", fn: () => bound.recompute() },
];
await runSuite("depth", cases, {
  comparisons: [
    { subject: "safeBelow(25) (check path)", peer: "Map.get (baseline)" },
    { subject: "write → feed with the depth bound", peer: "write → feed with a no-op listener" },
  ],
  facts: {
    tuples: workload.tuples.length,
    "longest chain (edges)": bound.longestChain(),
    ...Object.fromEntries(
      Object.entries(bound.stats()).filter(([, v]) => typeof v === "number" || typeof v === "string"),
    ),
  },
});
unsubscribe();
await bound.close();
for (const target of [withBound, plain]) {
  await target.feed.close();
  await target.engine.close();
}
