/**
 * The check resolver chain (src/pipeline/), layer by layer, each with the layer on and off in the same run, on the
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
 * 5. Tiger: filter 1,000 files for a deeply nested user from its materialised bitmap vs a batch of checks,
 *    through the chain and at the layer (`filterObjects`), on the workload's strings, on equal copies (hashed
 *    once) and on fresh strings (never hashed: a request parsed from JSON); the steps of one filter (Map lookups,
 *    bit tests: JS copy vs roaring `has`); the layer's cost for questions it passes through (nothing
 *    materialised, over a stub evaluator that answers at once); and a write followed by a filter: the bitmap
 *    brought forward incrementally vs re-materialised.
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/cache.bench.ts
 */
import { RoaringBitmap32 } from "roaring-wasm";
import { TupleDepthBound } from "../src/changes/depth.js";
import { ChangeFeed } from "../src/changes/feed.js";
import { influenceOf } from "../src/changes/influence.js";
import { createEngine, type Engine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { CheckChain, type CheckChainOptions, depthGuardOf } from "../src/pipeline/chain.js";
import { ReferenceResolver } from "../src/pipeline/reference.js";
import { TigerResolver } from "../src/pipeline/tiger/index.js";
import type { CheckResolver, ResolvedCheck } from "../src/pipeline/types.js";
import { parseSubject } from "../src/tuples/tuple.js";
import { ready } from "../src/wasm/loader.js";
import { type BenchCase, formatMicros, runSuite } from "./harness.js";
import { buildFilesystemWorkload, prng, type Question } from "./workloads/filesystem.js";
import { zipfDraws } from "./workloads/zipf.js";

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

// The layer itself, over the same store: a resolved question (what the chain hands it), materialised once.
// The depth guard the chain gives Tiger: the data-level bound lets it deny on the recursive folder tree.
const layerFeed = await ChangeFeed.open(setup.engine.store);
const layerDepth = await TupleDepthBound.open(setup.engine.store, layerFeed);
await layerFeed.caughtUp();
const layerContext = {
  program: setup.engine.program,
  store: setup.engine.store,
  influence: influenceOf(setup.engine.program),
  depthGuard: depthGuardOf(influenceOf(setup.engine.program), layerDepth, 25),
};
const tigerLayer = await TigerResolver.open(new ReferenceResolver(layerContext), layerContext, {
  materializeAfter: 1,
});
const layerRevision = await setup.engine.store.currentRevision();
function resolvedFor(
  user: string,
  relation: string,
  object: string,
  revision = layerRevision,
): ResolvedCheck {
  return {
    tenant: "default",
    subjectTenant: "default",
    object,
    objectType: object.slice(0, object.indexOf(":")),
    relation,
    subject: parseSubject(user)!,
    user,
    revision,
    now: setup.clock.now,
    context: undefined,
    contextualTuples: [],
    key: undefined,
  };
}
const layerCheck = resolvedFor(workload.deepUser, "read", FILTER_OBJECTS[0]!);
/** The chain's own per-object validation, which the layer runs only for objects it has no id for. */
const validateFile = (object: unknown, index: number): void => {
  if (
    typeof object !== "string" ||
    object.length <= 5 ||
    !object.startsWith("file:") ||
    object === "file:*" ||
    object.includes("\u0000")
  ) {
    throw new Error(`objects[${index}] is not a file`);
  }
};
const fromLayer = await tigerLayer.filterObjects(layerCheck, FILTER_OBJECTS, validateFile);
if (JSON.stringify(fromLayer) !== JSON.stringify(viaChecks)) throw new Error("Tiger layer disagrees");
// Half the deep user's files (root0) and half files of the other root it cannot read (never interned).
const HALF_UNKNOWN = workload.files.slice(workload.files.length / 2 - 500, workload.files.length / 2 + 500);
const halfAllowed = await tigerLayer.filterObjects(layerCheck, HALF_UNKNOWN, validateFile);
const halfExpected = await plain.filter({ ...tigerRequest, objects: HALF_UNKNOWN });
if (JSON.stringify(halfAllowed) !== JSON.stringify(halfExpected))
  throw new Error("Tiger layer disagrees (half)");
facts["Tiger: allowed of the half-unknown 1,000"] = halfAllowed!.length;
// Equal strings that are other objects than the interned ones (a caller's own copy, hashed after its first use).
const EQUAL_COPY: string[] = JSON.parse(JSON.stringify(FILTER_OBJECTS));

/** Median of `rounds` timings of `fn` (µs), for facts tinybench cannot time (each call needs fresh input). */
async function medianMicrosAsync(rounds: number, fn: (round: number) => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    await fn(r);
    samples.push((performance.now() - started) * 1000);
  }
  return samples.sort((a, b) => a - b)[rounds >> 1]!;
}

