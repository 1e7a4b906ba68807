/**
 * Steady state serves every revision from the fast path (issue 13, deliverable 4): an engine reading while
 * another engine writes to the same store, its reads mixing the default consistency, fully_consistent and
 * tokens from the writer, never routes a check to the reference for "stale_revision", and its answers equal the
 * reference engine's at the same moment.
 */
import { describe, expect, it } from "vitest";
import { buildWorkload, model, questions } from "../../bench/peers/workload.js";
import { createEngine } from "../../src/engine/engine.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";

describe("no stale_revision routing in steady state", () => {
  it("a reader beside a writer, mixed consistency", async () => {
    const workload = buildWorkload(4);
    const store = new MemoryTupleStore();
    const writer = await createEngine({ model, store });
    const reader = await createEngine({ model, store });
    const reference = await createEngine({ model, store, evaluator: "reference", cache: false });
    try {
      const tuples = workload.tuples;
      const half = Math.floor(tuples.length / 2);
      let { token } = await writer.write({ writes: tuples.slice(0, half) });
      const asked = questions(workload, 400, 3);
      let checks = 0;
      for (let i = half, step = 0; i < tuples.length; i += 200, step++) {
        ({ token } = await writer.write({ writes: tuples.slice(i, i + 200) }));
        const consistencies = [
          undefined,
          { atLeastAsFresh: token },
          "fully_consistent" as const,
          undefined,
          "minimize_latency" as const,
        ];
        for (const [k, consistency] of consistencies.entries()) {
          const q = asked[(step * consistencies.length + k) % asked.length]!;
          const request = {
            user: q.user,
            relation: "view",
            object: q.object,
            ...(consistency !== undefined ? { consistency } : {}),
          };
          const got = await reader.check(request);
          const expected = await reference.check({ ...request, consistency: { atLeastAsFresh: token } });
          // Only comparable where both read the same revision: the reader's default may lag the writer.
          if (consistency !== undefined && consistency !== "minimize_latency") expect(got).toBe(expected);
          checks++;
        }
        await reader.checkBulk(
          asked.slice(0, 50).map((q) => ({ user: q.user, relation: "view", object: q.object })),
        );
      }
      const { routed, answered: fast } = reader.stats().wasm!;
      console.log(
        `steady revisions: ${checks} checks and bulks beside ${tuples.length} written tuples; kernel answers ${fast}, routed`,
        routed,
      );
      expect(fast).toBeGreaterThan(checks); // the kernel answered (the bulks' misses included), nothing routed
      expect(routed.stale_revision).toBe(0);
    } finally {
      await reference.close();
      await reader.close();
      await writer.close();
      await store.close();
    }
  }, 120_000);
});
