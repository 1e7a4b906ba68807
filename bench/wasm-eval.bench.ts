/**
 * The WASM evaluator against the reference evaluator, in the same run, on the filesystem workload
 * (bench/workloads/filesystem.ts: teams nested 5 deep, a folder tree 4 deep whose files inherit through `parent`,
 * Nexus preset model). Both engines share one store; every answer is asserted equal before anything is timed.
 *
 * Cases:
 * - kernel check cold / new subjects / warm: WasmEvaluator.checkOn (one kernel call), 100 questions per timed
 *   call; cold forgets the kept subproblem facts and object plans before each call, new subjects forgets only the
 *   facts (the objects were asked about before, by other subjects: a server's steady state), warm asks the same
 *   100 questions again;
 * - engine check: Engine.check with evaluator "wasm" vs "reference" (request validation, consistency, async);
 * - group membership: user in a root team through 5 levels of nesting, kernel vs reference;
 * - bulk 100 / 1,000 (also cold: facts and plans forgotten before each call) / 100,000: Engine.checkBulk, wasm vs
 *   reference, and the kernel batch alone (WasmEvaluator.checkManyOn) for 1,000, warm and cold;
 * - listObjects: every file the deep user may read, the default engine's way (the kernel's reverse expansion where it
 *   is exact, else its candidates checked in the kernel; src/pipeline/listing.ts) vs the reference engine;
 * - parallel: checkBulk 100,000 and the kernel batch of 100,000 on the worker pool vs one thread.
 * Facts printed: graph build time, kernel memory per tuple.
 */

import { createEngine } from "../src/engine/engine.js";
import { nexusFilesystemModel } from "../src/model/preset.js";
import { setParallelThreshold } from "../src/parallel/thresholds.js";
import type { CheckQuery } from "../src/reference/check.js";
import { parseSubject } from "../src/tuples/tuple.js";
import type { WasmAnswer, WasmEvaluator } from "../src/wasm-eval/evaluator.js";
import { enableParallelBulkCheck } from "../src/wasm-eval/parallel.js";
import { runSuite } from "./harness.js";
import { buildFilesystemWorkload, type Question } from "./workloads/filesystem.js";

const workload = buildFilesystemWorkload({ questions: 100_000 });
console.log(
  `workload: ${Object.entries(workload.stats)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")}`,
);

const wasm = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  evaluator: "wasm",
  cache: false,
});
const reference = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  evaluator: "reference",
  store: wasm.store,
  cache: false,
});
const parallelEngine = await createEngine({
  model: nexusFilesystemModel,
  format: "nexus",
  evaluator: "wasm",
  store: wasm.store,
  cache: false,
});
const checker = enableParallelBulkCheck(parallelEngine)!;
const { token } = await wasm.write({ writes: [...workload.tuples] });
const fresh = { atLeastAsFresh: token } as const;
const fast: WasmEvaluator = wasm.wasmEvaluator!;
const revision = await wasm.revisionFor(fresh);

let started = performance.now();
const graph = (await fast.graphAt("default", revision))!;
const buildMs = performance.now() - started;
// Memory of the compiled graph alone, before any check stores subproblem facts.
const graphOnly = fast.memoryBytes;

const toQuery = (q: Question): CheckQuery => ({
  tenant: "default",
  subjectTenant: "default",
  object: q.object,
  relation: q.relation,
  user: q.user,
  subject: parseSubject(q.user)!,
});
const all = workload.questions;
const q100 = all.slice(0, 100).map((q) => ({ ...q, consistency: fresh }));
const q1000 = all.slice(0, 1000).map((q) => ({ ...q, consistency: fresh }));
const q100k = all.map((q) => ({ ...q, consistency: fresh }));
const kernelQueries = all.slice(0, 1000).map(toQuery);
const kernelQueries100k = all.map(toQuery);
const indices100k = Array.from({ length: all.length }, (_, i) => i);
const answers100k: WasmAnswer[] = new Array(all.length);

// Membership: the deep user in its root team (5 levels of nesting).
const rootTeam = workload.teams[0]!;
const membership = { user: workload.deepUser, relation: "member", object: rootTeam };
const membershipQuery = toQuery(membership);