// Fresh strings every call: what a server sees (each path hashed once, by the first Map lookup).
{
  const ROUNDS = 300;
  const fresh = Array.from({ length: ROUNDS }, () => JSON.parse(JSON.stringify(FILTER_OBJECTS)) as string[]);
  facts["Tiger layer: filter 1,000 fresh strings (JSON-parsed per call), p50"] = formatMicros(
    await medianMicrosAsync(ROUNDS, (r) => tigerLayer.filterObjects(layerCheck, fresh[r]!, validateFile)),
  );
}

// The steps of one filter of 1,000 paths, each alone (timed as cases below): the id lookups, and the bit tests on
// the JS-side copy vs roaring's own `has` (a call into WASM each).
const stepIds = new Map<string, number>(FILTER_OBJECTS.map((o, i) => [o, i]));
const stepRoaring = new RoaringBitmap32();
for (let i = 0; i < 1000; i += 2) stepRoaring.add(i);
const stepBits = new Uint32Array(32);
for (let i = 0; i < 1000; i += 2) stepBits[i >>> 5]! |= 1 << (i & 31);
const stepCases: BenchCase[] = [
  {
    name: "step: 1,000 Map lookups (same string objects)",
    fn: () => {
      let n = 0;
      for (const o of FILTER_OBJECTS) n += stepIds.get(o)!;
      return n;
    },
  },
  {
    name: "step: 1,000 Map lookups (equal copies)",
    fn: () => {
      let n = 0;
      for (const o of EQUAL_COPY) n += stepIds.get(o)!;
      return n;
    },
  },
  {
    name: "step: 1,000 roaring has (WASM)",
    fn: () => {
      let n = 0;
      for (let i = 0; i < 1000; i++) if (stepRoaring.has(i)) n++;
      return n;
    },
  },
  {
    name: "step: 1,000 JS bitset tests",
    fn: () => {
      let n = 0;
      for (let i = 0; i < 1000; i++) n += (stepBits[i >>> 5]! >>> (i & 31)) & 1;
      return n;
    },
  },
];

// What the layer costs a question it passes through (nothing materialised): over an evaluator that answers at once.
const instant = { allowed: false, revision: layerRevision, validUntil: Number.POSITIVE_INFINITY };
const stubEvaluator: CheckResolver = {
  layer: "stub",
  resolve: () => Promise.resolve(instant),
  resolveMany: (checks) => Promise.resolve(checks.map(() => instant)),
  stats: () => [],
  close: async () => {},
};
const tigerPassing = await TigerResolver.open(stubEvaluator, layerContext, {
  materializeAfter: 1_000_000_000,
});
const PASSING = workload.questions.slice(0, 1000).map((q) => resolvedFor(q.user, q.relation, q.object));

// A write, then a filter of the deep user's files: brought forward (re-checking what the write reaches) vs
// re-materialised. Its own engine, so the timed cases below see the workload unchanged.
{
  const writeSetup = await loaded(5000);
  const incremental = await chainOf(writeSetup, 5000, {
    resultCache: false,
    bloom: false,
    tiger: { materializeAfter: 1 },
  });
  const rebuilding = await chainOf(writeSetup, 5000, {
    resultCache: false,
    bloom: false,
    tiger: { materializeAfter: 1, incremental: false },
  });
  const request = { ...tigerRequest, consistency: "fully_consistent" as const };
  await incremental.filter(request);
  await rebuilding.filter(request);
  const random = prng(31);
  const toggled: { user: string; relation: string; object: string }[] = [];
  const writeOnce = async (): Promise<void> => {
    if (toggled.length > 10 && random() < 0.5) {
      await writeSetup.engine.write({ deletes: [toggled.shift()!] });
    } else {
      const t = {
        user: workload.users[Math.floor(random() * workload.users.length)]!,
        relation: "direct_viewer",
        object: workload.files[Math.floor(random() * workload.files.length)]!,
      };
      await writeSetup.engine.write({ writes: [t], onDuplicate: "ignore" });
      toggled.push(t);
    }
    writeSetup.clock.now += 1;
    await incremental.caughtUp();
  };
  const timeAfterWrites = async (chain: CheckChain, rounds: number): Promise<number> => {
    const samples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      await writeOnce();
      const started = performance.now();
      const allowed = await chain.filter(request);
      samples.push((performance.now() - started) * 1000);
      if (allowed.length === 0) throw new Error("unexpected empty filter");
    }
    return samples.sort((a, b) => a - b)[rounds >> 1]!;
  };
  const incrementalMicros = await timeAfterWrites(incremental, 60);
  const rebuildMicros = await timeAfterWrites(rebuilding, 5);
  // Both answer exactly (the same state, the same question).
  if (
    JSON.stringify(await incremental.filter(request)) !== JSON.stringify(await rebuilding.filter(request))
  ) {
    throw new Error("incremental and rebuilt Tiger bitmaps disagree");
  }
  const inc = layer(incremental, "tiger").extra!;
  const reb = layer(rebuilding, "tiger").extra!;
  facts["Tiger after a grant toggle: filter 1,000, brought forward (p50)"] =
    `${formatMicros(incrementalMicros)} (${inc.incrementalUpdates} updates, ${inc.rechecked} objects re-checked, ${inc.rebuilds} rebuilds)`;
  facts["Tiger after a grant toggle: filter 1,000, re-materialised (p50)"] =
    `${formatMicros(rebuildMicros)} (${reb.rebuilds} rebuilds)`;
  // A change that reaches every file under a root (a membership of the root team): too broad, re-materialised.
  await writeSetup.engine.write({
    writes: [{ user: "user:newcomer", relation: "member", object: workload.teams[0]! }],
  });
  await incremental.caughtUp();
  const started = performance.now();
  await incremental.filter(request);
  const broad = layer(incremental, "tiger").extra!;
  facts["Tiger after a root-team membership change: filter 1,000 (falls back)"] =
    `${((performance.now() - started) / 1000).toFixed(2)} s (fallback.tooBroad ${broad["fallback.tooBroad"]}, rebuilds ${broad.rebuilds})`;
  await incremental.close();
  await rebuilding.close();
  await writeSetup.engine.close();
}

