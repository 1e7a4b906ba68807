/**
 * The CEL runtime loads on demand, in each thread that needs it (src/conditions/cel-js.ts). A worker of the
 * parallel bulk check receives a structured-cloned Program and builds its graph there; a model with conditions
 * needs the runtime in that worker too. Without it the worker's graph build failed on the first conditional tuple
 * and every query of the batch came back to the reference evaluator (answers right, the pool's work wasted).
 */
import { afterEach, describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { resetParallelThresholds, setParallelThreshold } from "../../src/parallel/thresholds.js";
import { enableParallelBulkCheck } from "../../src/wasm-eval/parallel.js";

const model = {
  schema_version: "1.1",
  type_definitions: [
    { type: "user" },
    {
      type: "doc",
      relations: { viewer: { this: {} } },
      metadata: {
        relations: {
          viewer: {
            directly_related_user_types: [{ type: "user" }, { type: "user", condition: "office_hours" }],
          },
        },
      },
    },
  ],
  conditions: {
    office_hours: {
      name: "office_hours",
      expression: "hour >= 9 && hour < 17",
      parameters: { hour: { type_name: "TYPE_NAME_INT" } },
    },
  },
};

afterEach(() => resetParallelThresholds());

describe("parallel bulk checks over a model with conditions", () => {
  it("answer in the workers' kernels, routing only what one thread routes", async () => {
    await using engine = await createEngine({ model });
    enableParallelBulkCheck(engine, { maxThreads: 2 });
    await engine.write({
      writes: [
        { user: "user:anne", relation: "viewer", object: "doc:1", condition: { name: "office_hours" } },
        { user: "user:bob", relation: "viewer", object: "doc:2" },
        { user: "user:carl", relation: "viewer", object: "doc:3" },
      ],
    });
    const ask = (user: string) =>
      Array.from({ length: 20 }, (_, i) => ({ user, relation: "viewer", object: `doc:${i}` }));
    const stats = () => engine.wasmEvaluator!.stats;
    // One thread (the batch under the threshold): the one question on doc:1, whose tuple has a condition, is
    // routed to the reference evaluator.
    setParallelThreshold("bulkCheck", 1000);
    expect(
      (await engine.checkBulk(ask("user:bob"))).map((a, i) => (a ? i : -1)).filter((i) => i >= 0),
    ).toEqual([2]);
    const routedAlone = stats().routed.unsupported;
    expect(routedAlone).toBe(1);
    // On the pool, another user's questions (none cached): the same answers, the same one question routed.
    setParallelThreshold("bulkCheck", 5);
    expect(
      (await engine.checkBulk(ask("user:carl"))).map((a, i) => (a ? i : -1)).filter((i) => i >= 0),
    ).toEqual([3]);
    expect(stats().parallelBatches).toBe(1);
    expect(stats().routed.unsupported - routedAlone).toBe(1);
  }, 60_000);
});
