/**
 * The engine as users get it (createEngine defaults: the cache chain in front of the WASM evaluator) against the
 * same engine with `cache: false` (the WASM evaluator alone) and the reference evaluator alone, in the same run,
 * on the Nexus filesystem workload (bench/workloads/filesystem.ts). Answers are asserted equal first.
 *
 * 1. Steady read mix (simulated clock, so hit rates do not depend on machine speed): questions drawn Zipf(1.0)
 *    from a pool of 5,000, 10,000 reads and 50 writes (grants toggled on random files) a simulated second, 5 s
 *    quantization windows. Hit rate of the second half (the first half warms the caches), evaluator calls, and
 *    the wall time of the replay for each engine (reads per second end to end).
 * 2. Latency (tinybench): a repeated check (cache hit) and a batch of 1,000 repeated checks, default vs
 *    `cache: false`; a miss through every layer vs the evaluator alone (the layers' cost on a miss); a denial of a
 *    subject no tuple names, by default (the WASM evaluator's subject rule off its interner) vs with the Bloom
 *    filter that was the default before (`cache: { bloom: true }`).
 * 3. Write → every cache told (engine.write then engine.caughtUp), median and p99 over 1,000 writes.
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/engine.bench.ts
 */
import { createEngine, type Engine, type EngineOptions } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { type BenchCase, formatMicros, runSuite } from "./harness.js";
import { buildFilesystemWorkload, prng } from "./workloads/filesystem.js";
import { zipfDraws } from "./workloads/zipf.js";

const workload = buildFilesystemWorkload({ questions: 5000, seed: 7 });
console.log(
  `workload: ${Object.entries(workload.stats)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")}`,
);
const facts: Record<string, string | number> = {};
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const WINDOW = 5000;

async function loaded(options: Partial<EngineOptions>): Promise<{ engine: Engine; clock: { now: number } }> {
  const clock = { now: 1_700_000_000_000 };
  const engine = await createEngine({
    model: nexusFilesystemModel,
    format: "nexus",
    clock: () => clock.now,
    quantizationWindowMs: WINDOW,
    ...options,
  });
  await engine.write({ writes: [...workload.tuples] });
  clock.now += 2 * WINDOW + 1; // reads from here on see the load (and not on a window boundary)
  return { engine, clock };
}

// ------------------------------------------------------------------------------------------------------------
// 1. Steady read mix

const READS = Number(process.env.ENGINE_BENCH_READS ?? 40_000);
const READS_PER_SECOND = 10_000;
const WRITE_EVERY = 200; // 50 writes a simulated second

const configurations = [
  ["default (all layers, WASM)", {}],
  ["cache: false (WASM evaluator alone)", { cache: false }],
  ["cache: false, reference evaluator", { cache: false, evaluator: "reference" }],
] as const;

const mixAnswers: boolean[][] = [];
const hitRates: number[] = [];
for (const [name, options] of configurations) {
  const { engine, clock } = await loaded(options);
  const draws = zipfDraws(READS, workload.questions.length, 1.0, 11);
  const random = prng(5);
  const granted: { user: string; relation: string; object: string }[] = [];
  const answers: boolean[] = [];
  let warm = { hits: 0, requests: 0 };
  let evaluatorsAtHalf = 0;
  const evaluations = () => {
    const stats = engine.stats();
    if (stats.chain === undefined) return 0;
    return stats.chain.layers
      .filter((l) => l.layer === "wasm-evaluator" || l.layer === "evaluator")
      .reduce((sum, l) => sum + l.requests, 0);
  };
  let startedHalf = 0;
  for (let i = 0; i < READS; i++) {
    if (i === READS / 2) {
      const cache = engine.stats().chain?.layers.find((l) => l.layer === "result-cache");
      warm = { hits: cache?.hits ?? 0, requests: cache?.requests ?? 0 };
      evaluatorsAtHalf = evaluations();
      startedHalf = performance.now();
    }
    if (i % WRITE_EVERY === 0) {
      if (granted.length > 20 && random() < 0.5) {
        await engine.write({ deletes: [granted.shift()!] });
      } else {
        const t = {
          user: workload.users[Math.floor(random() * workload.users.length)]!,
          relation: "direct_viewer",
          object: workload.files[Math.floor(random() * workload.files.length)]!,
        };
        await engine.write({ writes: [t], onDuplicate: "ignore" });
        granted.push(t);
      }
    }
    answers.push(await engine.check(workload.questions[draws[i]!]!));
    clock.now += 1000 / READS_PER_SECOND;
  }
  const ms = performance.now() - startedHalf;
  const cache = engine.stats().chain?.layers.find((l) => l.layer === "result-cache");
  const measured = READS / 2;
  const hitRate = cache === undefined ? 0 : (cache.hits - warm.hits) / (cache.requests - warm.requests);
  facts[`steady mix, ${name}`] =
    `hit rate ${pct(hitRate)}, ${cache === undefined ? measured : evaluations() - evaluatorsAtHalf} evaluations, ` +
    `${Math.round((measured / ms) * 1000).toLocaleString("en-US")} reads/s (with 50 writes/s)`;
  console.log(
    `steady mix (${measured} reads after ${measured} warm-up): ${name}: ${facts[`steady mix, ${name}`]}`,
  );
  mixAnswers.push(answers);
  hitRates.push(hitRate);
  await engine.close();
}
for (const answers of mixAnswers.slice(1)) {
  if (answers.some((a, i) => a !== mixAnswers[0]![i])) throw new Error("steady mix: engines disagree");
}
facts["steady mix: answers equal across the three engines"] = `${READS} reads each`;
facts["hit-rate goal (≥95%, 5 s windows, default engine)"] = hitRates[0]! >= 0.95 ? "met" : "NOT met";

