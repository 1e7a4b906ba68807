/**
 * Predictive warming (src/pipeline/warming.ts) on a replayed synthetic access trace over the Nexus filesystem
 * workload (bench/workloads/filesystem.ts, with 2 root folders, 3 levels of 4 sub-folders, 8 files per leaf
 * folder, teams nested 5 deep).
 *
 * The trace (deterministic from a seed): 32 users walk the folder tree. A step lists the user's current folder
 * (one `filter` over its children, as Nexus's filter_list does for a directory listing), opens 1-3 files of a
 * leaf folder (`check` read, sometimes write), then moves: mostly down to a child (each folder has a popular
 * child most users pick, so paths repeat across users), sometimes to a sibling, up, or back to the root. Every
 * step is 250 ms of simulated time; every 100 steps a grant is added or revoked on a folder 1-2 levels deep.
 *
 * The same trace is replayed against a CheckChain (5 s quantization windows, simulated clock) without and with
 * the warmer, with the Tiger layer off and on. The warmer runs between trace steps: before each request the
 * replay awaits `chain.caughtUp()` and `warmer.idle()` (the warmer's loop drained to what its budget allows at the
 * simulated instant), so the numbers are deterministic and the warming never overlaps a measured request; the
 * time spent warming is reported separately ("background ms").
 *
 * Hit rate seen by the trace's requests: a question (one object of a listing, or one check) is a hit when the
 * caches answered it (result cache, Bloom, or an already materialised Tiger bitmap), a miss when the evaluator
 * ran or a Tiger bitmap was materialised for it. A request is a hit when all its questions are. Latency: wall
 * time per request (p50 / p99), the trace's requests only.
 *
 * Then tinybench: the request-path cost of `observe()` (a result-cache hit with and without it), and the
 * background loop's cost per observation (flat ids, as in the peer bench, and the trace's path ids).
 *
 * Run: BENCH_TIME=300 node --import tsx --expose-gc bench/warming.bench.ts
 */

