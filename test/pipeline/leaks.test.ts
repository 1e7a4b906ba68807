/**
 * Leak audit: everything the chain starts (the feed's loop, the store wait it parks on, abort listeners, the
 * singleflight table, the WASM Bloom filters) has an owner that releases it. After close() the process's active
 * resources are back to the baseline, and aborted requests leave nothing behind.
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { CheckChain } from "../../src/pipeline/chain.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, group#member]
`;

const settle = () => new Promise<void>((r) => setTimeout(r, 10));

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/** Resources active now beyond the baseline (the test runner's own timers may come and go). */
function beyond(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [name, count] of resourceCounts()) {
    if (count > (baseline.get(name) ?? 0)) extra.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
  }
  return extra;
}

describe("leak audit", () => {
  it("close() returns active resources to the baseline after checks, writes and aborted requests", async () => {
    await settle();
    const baseline = resourceCounts();
    const engine = await createEngine({ model });
    const chain = await CheckChain.open({
      program: engine.program,
      store: engine.store,
      tiger: { materializeAfter: 1 },
    });
    for (let i = 0; i < 50; i++) {
      await engine.write({ writes: [{ user: `user:u${i}`, relation: "member", object: `group:g${i % 5}` }] });
    }
    await engine.write({
      writes: Array.from({ length: 5 }, (_, g) => ({
        user: `group:g${g}#member`,
        relation: "viewer",
        object: "doc:1",
      })),
    });
    const signals: AbortSignal[] = [];
    const results: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const abort = new AbortController();
      signals.push(abort.signal);
      results.push(
        chain
          .check({ user: `user:u${i % 60}`, relation: "viewer", object: "doc:1" }, { signal: abort.signal })
          .catch((e) => e.code),
      );
      if (i % 3 === 0) abort.abort();
    }
    results.push(
      chain.checkMany(
        Array.from({ length: 20 }, (_, i) => ({ user: `user:u${i}`, relation: "viewer", object: "doc:1" })),
      ),
    );
    const aborted = new AbortController();
    const batch = chain.checkMany([{ user: "user:u1", relation: "viewer", object: "doc:1" }], {
      signal: aborted.signal,
    });
    aborted.abort();
    await expect(batch).rejects.toMatchObject({ code: "aborted" });
    const outcomes = await Promise.all(results);
    expect(outcomes.filter((o) => o === "aborted").length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o === true).length).toBeGreaterThan(0);
    // Aborted or not, no request left a listener on its signal or an entry in flight.
    for (const signal of signals) expect(getEventListeners(signal, "abort")).toHaveLength(0);
    const singleflight = chain.stats().layers.find((l) => l.layer === "singleflight")!;
    expect(singleflight.extra?.inFlight).toBe(0);
    expect(chain.feed?.running).toBe(true);

    await chain.close();
    await engine.close();
    expect(chain.feed?.running).toBe(false);
    const bloom = chain.stats().layers.find((l) => l.layer === "bloom-negative")!;
    expect(bloom.enabled).toBe(false);
    expect(bloom.extra?.memoryBytes).toBe(0);
    const tiger = chain.stats().layers.find((l) => l.layer === "tiger")!;
    expect(Number(tiger.extra?.materialised)).toBeGreaterThan(0);
    expect(tiger.extra?.liveBitmaps).toBe(0);
    await settle();
    expect(beyond(baseline)).toEqual([]);
    await expect(chain.check({ user: "user:u1", relation: "viewer", object: "doc:1" })).rejects.toMatchObject(
      {
        code: "closed",
      },
    );
  });

  it("close() right after a large load leaves nothing running (sliced writes, feed parts, a pending Leopard rebuild)", async () => {
    await settle();
    const baseline = resourceCounts();
    const engine = await createEngine({ model });
    // 20 groups nested in a chain with 600 members each: 12k tuples, a write that yields while it validates, a
    // graph past the size whose Leopard rebuild waits for writes to settle (a timer).
    const writes = [];
    for (let g = 0; g < 20; g++) {
      for (let u = 0; u < 600; u++)
        writes.push({ user: `user:g${g}u${u}`, relation: "member", object: `group:g${g}` });
      if (g > 0) writes.push({ user: `group:g${g}#member`, relation: "member", object: `group:g${g - 1}` });
    }
    const { token } = await engine.write({ writes });
    const consistency = { atLeastAsFresh: token };
    expect(
      await engine.check({ user: "user:g19u1", relation: "member", object: "group:g0", consistency }),
    ).toBe(true);
    expect(
      engine.wasmEvaluator?.graphIfCurrent("default", await engine.store.currentRevision())?.leopardPending,
    ).toBe(true);
    await engine.close();
    await settle();
    expect(beyond(baseline)).toEqual([]);
  });

  it("await using closes the chain; the store it was given stays open", async () => {
    await using engine = await createEngine({ model });
    let feedRunning: boolean | undefined;
    {
      await using chain = await CheckChain.open({ program: engine.program, store: engine.store });
      await chain.check({ user: "user:a", relation: "viewer", object: "doc:1" });
      feedRunning = chain.feed?.running;
    }
    expect(feedRunning).toBe(true);
    expect(engine.store.closed).toBe(false);
    expect(await engine.check({ user: "user:a", relation: "viewer", object: "doc:1" })).toBe(false);
  });

  it("many chains opened and closed leave the Bloom kernel's memory where it was", async () => {
    const { sharedKernel } = await import("../../src/wasm/loader.js");
    await using engine = await createEngine({ model });
    const first = await CheckChain.open({ program: engine.program, store: engine.store });
    await first.close();
    const kernel = sharedKernel<{ alloc(n: number): number; free(p: number): void }>("bloom");
    const probe = (): number => {
      // The allocator hands back the lowest free block: after all filters are freed, the same address.
      const p = kernel.exports.alloc(1 << 20);
      kernel.exports.free(p);
      return p;
    };
    const before = probe();
    for (let i = 0; i < 20; i++) {
      const chain = await CheckChain.open({ program: engine.program, store: engine.store });
      await chain.close();
    }
    expect(probe()).toBe(before);
  });
});