// --- every answer equal before timing
started = performance.now();
const expected = await reference.checkBulk(q1000);
const referenceBulkMs = performance.now() - started;
const got = await wasm.checkBulk(q1000);
for (let i = 0; i < expected.length; i++) {
  if (got[i] !== expected[i]) throw new Error(`answers differ on ${JSON.stringify(q1000[i])}`);
  if (fast.checkOn(graph, kernelQueries[i]!) !== expected[i]) throw new Error("kernel check differs");
}
const big = await wasm.checkBulk(q100k);
for (let i = 0; i < 100_000; i += 97) {
  if (big[i] !== (await reference.check(q100k[i]!))) throw new Error(`bulk 100k differs at ${i}`);
}
if (!(await reference.check({ ...membership, consistency: fresh }))) throw new Error("membership expected");
if (fast.checkOn(graph, membershipQuery) !== true) throw new Error("kernel membership differs");
// The parallel path: same answers (threshold below the batch).
setParallelThreshold("bulkCheck", 10_000);
const parallelAnswers = await parallelEngine.checkBulk(q100k);
for (let i = 0; i < 100_000; i++) {
  if (parallelAnswers[i] !== big[i]) throw new Error(`parallel bulk differs at ${i}`);
}
const fastParallel = parallelEngine.wasmEvaluator!;
const parallelRevision = revision;
const listRequest = { user: workload.deepUser, relation: "read", type: "file", consistency: fresh };
const listedWasm = await wasm.listObjects(listRequest);
const listedReference = await reference.listObjects(listRequest);
if (JSON.stringify(listedWasm) !== JSON.stringify(listedReference)) throw new Error("listObjects differs");
console.log(`listObjects: ${listedWasm.length} files readable by ${workload.deepUser}, equal`);
const allowed = expected.filter(Boolean).length;
console.log(
  `verified: ${allowed}/1000 allowed, equal; 1 reference bulk of 1000: ${referenceBulkMs.toFixed(1)} ms`,
);

let next = 0;
const nextQuestion = () => q1000[next++ % 1000]!;
const kernel100 = () => {
  for (let i = 0; i < 100; i++) fast.checkOn(graph, kernelQueries[(next++ * 7) % 1000]!);
};
// Cold: every kept fact and object plan forgotten before each call of 100 different questions (what one of the
// 100 leaves can only help the others). New subjects: only the facts forgotten. Warm: the same 100 again.
const forgetAll = () => {
  fast.clearFacts();
  fast.clearPlans();
};
const kernelCold100 = () => {
  forgetAll();
  kernel100();
};
const kernelNewSubjects100 = () => {
  fast.clearFacts();
  kernel100();
};
const warm = kernelQueries.slice(0, 100);
const kernelWarm100 = () => {
  for (let i = 0; i < 100; i++) fast.checkOn(graph, warm[i]!);
};
const answers = new Array(1000);
const indices = Array.from({ length: 1000 }, (_, i) => i);

const memory = fast.memoryBytes;
// WASM_EVAL_BENCH_ONLY=<regex>: only the matching cases (and the comparisons and goals among them), for quick A/B runs.
const only =
  process.env.WASM_EVAL_BENCH_ONLY === undefined ? undefined : new RegExp(process.env.WASM_EVAL_BENCH_ONLY);