import { createEngine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { CheckChain } from "../src/pipeline/chain.js";
import { Warmer, type WarmerOptions, warmKey, warmThrough } from "../src/pipeline/warming/index.js";
import { ready } from "../src/wasm/loader.js";
import { type BenchCase, formatMicros, runSuite } from "./harness.js";
import { buildFilesystemWorkload, prng } from "./workloads/filesystem.js";

await ready();
// Folders 3 levels deep (1,024 files): materialising one Tiger bitmap (a reference list objects) costs ~100 ms
// here, ~0.5-1 s on the 4-level default, which would make the Tiger replays take many minutes.
const workload = buildFilesystemWorkload({ seed: 7, folderDepth: 3 });
console.log(
  `workload: ${Object.entries(workload.stats)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")}`,
);

const STEPS = Number(process.env.WARMING_BENCH_STEPS ?? 1500);
const STEP_MS = 250;
const WRITE_EVERY = 100;
const WINDOW_MS = 5000;
const ACTIVE_USERS = 32;
/** Which configurations to replay (a substring filter on their names; default all). */
const ONLY = process.env.WARMING_BENCH_ONLY;
const START = 1_700_000_000_000;

// ------------------------------------------------------------------------------------------------------------
// The tree and the trace

const children = new Map<string, string[]>();
const parentOf = new Map<string, string>();
for (const t of workload.tuples) {
  if (t.relation !== "parent") continue;
  parentOf.set(t.object, t.user);
  const list = children.get(t.user);
  if (list === undefined) children.set(t.user, [t.object]);
  else list.push(t.object);
}
const folders = new Set(workload.folders);
const subfolders = (dir: string) => (children.get(dir) ?? []).filter((c) => folders.has(c));
const filesIn = (dir: string) => (children.get(dir) ?? []).filter((c) => !folders.has(c));
/** A stable per-folder preference, so that different users tend to take the same turns. */
const favourite = (dir: string, n: number) => {
  let h = 2166136261;
  for (let i = 0; i < dir.length; i++) h = Math.imul(h ^ dir.charCodeAt(i), 16777619);
  return (h >>> 0) % n;
};

type TraceEvent =
  | { kind: "list"; user: string; dir: string }
  | { kind: "check"; user: string; relation: "read" | "write"; object: string }
  | { kind: "write"; grant: boolean; tuple: { user: string; relation: string; object: string } }
  | { kind: "tick" };

function buildTrace(steps: number, seed: number): TraceEvent[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const members = workload.users.filter((u) => u.startsWith("user:team"));
  const active: string[] = [];
  while (active.length < ACTIVE_USERS) {
    const u = pick(members);
    if (!active.includes(u)) active.push(u);
  }
  const rootOf = (user: string) => `file:root${/^user:team(\d+)/.exec(user)![1]}`;
  const at = new Map(active.map((u) => [u, rootOf(u)]));
  const deepFolders = workload.folders.filter((f) => {
    const depth = f.split("/").length - 1;
    return depth === 1 || depth === 2;
  });
  const granted: { user: string; relation: string; object: string }[] = [];
  const events: TraceEvent[] = [];
  for (let step = 0; step < steps; step++) {
    if (step > 0 && step % WRITE_EVERY === 0) {
      if (granted.length > 10 && random() < 0.5) {
        events.push({
          kind: "write",
          grant: false,
          tuple: granted.splice(Math.floor(random() * granted.length), 1)[0]!,
        });
      } else {
        const tuple = { user: pick(active), relation: "direct_viewer", object: pick(deepFolders) };
        if (!granted.some((g) => g.user === tuple.user && g.object === tuple.object)) {
          granted.push(tuple);
          events.push({ kind: "write", grant: true, tuple });
        }
      }
    }
    events.push({ kind: "tick" });
    const user = pick(active);
    const dir = at.get(user)!;
    events.push({ kind: "list", user, dir });
    const files = filesIn(dir);
    if (files.length > 0) {
      const opens = 1 + Math.floor(random() * 3);
      for (let i = 0; i < opens; i++) {
        const object = random() < 0.5 ? files[favourite(`${dir}#${i}`, files.length)]! : pick(files);
        events.push({ kind: "check", user, relation: random() < 0.85 ? "read" : "write", object });
      }
    }
    // Move: down (a popular child most of the time), sideways, up, or back to the root.
    const subs = subfolders(dir);
    const parent = parentOf.get(dir);
    const r = random();
    let next = dir;
    if (subs.length > 0 && r < 0.75) next = random() < 0.7 ? subs[favourite(dir, subs.length)]! : pick(subs);
    else if (parent !== undefined && r < 0.9) {
      const siblings = subfolders(parent);
      next = random() < 0.6 ? siblings[favourite(parent, siblings.length)]! : pick(siblings);
    } else if (parent !== undefined && r < 0.95) next = parent;
    else next = rootOf(user);
    at.set(user, next);
  }
  return events;
}

const trace = buildTrace(STEPS, 2024);
const traceCounts = { list: 0, check: 0, write: 0 };
for (const e of trace) if (e.kind !== "tick") traceCounts[e.kind]++;
console.log(
  `trace: ${STEPS} steps (${STEP_MS} ms simulated each), ${traceCounts.list} listings, ${traceCounts.check} checks, ${traceCounts.write} writes, ${ACTIVE_USERS} users`,
);

// ------------------------------------------------------------------------------------------------------------
// Replay

interface Replay {
  name: string;
  questions: number;
  questionHits: number;
  requests: number;
  requestHits: number;
  /** Per-request wall times (µs), listings and checks. */
  listMicros: number[];
  checkMicros: number[];
  backgroundMs: number;
  /** Wall time of the trace's own requests. */
  requestMs: number;
  warmed: number;
  /** Distinct questions warmed, and how many of them the trace asked afterwards. */
  distinctWarmed: number;
  useful: number;
  warmErrors: number;
  refreshes: number;
  wallMs: number;
}

interface Counters {
  evaluations: number;
  materialised: number;
}

function countersOf(chain: CheckChain): Counters {
  let evaluations = 0;
  let materialised = 0;
  for (const l of chain.stats().layers) {
    if (l.layer === "evaluator") evaluations += l.evaluations;
    if (l.layer === "tiger") materialised += Number(l.extra?.materialised ?? 0);
  }
  return { evaluations, materialised };
}

async function replay(
  name: string,
  tiger: boolean,
  warming: Partial<WarmerOptions> | false,
): Promise<Replay> {
  const started = performance.now();
  const clock = { now: START };
  const engine = await createEngine({
    model: nexusFilesystemModel,
    format: "nexus",
    clock: () => clock.now,
    quantizationWindowMs: WINDOW_MS,
    cache: false,
  });
  await engine.write({ writes: [...workload.tuples] });
  const chain = await CheckChain.open({
    program: engine.program,
    store: engine.store,
    clock: () => clock.now,
    quantizationWindowMs: WINDOW_MS,
    ...(tiger ? { tiger: {} } : {}),
  });
  // Which questions were warmed, to count how many the trace went on to ask (the warming's precision).
  const warmedKeys = new Set<string>();
  const usefulKeys = new Set<string>();
  const through = warmThrough(chain);
  const warmer =
    warming === false
      ? undefined
      : new Warmer({
          warm: (questions, signal) => {
            for (const q of questions) warmedKeys.add(warmKey(q));
            return through(questions, signal);
          },
          clock: () => clock.now,
          quantizationWindowMs: WINDOW_MS,
          ...warming,
        });
  if (warmer !== undefined) chain.feed!.subscribe(warmer);
  const result: Replay = {
    name,
    questions: 0,
    questionHits: 0,
    requests: 0,
    requestHits: 0,
    listMicros: [],
    checkMicros: [],
    backgroundMs: 0,
    requestMs: 0,
    warmed: 0,
    distinctWarmed: 0,
    useful: 0,
    warmErrors: 0,
    refreshes: 0,
    wallMs: 0,
  };
  const measure = async (keys: readonly string[], run: () => Promise<unknown>, into: number[]) => {
    const questions = keys.length;
    for (const key of keys) if (warmedKeys.has(key)) usefulKeys.add(key);
    if (warmer !== undefined) {
      const t = performance.now();
      await chain.caughtUp();
      await warmer.idle();
      result.backgroundMs += performance.now() - t;
    }
    const before = countersOf(chain);
    const t0 = performance.now();
    await run();
    const took = performance.now() - t0;
    into.push(took * 1000);
    result.requestMs += took;
    const after = countersOf(chain);
    const misses =
      after.materialised > before.materialised
        ? questions
        : Math.min(questions, after.evaluations - before.evaluations);
    result.questions += questions;
    result.questionHits += questions - misses;
    result.requests++;
    if (misses === 0) result.requestHits++;
  };
  for (const event of trace) {
    switch (event.kind) {
      case "tick":
        clock.now += STEP_MS;
        break;
      case "write":
        await engine.write(event.grant ? { writes: [event.tuple] } : { deletes: [event.tuple] });
        await chain.caughtUp();
        break;
      case "list": {
        const request = { user: event.user, relation: "read", objects: children.get(event.dir)! };
        const keys = request.objects.map((object) => warmKey({ ...request, object }));
        await measure(keys, () => chain.filter(request), result.listMicros);
        warmer?.observeListing(request);
        break;
      }
      case "check": {
        const request = { user: event.user, relation: event.relation, object: event.object };
        await measure([warmKey(request)], () => chain.check(request), result.checkMicros);
        warmer?.observe(request);
        break;
      }
    }
  }
  if (warmer !== undefined) {
    const s = warmer.stats();
    result.warmed = s.warmed;
    result.warmErrors = s.errors;
    result.refreshes = s.refreshes;
    result.distinctWarmed = warmedKeys.size;
    result.useful = usefulKeys.size;
    if (s.errors > 0) console.log(`  ${name}: warm errors: ${s.errors} (${s.lastError})`);
    await warmer.close();
  }
  await chain.close();
  await engine.close();
  result.wallMs = performance.now() - started;
  return result;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const facts: Record<string, string | number> = {
  trace: `${STEPS} steps, ${traceCounts.list} listings, ${traceCounts.check} checks, ${traceCounts.write} writes, ${ACTIVE_USERS} users`,
};
const replays: Replay[] = [];
const configurations: [name: string, tiger: boolean, warming: Partial<WarmerOptions> | false][] = [
  ["result cache, no warming", false, false],
  ["result cache + warming", false, {}],
  ["result cache + Tiger, no warming", true, false],
  ["result cache + Tiger + warming, no refresh after writes", true, { refreshUsers: 0 }],
  ["result cache + Tiger + warming", true, {}],
];
for (const [name, tiger, warming] of STEPS === 0
  ? []
  : configurations.filter(([name]) => ONLY === undefined || name.includes(ONLY))) {
  const r = await replay(name, tiger, warming);
  replays.push(r);
  console.log(`  replayed "${name}" in ${r.wallMs.toFixed(0)} ms`);
}
console.table(
  replays.map((r) => {
    const all = [...r.listMicros, ...r.checkMicros];
    return {
      configuration: r.name,
      "question hits": pct(r.questionHits / r.questions),
      "request hits": pct(r.requestHits / r.requests),
      "p50/request": formatMicros(quantile(all, 0.5)),
      "p99/request": formatMicros(quantile(all, 0.99)),
      "p50 listing": formatMicros(quantile(r.listMicros, 0.5)),
      "p99 listing": formatMicros(quantile(r.listMicros, 0.99)),
      "p50 check": formatMicros(quantile(r.checkMicros, 0.5)),
      "request ms": r.requestMs.toFixed(0),
      "warmed questions": r.warmed,
      "later asked": r.distinctWarmed === 0 ? "" : pct(r.useful / r.distinctWarmed),
      "background ms": r.backgroundMs.toFixed(0),
    };
  }),
);
for (const r of replays) {
  const all = [...r.listMicros, ...r.checkMicros];
  facts[`${r.name}: hit rate (questions / requests)`] =
    `${pct(r.questionHits / r.questions)} / ${pct(r.requestHits / r.requests)}`;
  facts[`${r.name}: latency p50 / p99 per request`] =
    `${formatMicros(quantile(all, 0.5))} / ${formatMicros(quantile(all, 0.99))}`;
  if (r.warmed > 0 || r.name.includes("warming")) {
    facts[`${r.name}: background`] =
      `${r.warmed} questions warmed (${r.distinctWarmed} distinct, ${pct(r.useful / Math.max(1, r.distinctWarmed))} of them asked later), ` +
      `${r.refreshes} refreshes, ${r.backgroundMs.toFixed(0)} ms warming vs ${r.requestMs.toFixed(0)} ms of requests, ${r.warmErrors} errors`;
  }
}
const gain = (base: string, warmed: string) => {
  const a = replays.find((r) => r.name === base);
  const b = replays.find((r) => r.name === warmed);
  if (a === undefined || b === undefined) return;
  const text =
    `question hit rate ${pct(a.questionHits / a.questions)} → ${pct(b.questionHits / b.questions)}, ` +
    `request hit rate ${pct(a.requestHits / a.requests)} → ${pct(b.requestHits / b.requests)}, ` +
    `misses ×${((b.questions - b.questionHits) / Math.max(1, a.questions - a.questionHits)).toFixed(2)}`;
  facts[`gain: ${warmed} vs ${base}`] = text;
  console.log(`gain, ${warmed} vs ${base}: ${text}`);
};
gain("result cache, no warming", "result cache + warming");
gain("result cache + Tiger, no warming", "result cache + Tiger + warming");

// ------------------------------------------------------------------------------------------------------------
// The request path's cost of observe()

const clock = { now: START };
const engine = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  clock: () => clock.now,
  cache: false,
});
await engine.write({ writes: [...workload.tuples] });
const chain = await CheckChain.open({ program: engine.program, store: engine.store, clock: () => clock.now });
// A budget that never lets a warm call run during the timed loop: only observe() itself is measured.
const warmer = new Warmer({
  warm: warmThrough(chain),
  clock: () => clock.now,
  questionsPerSecond: 1e-9,
  burst: 1,
});
/**
 * The warmer's loop, per observation: 64 observed then one step (what a timer runs between requests), at a budget
 * that starts no warm call. Flat ids (no directory, as in the peer bench) teach the tracker nothing: the step only
 * reads them; the trace's path ids are learned, noted as asked, and each predicts 16 questions for the queue.
 */
