/**
 * The check resolver chain (src/cache/), layer by layer, each with the layer on and off in the same run, on the
 * Nexus filesystem workload (bench/workloads/filesystem.ts: teams nested 5 deep, folders 4 deep).
 *
 * 1. Hit rate on a steady read mix (simulated clock, so the numbers do not depend on machine speed): questions
 *    drawn Zipf(1.0) from a pool of 5,000, 10,000 reads and 50 writes (grants toggled on random files) a simulated
 *    second; the hit rate of the second half (the first half warms the cache).
 *    Configurations: no quantization / 5 s windows, each with and without the change feed's cross-revision reuse.
 * 2. Latency (tinybench): a cache hit vs the plain evaluator; a Bloom denial vs evaluating it; 100 concurrent
 *    identical checks with and without singleflight; a batch of 1,000 through the chain vs one by one.
 * 3. Bloom: the share of denials it answers on the workload's questions and on a mix with 30% unknown subjects
 *    (new sign-ups), and the evaluation time that saves.
 * 4. Change feed: write → every cache told (ms, median and p99 over 2,000 writes).
 * 5. Tiger: filter 1,000 files for a deeply nested user from its materialised bitmap vs a batch of checks.
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/cache.bench.ts
 */
import { CheckChain, type CheckChainOptions } from "../src/cache/chain.js";
import { createEngine, type Engine } from "../src/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { ready } from "../src/wasm/loader.js";
import { type BenchCase, formatMicros, runSuite } from "./harness.js";
import { buildFilesystemWorkload, prng, type Question } from "./workloads/filesystem.js";

await ready();
const workload = buildFilesystemWorkload({ questions: 5000, seed: 7 });
console.log(
  `workload: ${Object.entries(workload.stats)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")}`,
);

interface Setup {
  engine: Engine;
  clock: { now: number };
}

async function loaded(window: number): Promise<Setup> {
  const clock = { now: 1_700_000_000_000 };
  const engine = await createEngine({
    model: nexusFilesystemModel,
    format: "nexus",
    clock: () => clock.now,
    quantizationWindowMs: window,
  });
  await engine.write({ writes: [...workload.tuples] });
  return { engine, clock };
}

function chainOf(setup: Setup, window: number, options: Partial<CheckChainOptions>): Promise<CheckChain> {
  return CheckChain.open({
    program: setup.engine.program,
    store: setup.engine.store,
    clock: () => setup.clock.now,
    quantizationWindowMs: window,
    ...options,
  });
}

const layer = (chain: CheckChain, name: string) => chain.stats().layers.find((l) => l.layer === name)!;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const facts: Record<string, string | number> = {};

// ------------------------------------------------------------------------------------------------------------
// 1. Hit rate on a steady read mix

/** Reads per configuration; the first half warms the cache, the hit rate is that of the second half. */
const READS = Number(process.env.CACHE_BENCH_READS ?? 60_000);
const READS_PER_SECOND = 10_000;
const WRITE_EVERY = 200; // 50 writes a simulated second
const ZIPF_S = 1.0;

/** Question indexes drawn Zipf(s) over the pool (rank 1 most popular), deterministic. */
function zipfDraws(count: number, pool: number, s: number, seed: number): Uint32Array {
  const random = prng(seed);
  const cdf = new Float64Array(pool);
  let total = 0;
  for (let i = 0; i < pool; i++) {
    total += 1 / (i + 1) ** s;
    cdf[i] = total;
  }
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const x = random() * total;
    let lo = 0;
    let hi = pool - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out[i] = lo;
  }
  return out;
}

async function steadyMix(window: number, watch: boolean): Promise<{ hitRate: number; evaluations: number }> {
  const setup = await loaded(window);
  const chain = await chainOf(setup, window, { watch, bloom: false });
  const draws = zipfDraws(READS, workload.questions.length, ZIPF_S, 11);
  const random = prng(5);
  const granted: { user: string; relation: string; object: string }[] = [];
  let warm = { hits: 0, requests: 0, evaluations: 0 };
  for (let i = 0; i < READS; i++) {
    if (i === READS / 2) {
      const c = layer(chain, "result-cache");
      warm = { hits: c.hits, requests: c.requests, evaluations: layer(chain, "evaluator").evaluations };
    }
    if (i % WRITE_EVERY === 0) {
      // Toggle a grant: revoke an old one or add a new one on a random file.
      if (granted.length > 20 && random() < 0.5) {
        await setup.engine.write({ deletes: [granted.shift()!] });
      } else {
        const t = {
          user: workload.users[Math.floor(random() * workload.users.length)]!,
          relation: "direct_viewer",
          object: workload.files[Math.floor(random() * workload.files.length)]!,
        };
        await setup.engine.write({ writes: [t], onDuplicate: "ignore" });
        granted.push(t);
      }
    }
    await chain.check(workload.questions[draws[i]!]!);
    setup.clock.now += 1000 / READS_PER_SECOND;
  }
  const cache = layer(chain, "result-cache");
  const evaluations = layer(chain, "evaluator").evaluations - warm.evaluations;
  await chain.close();
  await setup.engine.close();
  return { hitRate: (cache.hits - warm.hits) / (cache.requests - warm.requests), evaluations };
}

