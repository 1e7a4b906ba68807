/**
 * The warmer never holds the event loop for long (issue 13, "no stalls"), and a write after many reads returns
 * without waiting for it. Before, a change made the warmer work off its whole backlog in one task: the accesses of a
 * bulk check (up to 1,024 kept) learned, each predicted (16 questions each: 16,384 predictions, of which the queue
 * kept 1,024), all between one await and the next of engine.write's follow: the demo's revoke after its reads took
 * 159-483 ms against 10 ms before any read, ~150 ms of it this one task. Now the loop runs in slices of 4 ms that
 * yield, predicts only what its queue can keep, sizes warm calls to what fits a slice, and starts none within
 * afterChangeMs (10 ms) of a change.
 *
 * Bounds. The warmer times its own steps (stats().longestStepMs: a task's synchronous part in wall time, the warm
 * calls it started included), and each test watches the loop two more ways: monitorEventLoopDelay (a 1 ms timer)
 * and a 1 ms interval recording the process CPU spent between two of its turns (all threads: GC helpers count).
 * Wall times are coarse on this shared 2-core machine (load 8-10: a descheduled process, a major GC), so the
 * bounds sit well above what is measured and well below what the old warmer did.
 * - The warmer alone (a warm function that does nothing), a backlog of 3,000 accesses and 200 listings of 100, then
 *   a change, three rounds: the median round's longest step ≤ STEP_BOUND_MS (40 ms; 11-30 ms measured at load 8,
 *   one round 59 ms with the process descheduled) and delay p99 ≤ 50 ms; in every round the most CPU in one gap ≤
 *   WARMER_CPU_BOUND_MS (50 ms; 10-28 ms measured; the old warmer spent 165-220 ms in one task on this input).
 * - The engine (the demo's scenario at 2,000 files, default options), its reads, then the revoke: the write returns
 *   within WRITE_BOUND_MS (150 ms; 10-63 ms measured; the demo's, at 5,000 files, 151-268 ms before, 14-26 ms
 *   now), the warmer's longest step after it ≤ ENGINE_STEP_BOUND_MS (100 ms; 10-42 ms measured: its warm calls
 *   include the first checks at the new revision), most CPU in one gap ≤ ENGINE_CPU_BOUND_MS (80 ms), delay max ≤
 *   MAX_DELAY_MS (250 ms). Then every answer the warmer may have put in the caches equals the reference
 *   evaluator's over the same store (no cache).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { buildDemoScenario } from "../../src/cli/demo/scenario.js";
import { createEngine } from "../../src/engine/engine.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import { Warmer, type WarmerStats } from "../../src/pipeline/warming/index.js";

const STEP_BOUND_MS = 40;
/** The warmer's step (src/pipeline/warming/warmer.ts SLICE_MS). */
const WARMER_SLICE_MS = 4;
const WARMER_CPU_BOUND_MS = 50;
const WARMER_P99_BOUND_MS = 50;
const ENGINE_STEP_BOUND_MS = 100;
const ENGINE_CPU_BOUND_MS = 80;
const WRITE_BOUND_MS = 150;
const MAX_DELAY_MS = 250;

/** Watches the loop: the event-loop delay histogram and the most process CPU spent between two 1 ms ticks. */
function watchLoop() {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let lastCpu = process.cpuUsage();
  let maxCpuMs = 0;
  const tick = setInterval(() => {
    const cpu = process.cpuUsage();
    maxCpuMs = Math.max(maxCpuMs, (cpu.user + cpu.system - lastCpu.user - lastCpu.system) / 1000);
    lastCpu = cpu;
  }, 1);
  return {
    stop() {
      clearInterval(tick);
      delay.disable();
      return { maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6, maxCpuMs };
    },
  };
}

