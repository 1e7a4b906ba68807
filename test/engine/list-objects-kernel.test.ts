/**
 * The default engine lists objects by reverse expansion in the WASM kernel where that is exact (union-only model,
 * graph at the pinned revision, no flagged tuple), and its listings equal the reference engine's (`cache: false`
 * has no WASM evaluator) before and after writes and deletes. kernelListingBytes > 0 shows the kernel listed.
 */
import { describe, expect, it } from "vitest";
import { buildWorkload, listingUsers, model } from "../../bench/peers/workload.js";
import { createEngine } from "../../src/engine/engine.js";
import { kernelListingBytes } from "../../src/wasm-eval/list-objects.js";

describe("listObjects in the kernel through the default engine", () => {
  it("is taken on the peer workload and equals the reference engine's listing, across a write and a delete", async () => {
    const workload = buildWorkload(3);
    await using engine = await createEngine({ model });
    await using reference = await createEngine({ model, cache: false });
    // Each engine's own last write token (two stores, two token spaces).
    const tokens = new Map<object, string>();
    for (const e of [engine, reference]) tokens.set(e, (await e.write({ writes: workload.tuples })).token);
    const users = listingUsers().slice(0, 3);
    const compare = async (): Promise<void> => {
      for (const user of users) {
        const request = { user, relation: "view", type: "file" };
        const [fast, slow] = await Promise.all([
          engine.listObjects({ ...request, consistency: { atLeastAsFresh: tokens.get(engine)! } }),
          reference.listObjects({ ...request, consistency: { atLeastAsFresh: tokens.get(reference)! } }),
        ]);
        expect(fast).toEqual(slow);
        expect(fast.length).toBeGreaterThan(0);
      }
    };
    await compare();
    expect(kernelListingBytes(engine.wasmEvaluator!)).toBeGreaterThan(0);
    // A grant and a revocation: the next listings follow them.
    const granted = { user: users[0]!, relation: "viewer", object: "file:kernel-listing-extra" };
    // users[1] leaves its first group: the folders it reached only through that chain leave its listing.
    const revoked = workload.tuples.find((t) => t.user === users[1] && t.relation === "member")!;
    for (const e of [engine, reference]) {
      tokens.set(e, (await e.write({ writes: [granted], deletes: [revoked] })).token);
    }
    await compare();
  });
});
