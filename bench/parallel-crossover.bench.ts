/**
 * Where the worker pool pays for checkBulk: the same batches (1,000 to 100,000 distinct questions of the
 * filesystem workload, bench/workloads/filesystem.ts) answered by one engine on one thread and by one whose bulk
 * checks always go to the Piscina pool (enableParallelBulkCheck, threshold 1), both with `cache: false` so each
 * batch reaches the WASM evaluator rather than the result cache. Both engines share one store; their answers are
 * asserted equal before anything is timed. The pool's default threshold (src/parallel/thresholds.ts) should sit
 * at the crossover this prints, or stay off (Infinity) when there is none on this machine.
 */
import { availableParallelism } from "node:os";
import { createEngine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { getParallelThreshold, setParallelThreshold } from "../src/parallel/thresholds.js";
import { enableParallelBulkCheck } from "../src/wasm-eval/parallel.js";
import { type BenchCase, type Comparison, runSuite } from "./harness.js";
import { buildFilesystemWorkload } from "./workloads/filesystem.js";

const SIZES = [1_000, 5_000, 20_000, 100_000] as const;
const workload = buildFilesystemWorkload({ questions: SIZES[SIZES.length - 1] });
const options = { model: nexusFilesystemModel, format: "nexus", cache: false } as const;
const oneThread = await createEngine(options);
const pooled = await createEngine({ ...options, store: oneThread.store });
const checker = enableParallelBulkCheck(pooled)!;
const defaultThreshold = getParallelThreshold("bulkCheck");
setParallelThreshold("bulkCheck", 1);
const { token } = await oneThread.write({ writes: [...workload.tuples] });
const fresh = { atLeastAsFresh: token } as const;
const batches = new Map(
  SIZES.map((n) => [n, workload.questions.slice(0, n).map((q) => ({ ...q, consistency: fresh }))]),
);

// Every answer equal before timing (and the pool's workers started and holding the graph).
for (const [n, batch] of batches) {
  const [one, pool] = await Promise.all([oneThread.checkBulk(batch), pooled.checkBulk(batch)]);
  for (let i = 0; i < n; i++)
    if (one[i] !== pool[i]) throw new Error(`batch of ${n}: answers differ at ${i}`);
}
console.log(
  `pool: ${checker.pool.threadCount} of at most ${checker.pool.maxThreads} workers on ${availableParallelism()} cores; default threshold ${defaultThreshold}`,
);

const cases: BenchCase[] = [];
const comparisons: Comparison[] = [];
for (const [n, batch] of batches) {
  cases.push({ name: `checkBulk ${n} one thread`, fn: () => oneThread.checkBulk(batch), opsPerCall: n });
  cases.push({ name: `checkBulk ${n} pool`, fn: () => pooled.checkBulk(batch), opsPerCall: n });
  comparisons.push({ subject: `checkBulk ${n} pool`, peer: `checkBulk ${n} one thread` });
}
const out = await runSuite("parallel-crossover", cases, { comparisons, iterations: 8 });
const crossover = out.comparisons.find((c) => c.ratio >= 1);
console.log(
  crossover === undefined
    ? "  crossover: none; the pool was slower than one thread at every size (the default threshold stays off)"
    : `  crossover: the pool first matched one thread at ${crossover.subject.split(" ")[1]} questions`,
);
setParallelThreshold("bulkCheck", defaultThreshold);
await pooled.close();
await oneThread.close();