for (const [name, window, watch] of READS === 0
  ? []
  : ([
      ["no quantization, no feed", 0, false],
      ["no quantization, feed reuse", 0, true],
      ["5 s windows, no feed", 5000, false],
      ["5 s windows + feed reuse", 5000, true],
    ] as const)) {
  const started = performance.now();
  const { hitRate, evaluations } = await steadyMix(window, watch);
  facts[`hit rate, steady mix: ${name}`] = `${pct(hitRate)} (${evaluations} evaluations)`;
  console.log(
    `steady mix (${READS / 2} reads measured after ${READS / 2} warm-up, 50 writes/s): ${name}: hit rate ${pct(hitRate)}, ${evaluations} evaluations, ${(performance.now() - started).toFixed(0)} ms`,
  );
}
if (READS > 0)
  facts["hit-rate goal (5 s windows, ≥95%)"] = String(
    facts["hit rate, steady mix: 5 s windows + feed reuse"],
  );

// ------------------------------------------------------------------------------------------------------------
// 2. Latency, layer on vs off

const setup = await loaded(5000);
setup.clock.now += 10_000; // a window that includes the load
const full = await chainOf(setup, 5000, {});
const plain = await chainOf(setup, 5000, {
  resultCache: false,
  bloom: false,
  singleflight: false,
  watch: false,
});
const bloomOnly = await chainOf(setup, 5000, { resultCache: false, singleflight: false });
const flightOnly = await chainOf(setup, 5000, { resultCache: false, bloom: false, watch: false });
const tiger = await chainOf(setup, 5000, {
  resultCache: false,
  bloom: false,
  tiger: { materializeAfter: 1 },
});
const hot: Question = workload.questions.find((q) => q.user === workload.deepUser) ?? workload.questions[0]!;
const outsider: Question = { user: "user:outsider0", relation: "read", object: workload.files[17]! };

// Every configuration answers the same before anything is timed.
for (const q of workload.questions.slice(0, 500)) {
  const expected = await setup.engine.check(q);
  for (const chain of [full, plain, bloomOnly, flightOnly]) {
    if ((await chain.check(q)) !== expected) throw new Error(`chain disagrees on ${JSON.stringify(q)}`);
  }
}
await full.check(hot);

// Tiger: which of 1,000 files may the deeply nested user read (bitmap materialised once, before timing).
const FILTER_OBJECTS = workload.files.slice(0, 1000);
const tigerRequest = { user: workload.deepUser, relation: "read", objects: FILTER_OBJECTS };
const materialiseStarted = performance.now();
const viaTiger = await tiger.filter(tigerRequest);
facts["Tiger: materialise (subject, read, file) once"] =
  `${(performance.now() - materialiseStarted).toFixed(1)} ms`;
const viaChecks = await plain.filter(tigerRequest);
if (JSON.stringify(viaTiger) !== JSON.stringify(viaChecks)) throw new Error("Tiger filter disagrees");
facts["Tiger: allowed of the 1,000 filtered"] = viaTiger.length;

const BATCH = workload.questions.slice(0, 1000);
const cases: BenchCase[] = [
  { name: "filter 1,000 files, Tiger bitmap", fn: () => tiger.filter(tigerRequest) },
  { name: "filter 1,000 files, one batch of checks", fn: () => plain.filter(tigerRequest) },
  { name: "check, Tiger bitmap hit", fn: () => tiger.check(hot) },
  { name: "check, result cache hit (full chain)", fn: () => full.check(hot) },
  { name: "check, plain evaluator (all layers off)", fn: () => plain.check(hot) },
  { name: "denial, Bloom on", fn: () => bloomOnly.check(outsider) },
  { name: "denial, Bloom off", fn: () => plain.check(outsider) },
  {
    name: "100 concurrent identical checks, singleflight on",
    fn: () => Promise.all(Array.from({ length: 100 }, () => flightOnly.check(hot))),
    opsPerCall: 100,
  },
  {
    name: "100 concurrent identical checks, singleflight off",
    fn: () => Promise.all(Array.from({ length: 100 }, () => plain.check(hot))),
    opsPerCall: 100,
  },
  {
    name: "1,000 checks as one batch (no caches)",
    fn: () => plain.checkMany(BATCH),
    opsPerCall: BATCH.length,
  },
  {
    name: "1,000 checks one by one (no caches)",
    fn: async () => {
      for (const q of BATCH) await plain.check(q);
    },
    opsPerCall: BATCH.length,
  },
];