const BATCH = workload.questions.slice(0, 1000);
const cases: BenchCase[] = [
  { name: "filter 1,000 files, Tiger bitmap", fn: () => tiger.filter(tigerRequest) },
  {
    name: "filter 1,000 files, Tiger layer (filterObjects)",
    fn: () => tigerLayer.filterObjects(layerCheck, FILTER_OBJECTS, validateFile),
  },
  {
    name: "filter 1,000 files, Tiger layer, equal copies",
    fn: () => tigerLayer.filterObjects(layerCheck, EQUAL_COPY, validateFile),
  },
  {
    name: "filter 1,000 files, Tiger layer, half never interned",
    fn: () => tigerLayer.filterObjects(layerCheck, HALF_UNKNOWN, validateFile),
  },
  {
    name: "1,000 checks through Tiger, nothing materialised (stub evaluator)",
    fn: async () => {
      for (const c of PASSING) await tigerPassing.resolve(c);
    },
    opsPerCall: 1000,
  },
  {
    name: "1,000 checks, stub evaluator alone",
    fn: async () => {
      for (const c of PASSING) await stubEvaluator.resolve(c);
    },
    opsPerCall: 1000,
  },
  {
    name: "batch of 1,000 through Tiger, nothing materialised (stub evaluator)",
    fn: () => tigerPassing.resolveMany(PASSING),
    opsPerCall: 1000,
  },
  {
    name: "batch of 1,000, stub evaluator alone",
    fn: () => stubEvaluator.resolveMany(PASSING),
    opsPerCall: 1000,
  },
  ...stepCases,
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
    { subject: "filter 1,000 files, Tiger layer (filterObjects)", peer: "filter 1,000 files, Tiger bitmap" },
    {
      subject: "1,000 checks through Tiger, nothing materialised (stub evaluator)",
      peer: "1,000 checks, stub evaluator alone",
    },
    {
      subject: "batch of 1,000 through Tiger, nothing materialised (stub evaluator)",
      peer: "batch of 1,000, stub evaluator alone",
    },
    { subject: "step: 1,000 JS bitset tests", peer: "step: 1,000 roaring has (WASM)" },
    { subject: "check, Tiger bitmap hit", peer: "check, plain evaluator (all layers off)" },
  ],
  goals: [
    { case: "filter 1,000 files, Tiger bitmap", maxP50Micros: 20 },
    { case: "filter 1,000 files, Tiger layer (filterObjects)", maxP50Micros: 20 },
  ],
  facts,
});
// Counted after the timed runs (the suite's facts are fixed before they start).
const flight = layer(flightOnly, "singleflight");
console.log(
  `  singleflight over the whole run: ${flight.requests} checks, ${flight.evaluations} evaluations, ${flight.shared} shared`,
);
const tigerStats = layer(tiger, "tiger");
console.log(
  `  Tiger over the whole run: ${tigerStats.hits} answers from bitmaps, ${tigerStats.extra?.materialised} materialised`,
);

for (const chain of [full, plain, bloomOnly, flightOnly, tiger]) await chain.close();
await tigerLayer.close();
stepRoaring.dispose();
await tigerPassing.close();
await layerDepth.close();
await layerFeed.close();
await setup.engine.close();