/** Waits (real time) until `done` holds, at most `ms`. */
async function until(done: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * A warmer with a warm function that does nothing, warmed up, then given a backlog as bulk checks and filters leave
 * it (3,000 accesses and 200 listings of 100 objects in one task) and a change, watched until it has worked it off.
 */
async function backlogRound() {
  let asked = 0;
  await using warmer = new Warmer({
    warm: async (questions) => {
      asked += questions.length;
    },
  });
  // 200 users over 40 directories of 50 files: every access predicts a full 16 questions.
  const accesses = Array.from({ length: 3000 }, (_, i) => ({
    user: `user:u${i % 200}`,
    relation: "read",
    object: `file:/p/d${(i * 7) % 40}/f${i % 50}`,
  }));
  // A warm-up, so the JIT's first compilations are not what is measured.
  for (const a of accesses.slice(0, 500)) warmer.observe(a);
  await until(() => warmer.stats().pendingAccesses === 0, 5000);
  const listings = Array.from({ length: 200 }, (_, l) => ({
    user: `user:u${l}`,
    relation: "read",
    objects: Array.from({ length: 100 }, (_, i) => `file:/q/d${l % 40}/g${i}`),
  }));
  for (const a of accesses) warmer.observe(a);
  for (const l of listings) warmer.observeListing(l);
  const stepBefore = warmer.stats().longestStepMs;
  const watch = watchLoop();
  warmer.onChanges([], 1);
  await until(() => {
    const s = warmer.stats();
    return s.pendingAccesses === 0 && s.refreshes === 1 && s.inFlight === 0;
  }, 10_000);
  await new Promise((r) => setTimeout(r, 50)); // warm calls at the rate budget
  const loop = watch.stop();
  const s = warmer.stats();
  console.log(
    `warming stalls (warmer alone): ${s.observed} observed, ${s.predicted} predicted, ${s.dropped} dropped, ` +
      `${s.slices} slices, ${asked} asked; longest step ${s.longestStepMs.toFixed(1)} ms (${stepBefore.toFixed(1)} ms in the warm-up); ` +
      `most CPU in one gap ${loop.maxCpuMs.toFixed(1)} ms, event-loop delay max ${loop.maxMs.toFixed(1)} ms (p99 ${loop.p99Ms.toFixed(1)} ms)`,
  );
  return { s, loop, asked };
}

describe("warming holds the event loop only briefly", () => {
  it(`a backlog of 3,000 accesses, 200 listings and a change: no step of the warmer's over ${STEP_BOUND_MS} ms`, async () => {
    // Three rounds, each a fresh warmer: a long step of the warmer's own shows in every round, a descheduled
    // process (this machine runs other test files and benchmarks beside this one) in one, so the median is held.
    const steps: number[] = [];
    const delays: number[] = [];
    for (let round = 0; round < 3; round++) {
      const { s, loop, asked } = await backlogRound();
      steps.push(s.longestStepMs);
      delays.push(loop.p99Ms);
      expect(s.refreshes).toBe(1);
      expect(s.pendingAccesses).toBe(0);
      // What the queue can keep was predicted (1,024 / 16 visits' worth, plus the refresh), not 3,000 visits' worth.
      expect(s.predicted).toBeLessThanOrEqual(2 * 1024 + 16 * 17);
      expect(s.dropped).toBeGreaterThan(0);
      expect(asked).toBeGreaterThan(0);
      // The backlog outgrows a step of the warmer's (4 ms) on a loaded machine, which cuts it into slices; on a
      // quiet one it can fit in a single step (0 slices: seen on a faster machine, where this asked for slices
      // and failed). Either way no step ran much past a slice.
      expect(
        s.slices > 0 || s.longestStepMs <= 2 * WARMER_SLICE_MS,
        `${s.slices} slices, ${s.longestStepMs} ms`,
      ).toBe(true);
      expect(loop.maxCpuMs).toBeLessThanOrEqual(WARMER_CPU_BOUND_MS);
    }
    expect(median(steps)).toBeLessThanOrEqual(STEP_BOUND_MS);
    expect(median(delays)).toBeLessThanOrEqual(WARMER_P99_BOUND_MS);
  }, 60_000);

  it(`the demo's revoke after its reads: the write returns within ${WRITE_BOUND_MS} ms, no warmer step over ${ENGINE_STEP_BOUND_MS} ms, warmed answers exact`, async () => {
    const scenario = buildDemoScenario({ files: 2000, seed: 7, expiresAt: Date.now() + 3_600_000 });
    await using engine = await createEngine({ model: nexusFilesystemModel, format: "nexus" });
    let token = "";
    for (const tenant of scenario.tenants) {
      for (let i = 0; i < tenant.tuples.length; i += 5000) {
        const writes = tenant.tuples.slice(i, i + 5000).map((t) => ({
          user: t.user,
          relation: t.relation,
          object: t.object,
          tenant: tenant.name,
          ...(t.expiresAt !== undefined ? { expiresAt: new Date(t.expiresAt) } : {}),
        }));
        ({ token } = await engine.write({ writes, tenant: tenant.name }));
      }
    }
    // The demo's reads, each presenting the last write's token: its questions, a directory listing, two list
    // objects, a bulk check of 1,000 twice.
    const consistency = { atLeastAsFresh: token };
    for (const q of scenario.questions) {
      if (q.subjectTenant !== undefined) continue; // the cross-tenant share is not written here
      await engine.check({
        tenant: q.tenant,
        user: q.user,
        relation: q.relation,
        object: q.object,
        consistency,
      });
    }
    const { listing } = scenario;
    const listed = listing.entries.map((object) => ({
      tenant: listing.tenant,
      user: listing.user,
      relation: "read",
      object,
    }));
    await engine.checkBulk(listed.map((q) => ({ ...q, consistency })));
    for (let i = 0; i < 2; i++) {
      await engine.listObjects({
        tenant: "acme",
        user: "user:alice",
        relation: "read",
        type: "file",
        consistency,
      });
    }
    let state = 8;
    const next = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 4294967296;
    };
    const bulk = Array.from({ length: 1000 }, () => ({
      tenant: "acme",
      user: scenario.acmePeople[Math.floor(next() * scenario.acmePeople.length)]!,
      relation: next() < 0.7 ? "read" : "write",
      object: scenario.acmeFiles[Math.floor(next() * scenario.acmeFiles.length)]!,
    }));
    await engine.checkBulk(bulk.map((q) => ({ ...q, consistency })));
    await engine.checkBulk(bulk.map((q) => ({ ...q, consistency })));
    const warming = (): WarmerStats => engine.stats().chain!.warming!;
    const before = warming();

    // The revoke, then the warming it sets off, watched.
    const watch = watchLoop();
    const revoked = scenario.revoke.tuple;
    const started = performance.now();
    await engine.write({
      deletes: [{ user: revoked.user, relation: revoked.relation, object: revoked.object }],
      tenant: "acme",
    });
    const writeMs = performance.now() - started;
    await until(() => {
      const s = warming();
      return s.refreshes > before.refreshes && s.pendingAccesses === 0 && s.inFlight === 0;
    }, 10_000);
    await new Promise((r) => setTimeout(r, 300)); // warm calls at the rate budget
    const loop = watch.stop();
    const after = warming();
    console.log(
      `warming stalls (engine, demo scenario of 2,000 files): revoke ${writeMs.toFixed(1)} ms after ${before.observed} observed reads; ` +
        `then ${after.warmed - before.warmed} warmed in ${after.slices - before.slices} cut slices, longest step ${after.longestStepMs.toFixed(1)} ms (${before.longestStepMs.toFixed(1)} ms before the write); most CPU in one gap ${loop.maxCpuMs.toFixed(1)} ms, ` +
        `event-loop delay max ${loop.maxMs.toFixed(1)} ms (p99 ${loop.p99Ms.toFixed(1)} ms)`,
    );
    expect(after.refreshes).toBeGreaterThan(before.refreshes);
    expect(after.warmed).toBeGreaterThan(before.warmed);
    expect(after.errors).toBe(0);
    expect(writeMs).toBeLessThanOrEqual(WRITE_BOUND_MS);
    expect(after.longestStepMs).toBeLessThanOrEqual(ENGINE_STEP_BOUND_MS);
    expect(loop.maxCpuMs).toBeLessThanOrEqual(ENGINE_CPU_BOUND_MS);
    expect(loop.maxMs).toBeLessThanOrEqual(MAX_DELAY_MS);

    // Exact: whatever the warmer put in the caches, the engine answers as the reference evaluator does.
    await using reference = await createEngine({
      model: nexusFilesystemModel,
      format: "nexus",
      store: engine.store,
      evaluator: "reference",
      cache: false,
    });
    const rq = scenario.revoke.question;
    const asked = [
      ...bulk,
      ...listed,
      ...scenario.acmePeople
        .slice(0, 20)
        .map((user) => ({ tenant: "acme", user, relation: "read", object: rq.object })),
      { tenant: rq.tenant, user: rq.user, relation: rq.relation, object: rq.object },
    ];
    const answers = await engine.checkBulk(asked);
    expect(answers).toEqual(await reference.checkBulk(asked));
    expect(
      await engine.check({ tenant: rq.tenant, user: rq.user, relation: rq.relation, object: rq.object }),
    ).toBe(rq.expected);
  }, 60_000);
});
