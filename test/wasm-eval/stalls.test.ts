/**
 * No build inside a request: after loading 100k tuples through engine.write (writes of 1,000, each awaited in
 * turn, as an application would), the first checks, a checkBulk and a listing never hold the event loop for long,
 * because the WASM graph was kept current at write time (WasmEvaluator.follow, applied in slices that yield).
 * monitorEventLoopDelay (a 10 ms timer) records how late the loop turns. Bound: the 99th percentile of the delay
 * while the first questions run is at most STALL_BOUND_MS (50 ms), and the largest at most MAX_BOUND_MS (200 ms):
 * the delay is wall time, so on this shared 2-core machine (load 8-10, test files in parallel) a descheduled
 * process or a major GC shows up too (one run measured 60 ms beside a 1M-tuple benchmark, 19.7 ms alone). A graph
 * built inside the first request takes about 1 s at this size, far past either bound. The delay during the load itself is printed, not bounded here: one
 * write is one atomic store write plus one change-feed delivery to the caches, both synchronous today (about
 * 0.1-0.3 s per 1,000 tuples on the loaded 2-core machine; issue 13 keeps that open).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { buildWorkload, model, questions } from "../../bench/peers/workload.js";
import { createEngine } from "../../src/engine/engine.js";

const STALL_BOUND_MS = 50;
const MAX_BOUND_MS = 200;
const BATCH = 1000;

describe("no stalls at the first questions after a load", () => {
  it(`100k tuples, then first checks: event-loop delay p99 ≤ ${STALL_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms`, async () => {
    const workload = buildWorkload(100);
    const engine = await createEngine({ model });
    const loading = monitorEventLoopDelay({ resolution: 10 });
    const asking = monitorEventLoopDelay({ resolution: 10 });
    try {
      loading.enable();
      let token = "";
      for (let i = 0; i < workload.tuples.length; i += BATCH) {
        ({ token } = await engine.write({ writes: workload.tuples.slice(i, i + BATCH) }));
      }
      // The caches' change feed delivers the load in the background; the questions start once it has.
      await engine.caughtUp();
      loading.disable();
      const graphBuilds = engine.stats().wasm!.graphBuilds;
      asking.enable();
      const consistency = { atLeastAsFresh: token };
      let allowed = 0;
      let slowest = 0;
      for (const q of questions(workload, 200, 7)) {
        const started = performance.now();
        if (await engine.check({ user: q.user, relation: "view", object: q.object, consistency })) allowed++;
        slowest = Math.max(slowest, performance.now() - started);
      }
      const bulk = await engine.checkBulk(
        questions(workload, 100, 8).map((q) => ({
          user: q.user,
          relation: "view",
          object: q.object,
          consistency,
        })),
      );
      await new Promise((resolve) => setTimeout(resolve, 30));
      asking.disable();
      const maxMs = asking.max / 1e6;
      const p99Ms = asking.percentile(99) / 1e6;
      console.log(
        `stalls: ${workload.tuples.length} tuples; max event-loop delay during the load ${(loading.max / 1e6).toFixed(0)} ms, ` +
          `during the first questions ${maxMs.toFixed(1)} ms (p99 ${p99Ms.toFixed(1)} ms) (slowest check ${slowest.toFixed(1)} ms, ${allowed}/200 allowed, bulk of ${bulk.length})`,
      );
      // The graph was built at the first write and only advanced since: no request built it.
      expect(graphBuilds).toBe(1);
      expect(engine.stats().wasm!.graphBuilds).toBe(1);
      expect(engine.stats().wasm!.routed.stale_revision).toBe(0);
      expect(p99Ms).toBeLessThanOrEqual(STALL_BOUND_MS);
      expect(maxMs).toBeLessThanOrEqual(MAX_BOUND_MS);
    } finally {
      loading.disable();
      asking.disable();
      await engine.close();
    }
  }, 120_000);
});
