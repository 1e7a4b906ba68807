/**
 * Soak: the engine as created by default (the cache chain in front of the WASM evaluator) under a long mixed load (checks single and batched, Zipf-distributed over 20,000
 * questions, 5% aborted, writes toggling grants), reporting heap and RSS over time, then closing everything and checking that the process's active
 * resources are back to where they started. Bounded: `--seconds N` (default 10).
 *
 * Run: node --import tsx --expose-gc bench/soak.ts --seconds 60 [--window 1000] [--concurrency 64]
 */
import { parseArgs } from "node:util";
import { createEngine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { ready } from "../src/wasm/loader.js";
import { buildFilesystemWorkload, prng } from "./workloads/filesystem.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    window: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "64" },
  },
});
const seconds = Number(values.seconds);
const window = Number(values.window);
const concurrency = Number(values.concurrency);
if (!(seconds > 0) || !(window >= 0) || !(concurrency >= 1)) {
  throw new Error("usage: soak.ts --seconds N (> 0) --window MS (≥ 0) --concurrency N (≥ 1)");
}

const gc = (globalThis as { gc?: () => void }).gc;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const resources = () => {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
};

await ready();
const baseline = resources();
const workload = buildFilesystemWorkload({ questions: 20_000, seed: 3 });
const engine = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  quantizationWindowMs: window,
});
await engine.write({ writes: [...workload.tuples] });

const random = prng(1);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
// Questions are drawn Zipf(1.0) (a few hot, a long tail), as real read traffic is.
const zipfCdf = new Float64Array(workload.questions.length);
for (let i = 0, total = 0; i < zipfCdf.length; i++) zipfCdf[i] = total += 1 / (i + 1);
const question = () => {
  const x = random() * zipfCdf[zipfCdf.length - 1]!;
  let lo = 0;
  let hi = zipfCdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (zipfCdf[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return workload.questions[lo]!;
};
let checks = 0;
let writes = 0;
let aborted = 0;
const granted: { user: string; relation: string; object: string }[] = [];

gc?.();
const startHeap = process.memoryUsage().heapUsed;
const started = performance.now();
const samples: string[] = [];
const every = seconds > 60 ? 10_000 : 1000;
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  const elapsed = ((performance.now() - started) / 1000).toFixed(0);
  const line = `t=${elapsed}s checks=${checks} writes=${writes} heap=${mb(m.heapUsed)} rss=${mb(m.rss)} wasm+buffers=${mb(m.arrayBuffers)}`;
  samples.push(line);
  console.log(line);
}, every);

const deadline = started + seconds * 1000;
while (performance.now() < deadline) {
  const round: Promise<unknown>[] = [];
  for (let i = 0; i < concurrency; i++) {
    const q = question();
    if (random() < 0.05) {
      const abort = new AbortController();
      round.push(engine.check(q, { signal: abort.signal }).catch(() => aborted++));
      abort.abort();
    } else {
      round.push(engine.check(q));
    }
  }
  round.push(engine.checkBulk(Array.from({ length: 32 }, question)));
  const results = await Promise.all(round);
  // Let timers (the sampler) and I/O run: an in-memory store never leaves the microtask queue by itself.
  await new Promise<void>((resolve) => setImmediate(resolve));
  checks += results.length - 1 + 32;
  if (random() < 0.2) {
    if (granted.length > 100 && random() < 0.5) {
      await engine.write({ deletes: [granted.shift()!] });
    } else {
      const t = { user: pick(workload.users), relation: "direct_viewer", object: pick(workload.files) };
      await engine.write({ writes: [t], onDuplicate: "ignore" });
      granted.push(t);
    }
    writes++;
  }
}
clearInterval(sampler);
const elapsedS = (performance.now() - started) / 1000;
const stats = engine.stats().chain!;
gc?.();
const endHeap = process.memoryUsage().heapUsed;
await engine.close();
await new Promise((r) => setTimeout(r, 20));
const leftovers: string[] = [];
for (const [name, count] of resources()) {
  if (count > (baseline.get(name) ?? 0)) leftovers.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
}
console.log(`\n${checks} checks (${aborted} aborted), ${writes} writes in ${elapsedS.toFixed(1)} s`);
console.log(`checks/s: ${(checks / elapsedS).toFixed(0)}`);
for (const l of stats.layers) {
  console.log(
    `  ${l.layer}: requests ${l.requests}, hits ${l.hits}, misses ${l.misses}, shared ${l.shared}, evaluations ${l.evaluations}, invalidations ${l.invalidations} ${JSON.stringify(l.extra ?? {})}`,
  );
}
console.log(`  feed: ${JSON.stringify(stats.feed)}`);
console.log(`heap after warm-up ${mb(startHeap)} → at end ${mb(endHeap)} (after gc)`);
console.log(
  `active resources beyond the baseline after close: ${leftovers.length === 0 ? "none" : leftovers.join(", ")}`,
);
if (leftovers.length > 0) process.exitCode = 1;