// ------------------------------------------------------------------------------------------------------------
// 2. Latency: layers on vs off

const byDefault = await loaded({});
const wasmOnly = await loaded({ cache: false });
const reference = await loaded({ cache: false, evaluator: "reference" });
const withBloom = await loaded({ cache: { bloom: true } });
const fresh = workload.questions.slice(0, 1000);
for (const q of fresh) {
  const expected = await reference.engine.check(q);
  if ((await byDefault.engine.check(q)) !== expected || (await wasmOnly.engine.check(q)) !== expected) {
    throw new Error(`engines disagree on ${JSON.stringify(q)}`);
  }
}
const hot = workload.questions.find((q) => q.user === workload.deepUser) ?? workload.questions[0]!;
// Misses through every layer: each call asks a question no cache has seen (fully_consistent after a write would
// also miss, but would time the write); 200,000 distinct (user, file) pairs, cycled.
const missUsers = workload.users.slice(0, 200);
const missFiles = workload.files.slice(0, 1000);
let missIndex = 0;
const nextMiss = () => {
  const i = missIndex++;
  return {
    user: missUsers[i % missUsers.length]!,
    relation: "read",
    object: missFiles[Math.floor(i / missUsers.length) % missFiles.length]!,
  };
};

// Denials of subjects no tuple names, each a new one (no cache has seen it).
const outsiderFile = workload.files[17]!;
let outsiderIndex = 0;
const nextOutsider = () => ({
  user: `user:outsider${outsiderIndex++}`,
  relation: "read",
  object: outsiderFile,
});
for (const engine of [byDefault.engine, withBloom.engine]) {
  if (await engine.check(nextOutsider())) throw new Error("an unknown subject was allowed");
}

const cases: BenchCase[] = [
  { name: "check, repeated (default: result cache hit)", fn: () => byDefault.engine.check(hot) },
  { name: "check, repeated (cache: false, WASM)", fn: () => wasmOnly.engine.check(hot) },
  { name: "check, repeated (cache: false, reference)", fn: () => reference.engine.check(hot) },
  { name: "check, miss through every layer (default)", fn: () => byDefault.engine.check(nextMiss()) },
  { name: "check, distinct questions (cache: false, WASM)", fn: () => wasmOnly.engine.check(nextMiss()) },
  {
    name: "denial of an unknown subject (default: the evaluator's subject rule)",
    fn: () => byDefault.engine.check(nextOutsider()),
  },
  {
    name: "denial of an unknown subject (cache.bloom: true: the Bloom filter)",
    fn: () => withBloom.engine.check(nextOutsider()),
  },
  {
    name: "checkBulk 1,000 repeated (default)",
    fn: () => byDefault.engine.checkBulk(fresh),
    opsPerCall: fresh.length,
  },
  {
    name: "checkBulk 1,000 repeated (cache: false, WASM)",
    fn: () => wasmOnly.engine.checkBulk(fresh),
    opsPerCall: fresh.length,
  },
];

// ------------------------------------------------------------------------------------------------------------
// 3. Write → every cache told

{
  const lags: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const started = performance.now();
    await byDefault.engine.write({
      writes: [{ user: `user:feed${i}`, relation: "direct_viewer", object: workload.files[i % 100]! }],
    });
    await byDefault.engine.caughtUp();
    lags.push(performance.now() - started);
  }
  lags.sort((a, b) => a - b);
  facts["write → every cache told (write included), median"] = formatMicros(lags[500]! * 1000);
  facts["write → every cache told (write included), p99"] = formatMicros(lags[990]! * 1000);
  facts["write → invalidation goal (<1 ms in-process)"] = lags[500]! < 1 ? "met" : "NOT met";
}

await runSuite("engine", cases, {
  comparisons: [
    { subject: "check, repeated (default: result cache hit)", peer: "check, repeated (cache: false, WASM)" },
    {
      subject: "check, repeated (default: result cache hit)",
      peer: "check, repeated (cache: false, reference)",
    },
    {
      subject: "check, miss through every layer (default)",
      peer: "check, distinct questions (cache: false, WASM)",
    },
    { subject: "checkBulk 1,000 repeated (default)", peer: "checkBulk 1,000 repeated (cache: false, WASM)" },
    {
      subject: "denial of an unknown subject (default: the evaluator's subject rule)",
      peer: "denial of an unknown subject (cache.bloom: true: the Bloom filter)",
    },
  ],
  goals: [{ case: "check, repeated (default: result cache hit)", maxP50Micros: 0.5 }],
  facts,
});
for (const s of [byDefault, wasmOnly, reference, withBloom]) await s.engine.close();
