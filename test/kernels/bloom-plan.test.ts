/**
 * planBloomFilter above 65,536 keys scales the plan at 65,536 (same k, blocks in proportion) and then moves to
 * the fewest blocks meeting the rate: the result must still meet it, with one block fewer failing it.
 */
import { describe, expect, it } from "vitest";
import { blockedFpRate, planBloomFilter } from "../../src/kernels/bloom-plan.js";

describe("planBloomFilter at large capacities", () => {
  it.each([0.1, 0.01, 0.001, 1e-6])(
    "fewest blocks meeting rate %d, at capacities past the scaling point",
    (rate) => {
      const base = planBloomFilter(65_536, rate);
      for (const capacity of [65_537, 100_000, 206_720, 360_001, 1_000_000, 2_067_200, 5_000_000]) {
        const plan = planBloomFilter(capacity, rate);
        expect(plan.hashes).toBe(base.hashes);
        expect(plan.expectedFpRate).toBeLessThanOrEqual(rate);
        expect(blockedFpRate(capacity, plan.blocks, plan.hashes)).toBeLessThanOrEqual(rate);
        expect(blockedFpRate(capacity, plan.blocks - 1, plan.hashes)).toBeGreaterThan(rate);
      }
    },
  );

  it("sizes a rebuild's filter in well under a millisecond once the base plan exists", () => {
    planBloomFilter(65_536, 0.02);
    const started = performance.now();
    for (let i = 1; i <= 20; i++) planBloomFilter(65_536 + i * 77_777, 0.02);
    expect((performance.now() - started) / 20).toBeLessThan(5);
  });
});