const picked = (name: string) => only === undefined || only.test(name);
await runSuite(
  "wasm-eval",
  [
    { name: "kernel check cold", fn: kernelCold100, opsPerCall: 100 },
    { name: "kernel check new subjects", fn: kernelNewSubjects100, opsPerCall: 100 },
    { name: "kernel check warm (facts)", fn: kernelWarm100, opsPerCall: 100 },
    {
      name: "kernel membership 5 deep",
      fn: () => {
        for (let i = 0; i < 100; i++) fast.checkOn(graph, membershipQuery);
      },
      opsPerCall: 100,
    },
    { name: "engine check wasm", fn: () => wasm.check(nextQuestion()) },
    { name: "engine check reference", fn: () => reference.check(nextQuestion()) },
    {
      name: "reference membership 5 deep",
      fn: () => reference.check({ ...membership, consistency: fresh }),
    },
    {
      name: "kernel batch 1000",
      fn: () => fast.checkManyOn(graph, kernelQueries, indices, answers),
      opsPerCall: 1000,
    },
    {
      name: "kernel batch 1000 cold",
      fn: () => {
        forgetAll();
        fast.checkManyOn(graph, kernelQueries, indices, answers);
      },
      opsPerCall: 1000,
    },
    { name: "listObjects wasm", fn: () => wasm.listObjects(listRequest) },
    { name: "listObjects reference", fn: () => reference.listObjects(listRequest) },
    { name: "checkBulk 100 wasm", fn: () => wasm.checkBulk(q100), opsPerCall: 100 },
    { name: "checkBulk 100 reference", fn: () => reference.checkBulk(q100), opsPerCall: 100 },
    {
      name: "checkBulk 1000 wasm cold",
      fn: () => {
        forgetAll();
        return wasm.checkBulk(q1000);
      },
      opsPerCall: 1000,
    },
    { name: "checkBulk 1000 wasm", fn: () => wasm.checkBulk(q1000), opsPerCall: 1000 },
    { name: "checkBulk 1000 reference", fn: () => reference.checkBulk(q1000), opsPerCall: 1000 },
    { name: "checkBulk 100000 wasm", fn: () => wasm.checkBulk(q100k), opsPerCall: 100_000 },
    {
      name: "checkBulk 100000 wasm parallel",
      fn: () => parallelEngine.checkBulk(q100k),
      opsPerCall: 100_000,
    },
    {
      name: "kernel batch 100000 one thread",
      fn: () => fast.checkManyOn(graph, kernelQueries100k, indices100k, answers100k),
      opsPerCall: 100_000,
    },
    {
      name: "kernel batch 100000 workers",
      fn: () => checker.run("default", kernelQueries100k, parallelRevision),
      opsPerCall: 100_000,
    },
  ].filter((c) => picked(c.name)),
  {
    // The reference's bulk cases take seconds a call: 16 timed calls each keep the run within minutes.
    iterations: 16,
    comparisons: [
      { subject: "engine check wasm", peer: "engine check reference" },
      { subject: "kernel membership 5 deep", peer: "reference membership 5 deep" },
      { subject: "checkBulk 100 wasm", peer: "checkBulk 100 reference" },
      { subject: "listObjects wasm", peer: "listObjects reference" },
      { subject: "checkBulk 1000 wasm", peer: "checkBulk 1000 reference" },
      { subject: "checkBulk 1000 wasm cold", peer: "checkBulk 1000 reference" },
      { subject: "checkBulk 100000 wasm parallel", peer: "checkBulk 100000 wasm", goalRatio: 1.6 },
      { subject: "kernel batch 100000 workers", peer: "kernel batch 100000 one thread", goalRatio: 1.6 },
    ].filter((c) => picked(c.subject) && picked(c.peer)),
    goals: [
      { case: "kernel check cold", minOpsPerSec: 100_000 },
      { case: "kernel check warm (facts)", minOpsPerSec: 2_000_000 },
      { case: "kernel membership 5 deep", minOpsPerSec: 10_000_000 },
      { case: "checkBulk 1000 wasm", maxP50Micros: 300 },
      { case: "kernel batch 1000", maxP50Micros: 300 },
    ].filter((g) => picked(g.case)),
    facts: {
      tuples: workload.tuples.length,
      "graph build from snapshot (ms)": buildMs.toFixed(1),
      "graph bytes per tuple (before facts)": (graphOnly.graphs / graphOnly.tuples).toFixed(1),
      "symbol table bytes per tuple": (graphOnly.symbols / graphOnly.tuples).toFixed(1),
      "graph + facts + plans bytes per tuple (after the run)": (memory.graphs / memory.tuples).toFixed(1),
      "kernel linear memory (MiB)": (memory.kernel / 2 ** 20).toFixed(1),
      "kernel nodes resolved (lifetime)": String(fast.kernel.exports.eval_resolved()),
      "kernel counters": JSON.stringify(fast.kernelStats),
      "Leopard index bytes": memory.leopard,
      "worker threads": checker.pool.threadCount,
    },
  },
);

void fastParallel;
await parallelEngine.close();
await wasm.close();
await reference.close();
