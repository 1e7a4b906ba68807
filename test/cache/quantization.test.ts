/**
 * Revision quantization, stated as its staleness bound (injectable clock): a revoke committed at time T is denied
 * by every minimize_latency read starting at T + window or later, and at once by a read presenting the revoke's
 * token or asking fully_consistent; identical checks within a window are answered by one evaluation.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CheckChain } from "../../src/cache/chain.js";
import { createEngine } from "../../src/engine.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, group#member]
`;

async function setup(window: number, start = 10_000) {
  const clock = { now: start };
  const engine = await createEngine({ model, clock: () => clock.now, quantizationWindowMs: window });
  const chain = await CheckChain.open({
    program: engine.program,
    store: engine.store,
    clock: () => clock.now,
    quantizationWindowMs: window,
  });
  return { clock, engine, chain };
}

const anne = { user: "user:anne", relation: "viewer", object: "doc:1" } as const;

function evaluations(chain: CheckChain): number {
  return chain.stats().layers.find((l) => l.layer === "evaluator")!.evaluations;
}

describe("revision quantization", () => {
  it("a revoke is denied by every read starting a window later, and at once with its token or fully_consistent", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 0, max: 30_000 }),
        async (window, grantDelay, revokeDelay) => {
          const { clock, engine, chain } = await setup(window);
          try {
            clock.now += grantDelay;
            await engine.write({ writes: [{ ...anne }] });
            clock.now += revokeDelay;
            const revokedAt = clock.now;
            const { token } = await engine.write({ deletes: [{ ...anne }] });
            // At once: the token, or fully_consistent.
            expect(await chain.check({ ...anne, consistency: { atLeastAsFresh: token } })).toBe(false);
            expect(await chain.check({ ...anne, consistency: "fully_consistent" })).toBe(false);
            // Within the window a minimize_latency read may still see the grant (never anything older than
            // the window's start); from revokedAt + window on, never.
            for (const offset of [0, 1, window - 1, window, window + 1, 3 * window]) {
              if (offset < 0) continue;
              clock.now = revokedAt + offset;
              const allowed = await chain.check(anne);
              expect(allowed).toBe(await engine.check(anne));
              if (offset >= window) expect(allowed).toBe(false);
            }
          } finally {
            await chain.close();
            await engine.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("identical checks within a window share one evaluation, at the window's revision", async () => {
    const { clock, engine, chain } = await setup(5000, 50_000);
    try {
      await engine.write({ writes: [{ ...anne }] });
      clock.now += 5000; // a new window that includes the grant
      for (let i = 0; i < 1000; i++) {
        expect(await chain.check(anne)).toBe(true);
        // Writes inside the window do not change its revision.
        if (i === 500)
          await engine.write({ writes: [{ user: "user:bob", relation: "viewer", object: "doc:1" }] });
        clock.now += 1;
      }
      expect(evaluations(chain)).toBe(1);
      const cache = chain.stats().layers.find((l) => l.layer === "result-cache")!;
      expect(cache.hits).toBe(999);
      expect(chain.stats().revision.windowHits).toBeGreaterThanOrEqual(998);
    } finally {
      await chain.close();
      await engine.close();
    }
  });

  it("window 0 reads the latest revision: a revoke is denied at once", async () => {
    const { engine, chain } = await setup(0);
    try {
      await engine.write({ writes: [{ ...anne }] });
      expect(await chain.check(anne)).toBe(true);
      await engine.write({ deletes: [{ ...anne }] });
      expect(await chain.check(anne)).toBe(false);
    } finally {
      await chain.close();
      await engine.close();
    }
  });

  it("a cached grant stops counting when a tuple it read expires, with no new revision", async () => {
    const { clock, engine, chain } = await setup(1000, 100_000);
    try {
      await engine.write({
        writes: [{ ...anne, expiresAt: new Date(clock.now + 2500) }],
      });
      clock.now += 1000;
      expect(await chain.check(anne)).toBe(true);
      clock.now += 1000;
      expect(await chain.check(anne)).toBe(true);
      clock.now += 499; // 1 ms before expiry, same window as the cached answer's revision
      expect(await chain.check(anne)).toBe(true);
      clock.now += 1; // expired: the store has no new revision, the cache must not answer
      expect(await chain.check(anne)).toBe(false);
      expect(await engine.check(anne)).toBe(false);
    } finally {
      await chain.close();
      await engine.close();
    }
  });

  it("rejects bad consistency and tokens as the engine does", async () => {
    const { engine, chain } = await setup(1000);
    try {
      for (const consistency of ["eventually", { atLeastAsFresh: "garbage" }] as never[]) {
        const viaEngine = await engine.check({ ...anne, consistency }).catch((e) => e.code);
        const viaChain = await chain.check({ ...anne, consistency }).catch((e) => e.code);
        expect(viaChain).toBe(viaEngine);
      }
      for (const bad of [
        { ...anne, object: "nope" },
        { ...anne, relation: "owner" },
        { ...anne, user: "robot:1" },
        { ...anne, tenant: "" },
        null,
      ] as never[]) {
        const viaEngine = await engine.check(bad).catch((e) => e.code);
        const viaChain = await chain.check(bad).catch((e) => e.code);
        expect(viaChain).toBe(viaEngine);
      }
      expect(chain.stats().validate.rejected).toBe(5);
    } finally {
      await chain.close();
      await engine.close();
    }
  });
});