const loopWarmer = (): Warmer =>
  new Warmer({ warm: async () => {}, clock: () => clock.now, questionsPerSecond: 1e-9, burst: 1 });
const flatWarmer = loopWarmer();
const pathWarmer = loopWarmer();
const flat = Array.from({ length: 4096 }, (_, i) => ({
  user: workload.users[i % workload.users.length]!,
  relation: "read",
  object: `doc:r_${i % 10}_${(i >> 4) % 10}_${i % 97}`,
}));
let f = 0;
const hot = { user: workload.deepUser, relation: "read", object: workload.files[0]! };
await chain.check(hot);
const walk = trace
  .filter((e): e is Extract<TraceEvent, { kind: "check" }> => e.kind === "check")
  .slice(0, 1024);
let w = 0;
const cases: BenchCase[] = [
  { name: "check, result cache hit", fn: () => chain.check(hot) },
  {
    name: "check, result cache hit + warmer.observe()",
    fn: async () => {
      const allowed = await chain.check(hot);
      warmer.observe(hot);
      return allowed;
    },
  },
  {
    name: "warmer.observe() alone (trace accesses)",
    fn: () => {
      for (let i = 0; i < 64; i++) warmer.observe(walk[w++ % walk.length]!);
    },
    opsPerCall: 64,
  },
  {
    name: "warmer loop per observation, flat ids (background)",
    fn: async () => {
      for (let i = 0; i < 64; i++) flatWarmer.observe(flat[f++ % flat.length]!);
      await flatWarmer.idle();
    },
    opsPerCall: 64,
  },
  {
    name: "warmer loop per observation, trace accesses, 16 predictions each (background)",
    fn: async () => {
      for (let i = 0; i < 64; i++) pathWarmer.observe(walk[w++ % walk.length]!);
      await pathWarmer.idle();
    },
    opsPerCall: 64,
  },
  {
    name: "tracker.predict(k = 16) (background)",
    fn: () => {
      for (let i = 0; i < 16; i++) warmer.tracker.predict(walk[w++ % walk.length]!, 16);
    },
    opsPerCall: 16,
  },
];
await runSuite("warming", cases, {
  comparisons: [{ subject: "check, result cache hit + warmer.observe()", peer: "check, result cache hit" }],
  facts,
});
console.log(`  warmer during the timed loop: ${JSON.stringify({ ...warmer.stats(), tracker: undefined })}`);
await warmer.close();
await flatWarmer.close();
await pathWarmer.close();
await chain.close();
await engine.close();
