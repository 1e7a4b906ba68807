/**
 * Parallel bulk checks: batches above the threshold run on the worker pool, against replicas at exactly the
 * batch's revision, with the same answers as the reference; the pool starts lazily and engine.close() ends it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { resetParallelThresholds, setParallelThreshold } from "../../src/parallel/thresholds.js";
import { enableParallelBulkCheck } from "../../src/wasm-eval/parallel.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
`;

afterEach(() => resetParallelThresholds());

describe("parallel bulk check", () => {
  it("answers like the reference at each revision, starts lazily, ends with the engine", async () => {
    const before = process.getActiveResourcesInfo().length;
    const engine = await createEngine({ model });
    const reference = await createEngine({
      model,
      evaluator: "reference",
      store: engine.store,
    });
    const checker = enableParallelBulkCheck(engine, { maxThreads: 2 })!;
    setParallelThreshold("bulkCheck", 50);
    const writes = [];
    for (let g = 0; g < 8; g++) {
      writes.push({ user: `user:u${g}`, relation: "member", object: `group:g${g}` });
      if (g > 0) writes.push({ user: `group:g${g}#member`, relation: "member", object: `group:g${g - 1}` });
    }
    for (let f = 1; f < 10; f++)
      writes.push({ user: `folder:f${f - 1}`, relation: "parent", object: `folder:f${f}` });
    writes.push({ user: "group:g0#member", relation: "viewer", object: "folder:f0" });
    await engine.write({ writes });
    const requests = [];
    for (let u = 0; u < 10; u++) {
      for (let f = 0; f < 10; f++)
        requests.push({ user: `user:u${u}`, relation: "viewer", object: `folder:f${f}` });
    }
    expect(checker.pool.started).toBe(false);
    expect(await engine.checkBulk(requests)).toEqual(await reference.checkBulk(requests));
    expect(checker.pool.started).toBe(true);
    expect(engine.wasmEvaluator!.stats.parallelBatches).toBe(1);
    // A revoke and a grant: the next batch is answered at the new revision by the same workers.
    await engine.write({
      deletes: [{ user: "group:g5#member", relation: "member", object: "group:g4" }],
      writes: [{ user: "user:u9", relation: "viewer", object: "folder:f5" }],
    });
    const after = await engine.checkBulk(requests);
    expect(after).toEqual(await reference.checkBulk(requests));
    expect(after.filter(Boolean).length).toBeLessThan(requests.length);
    expect(engine.wasmEvaluator!.stats.parallelBatches).toBe(2);
    // Below the threshold: one thread.
    await engine.checkBulk(requests.slice(0, 10));
    expect(engine.wasmEvaluator!.stats.parallelBatches).toBe(2);
    await reference.close();
    await engine.close();
    expect(checker.pool.threadCount).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  }, 60_000);
});
