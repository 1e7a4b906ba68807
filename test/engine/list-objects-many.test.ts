/**
 * Many kernel listings on one engine: the walk's visited records are stamped with a one-byte generation that wraps
 * every 255 listings (assembly/evaluate/list-objects.ts), when every record is zeroed. 600 listings of users
 * reaching different folders, each held to the workload's own answers (src/cli/demo/workload.ts WorkloadAnswers,
 * no engine), so a stale record read as visited (a missing object) or a wrong order shows.
 */
import { describe, expect, it } from "vitest";
import { buildWorkload, model, userName, WorkloadAnswers } from "../../src/cli/demo/workload.js";
import { createEngine } from "../../src/engine/engine.js";
import { kernelListingBytes } from "../../src/wasm-eval/list-objects.js";

describe("kernel listings past the visited stamp's wrap", () => {
  it("600 listings on one engine equal the workload's answers", async () => {
    const w = buildWorkload(4);
    const answers = new WorkloadAnswers(w);
    const engine = await createEngine({ model });
    try {
      const { token } = await engine.write({ writes: [...w.tuples] });
      const consistency = { atLeastAsFresh: token };
      const expected = new Map<string, string[]>();
      for (let i = 0; i < 600; i++) {
        const user = userName((i * 37) % 400);
        let want = expected.get(user);
        if (want === undefined) {
          want = answers.listFiles(user);
          expected.set(user, want);
        }
        const got = await engine.listObjects({ user, relation: "view", type: "file", consistency });
        expect(got).toEqual(want);
      }
      // The kernel listed (the WASM evaluator is the default engine's).
      expect(kernelListingBytes(engine.wasmEvaluator!)).toBeGreaterThan(0);
    } finally {
      await engine.close();
    }
  });
});
