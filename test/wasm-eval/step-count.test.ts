/**
 * The kernel counts the step budget (MAX_RESOLUTION_STEPS) as the reference does: a node is evaluated once per
 * check however it is reached. Here each parent's `v` is reached once through a computed relation (`e: v`, the
 * per-check memo) and once by a hop (`v from parent`, the facts then the memo), in either order; a kernel that
 * evaluated it twice took 11 steps a parent against the reference's 10, and with 24,000 parents answered
 * resolution_too_complex where the reference answers false (found by review of 53a2ee8; older than it).
 */
import { describe, expect, it } from "vitest";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import { MAX_RESOLUTION_STEPS } from "../../src/reference/evaluation.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { comparable, query, referenceAnswers } from "./reference.js";

const modelWith = (can: string): string => `model
  schema 1.1
type user
type g
  relations
    define m: [user]
type f
  relations
    define gp: [g]
    define k: [user] or m from gp
${[1, 2, 3, 4, 5, 6, 7].map((i) => `    define c${i}: [user] or k`).join("\n")}
    define v: c1 or c2 or c3 or c4 or c5 or c6 or c7
    define e: v
type d
  relations
    define parent: [f]
    define can: ${can}
`;

// 10 steps a parent in the reference: 24,000 parents are 240,000 steps, under the budget; 11 a parent are over.
const PARENTS = 24_000;

describe("the kernel's step count", () => {
  for (const can of ["e from parent or v from parent", "v from parent or e from parent"]) {
    it(`evaluates a node reached both through a computed relation and by a hop once a check (${can})`, async () => {
      expect(PARENTS * 10).toBeLessThan(MAX_RESOLUTION_STEPS);
      expect(PARENTS * 11).toBeGreaterThan(MAX_RESOLUTION_STEPS);
      await ready();
      await loadOpenFgaDsl();
      const program = compileModel(modelWith(can));
      const store = new MemoryTupleStore();
      const keys: TupleKey[] = [{ object: "g:z", relation: "m", user: "user:u0" }];
      for (let i = 0; i < PARENTS; i++) keys.push({ object: "d:D", relation: "parent", user: `f:x${i}` });
      const writes = keys.map((key) => {
        const normalized = normalizeTuple(key, "default");
        if (!normalized.ok) throw new Error(normalized.problem);
        return normalized.value;
      });
      await store.write({ writes, deletes: [] });
      const fast = new WasmEvaluator({ program, store });
      try {
        const revision = await store.currentRevision();
        const questions = [query("d:D", "can", "user:u0")];
        const [expected] = await referenceAnswers(store, program, revision, questions, 25);
        expect(expected).toBe(false);
        expect(comparable(await fast.check(questions[0]!, revision))).toEqual(expected);
        expect((await fast.checkMany(questions, revision)).map(comparable)).toEqual([expected]);
      } finally {
        fast.close();
      }
    }, 120_000);
  }
});
