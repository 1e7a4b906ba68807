/**
 * The consistency rule, stated as its staleness bound (injectable clock): a default read sees every write its own
 * engine acknowledged at once; a write made elsewhere (another engine sharing the store) is seen by every default
 * read starting one quantization window after it at the latest, and at once with its token or fully_consistent.
 * Identical checks share one evaluation across revisions when nothing they read changed.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { CheckChain } from "../../src/pipeline/chain.js";

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

async function setup(start = 10_000) {
  const clock = { now: start };
  const engine = await createEngine({ model, clock: () => clock.now });
  const chain = await CheckChain.open({
    program: engine.program,
    store: engine.store,
    clock: () => clock.now,
  });
  return { clock, engine, chain };
}

const anne = { user: "user:anne", relation: "viewer", object: "doc:1" } as const;

function evaluations(chain: CheckChain): number {
  return chain.stats().layers.find((l) => l.layer === "evaluator")!.evaluations;
}

describe("consistency: read-your-writes, and the staleness bound for writes made elsewhere", () => {
  it("a revoke by engine A: A sees it at once; B at once with A's token or fully_consistent, by default within one window", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 0, max: 30_000 }),
        async (window, grantDelay, revokeDelay) => {
          const clock = { now: 10_000 };
          // The window is this test's subject, so it is set explicitly (every other test uses the default).
          const a = await createEngine({ model, clock: () => clock.now, quantizationWindowMs: window });
          // B as users create it (its change feed tells it about A's writes soon after they commit)...
          const b = await createEngine({
            model,
            store: a.store,
            clock: () => clock.now,
            quantizationWindowMs: window,
          });
          // ...and B without caches, hence without a feed: like another process, it learns of A's writes only
          // through the store, so the window alone bounds what it may miss.
          const blind = await createEngine({
            model,
            store: a.store,
            clock: () => clock.now,
            quantizationWindowMs: window,
            cache: false,
          });
          try {
            clock.now += grantDelay;
            await a.write({ writes: [{ ...anne }] });
            expect(await a.check(anne)).toBe(true);
            clock.now += revokeDelay;
            const revokedAt = clock.now;
            const { token } = await a.write({ deletes: [{ ...anne }] });
            expect(await a.check(anne)).toBe(false);
            for (const reader of [b, blind]) {
              expect(await reader.check({ ...anne, consistency: { atLeastAsFresh: token } })).toBe(false);
              expect(await reader.check({ ...anne, consistency: "fully_consistent" })).toBe(false);
            }
            for (const offset of [0, 1, window - 1, window, window + 1, 3 * window]) {
              clock.now = revokedAt + offset;
              for (const reader of [b, blind]) {
                if (offset >= window) expect(await reader.check(anne)).toBe(false);
                else await reader.check(anne); // may still see the grant, never anything older than the window
              }
            }
            // Once B's feed has delivered the revoke, B sees it whatever the time.
            clock.now = revokedAt;
            await b.caughtUp();
            expect(await b.check(anne)).toBe(false);
          } finally {
            await blind.close();
            await b.close();
            await a.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("a read on a new engine sees a write made just before, in the same window", async () => {
    const clock = { now: 12_345 };
    await using engine = await createEngine({ model, clock: () => clock.now });
    await engine.write({ writes: [{ ...anne }] });
    expect(await engine.check(anne)).toBe(true);
    expect(await engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc" })).toEqual([
      "doc:1",
    ]);
    expect(
      await engine.listUsers({ object: "doc:1", relation: "viewer", userFilters: [{ type: "user" }] }),
    ).toEqual(["user:anne"]);
    expect(await engine.read({ object: "doc:1" })).toHaveLength(1);
    await using later = await createEngine({ model, clock: () => clock.now, store: engine.store });
    expect(await later.check(anne)).toBe(true); // a new engine knows the store's revision when it opens
  });

  it("identical checks share one evaluation across revisions when no write touches what they read", async () => {
    const { clock, engine, chain } = await setup(50_000);
    try {
      await engine.write({ writes: [{ ...anne }] });
      await chain.caughtUp();
      for (let i = 0; i < 1000; i++) {
        expect(await chain.check(anne)).toBe(true);
        // A grant to another subject: anne's answer did not read it, so it keeps answering.
        if (i === 500) {
          await engine.write({ writes: [{ user: "user:bob", relation: "viewer", object: "doc:1" }] });
          await chain.caughtUp();
        }
        clock.now += 1;
      }
      expect(evaluations(chain)).toBe(1);
      const cache = chain.stats().layers.find((l) => l.layer === "result-cache")!;
      expect(cache.hits).toBe(999);
      // A write that does touch it: the next read is evaluated again, at the new revision.
      await engine.write({ deletes: [{ ...anne }] });
      await chain.caughtUp();
      expect(await chain.check(anne)).toBe(false);
      expect(evaluations(chain)).toBe(2);
    } finally {
      await chain.close();
      await engine.close();
    }
  });

  it("a cached grant stops counting when a tuple it read expires, with no new revision", async () => {
    const { clock, engine, chain } = await setup(100_000);
    try {
      await engine.write({
        writes: [{ ...anne, expiresAt: new Date(clock.now + 2500) }],
      });
      clock.now += 1000;
      expect(await chain.check(anne)).toBe(true);
      clock.now += 1000;
      expect(await chain.check(anne)).toBe(true);
      clock.now += 499; // 1 ms before expiry
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
    const { engine, chain } = await setup();
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
