/**
 * No build inside a request, and no long task while loading: after loading 100k tuples through engine.write (writes
 * of 1,000 and of 10,000, each awaited in turn, as an application would), the first checks, a checkBulk and a
 * listing never hold the event loop for long, because the WASM graph was kept current at write time
 * (WasmEvaluator.follow, applied in slices that yield); and the load itself turns the loop often, because the change
 * feed hands a large write to its followers listener by listener, and in parts to those that take partial revisions
 * (the depth bound, the Bloom layer, Tiger), pausing every 10 ms.
 * monitorEventLoopDelay (a 10 ms timer) records how late the loop turns. Bounds: the 99th percentile of the delay
 * while the first questions run is at most STALL_BOUND_MS (50 ms), and the largest at most MAX_BOUND_MS (200 ms);
 * during the load the 99th percentile is at most LOAD_P99_BOUND_MS (200 ms: 157 ms measured with the test files in parallel). The delay is wall time, so on this
 * shared 2-core machine (load 8-10, test files in parallel) a descheduled process or a major GC shows up too (one
 * run measured 60 ms beside a 1M-tuple benchmark, 19.7 ms alone). A graph built inside the first request takes
 * about 1 s at this size, far past either bound; before the feed delivered in parts, one write of 10,000 held the
 * loop for 150-250 ms on the loaded machine (the depth bound alone 12-96 ms). What is left in a write's task is the
 * store's own atomic write of the batch (src/tuples, about 40-50 ms for 10,000 on an idle machine), printed here.
 * Each histogram is a fresh one: re-enabling a disabled one counts the whole pause since it was disabled.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { buildWorkload, model, questions } from "../../bench/peers/workload.js";
import { createEngine } from "../../src/engine/engine.js";

const STALL_BOUND_MS = 50;
const MAX_BOUND_MS = 200;
const LOAD_P99_BOUND_MS = 200;

describe("no stalls at the first questions after a load", () => {
  it.each([1000, 10_000])(
    `100k tuples in writes of %d, then first checks: event-loop delay p99 ≤ ${STALL_BOUND_MS} ms, max ≤ ${MAX_BOUND_MS} ms; load p99 ≤ ${LOAD_P99_BOUND_MS} ms`,
    async (BATCH) => {
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
          if (await engine.check({ user: q.user, relation: "view", object: q.object, consistency }))
            allowed++;
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
        const loadP99Ms = loading.percentile(99) / 1e6;
        console.log(
          `stalls: ${workload.tuples.length} tuples in writes of ${BATCH}; event-loop delay during the load max ${(loading.max / 1e6).toFixed(0)} ms (p99 ${loadP99Ms.toFixed(0)} ms), ` +
            `during the first questions ${maxMs.toFixed(1)} ms (p99 ${p99Ms.toFixed(1)} ms) (slowest check ${slowest.toFixed(1)} ms, ${allowed}/200 allowed, bulk of ${bulk.length})`,
        );
        // The graph was built at the first write and only advanced since: no request built it.
        expect(graphBuilds).toBe(1);
        expect(engine.stats().wasm!.graphBuilds).toBe(1);
        expect(engine.stats().wasm!.routed.stale_revision).toBe(0);
        expect(p99Ms).toBeLessThanOrEqual(STALL_BOUND_MS);
        expect(maxMs).toBeLessThanOrEqual(MAX_BOUND_MS);
        expect(loadP99Ms).toBeLessThanOrEqual(LOAD_P99_BOUND_MS);
      } finally {
        loading.disable();
        asking.disable();
        await engine.close();
      }
    },
    120_000,
  );
});