// ------------------------------------------------------------------------------------------------------------
// 3. Bloom: share of denials answered, and what that saves

async function bloomShare(questions: readonly Question[], label: string): Promise<void> {
  const before = layer(bloomOnly, "bloom-negative");
  let denials = 0;
  for (const q of questions) if (!(await plain.check(q))) denials++;
  const startedOff = performance.now();
  for (const q of questions) await plain.check(q);
  const offMs = performance.now() - startedOff;
  const startedOn = performance.now();
  for (const q of questions) await bloomOnly.check(q);
  const onMs = performance.now() - startedOn;
  const after = layer(bloomOnly, "bloom-negative");
  const answered = after.hits - before.hits;
  facts[`Bloom, ${label}`] =
    `${answered}/${denials} denials answered (${pct(answered / Math.max(1, denials))}); ` +
    `${questions.length} checks ${offMs.toFixed(1)} ms → ${onMs.toFixed(1)} ms`;
}
await bloomShare(workload.questions, "workload questions");
const random = prng(99);
const signups = workload.questions.map((q, i) => (random() < 0.3 ? { ...q, user: `user:new${i}` } : q));
await bloomShare(signups, "30% unknown subjects");
facts["Bloom memory (bytes)"] = Number(layer(bloomOnly, "bloom-negative").extra?.memoryBytes ?? 0);

// ------------------------------------------------------------------------------------------------------------
// 4. Change feed: write → every cache told

{
  const feedSetup = await loaded(5000);
  const chain = await chainOf(feedSetup, 5000, {});
  let told = 0;
  chain.feed!.subscribe({
    onChanges: () => {
      told = performance.now();
    },
    onReset: () => {},
  });
  const lags: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const started = performance.now();
    const { revision } = await feedSetup.engine.write({
      writes: [{ user: `user:feed${i}`, relation: "direct_viewer", object: workload.files[i % 100]! }],
    });
    await chain.caughtUp(revision);
    lags.push(told - started);
  }
  lags.sort((a, b) => a - b);
  facts["write → invalidation, median"] = formatMicros(lags[1000]! * 1000);
  facts["write → invalidation, p99"] = formatMicros(lags[1980]! * 1000);
  facts["write → invalidation goal (<1 ms in-process)"] = lags[1000]! < 1 ? "met" : "NOT met";
  await chain.close();
  await feedSetup.engine.close();
}

facts["Tiger memory (bytes)"] = Number(layer(tiger, "tiger").extra?.memoryBytes ?? 0);
await runSuite("cache", cases, {
  comparisons: [
    { subject: "check, result cache hit (full chain)", peer: "check, plain evaluator (all layers off)" },
    { subject: "denial, Bloom on", peer: "denial, Bloom off" },
    {
      subject: "100 concurrent identical checks, singleflight on",
      peer: "100 concurrent identical checks, singleflight off",
    },
    { subject: "1,000 checks as one batch (no caches)", peer: "1,000 checks one by one (no caches)" },
    { subject: "filter 1,000 files, Tiger bitmap", peer: "filter 1,000 files, one batch of checks" },
    { subject: "check, Tiger bitmap hit", peer: "check, plain evaluator (all layers off)" },
  ],
  goals: [{ case: "filter 1,000 files, Tiger bitmap", maxP50Micros: 20 }],
  facts,
});
// Counted after the timed runs (the suite's facts are fixed before they start).
const flight = layer(flightOnly, "singleflight");
console.log(
  `  singleflight over the whole run: ${flight.requests} checks, ${flight.evaluations} evaluations, ${flight.shared} shared`,
);
const tigerLayer = layer(tiger, "tiger");
console.log(
  `  Tiger over the whole run: ${tigerLayer.hits} answers from bitmaps, ${tigerLayer.extra?.materialised} materialised`,
);

for (const chain of [full, plain, bloomOnly, flightOnly, tiger]) await chain.close();
await setup.engine.close();
