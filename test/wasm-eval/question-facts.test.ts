/**
 * questionFacts: false (src/wasm-eval/evaluator.ts): a batch keeps no fact for its questions' own nodes, which
 * only the same question asked again could use. Answers stay the reference's on random models (every question
 * asked in batches twice, so the second batch finds no fact of its own questions, and one at a time in between,
 * which keeps them), with facts on, off and tiny; and the facts a batch keeps are the shared subproblems only.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import type { CheckQuery } from "../../src/reference/check.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";
import { comparable, query, referenceAnswers } from "./reference.js";

function normalized(key: TupleKey) {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
}

describe("questionFacts: false", () => {
  it("answers as the reference (random models, batches twice and single checks)", async () => {
    await ready();
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(
        scenarioArb({ conditions: false }),
        fc.constantFrom(3, 25),
        fc.constantFrom(undefined, 0, 4),
        async ({ model, tuples }, maxDepth, factLimit) => {
          const store = new MemoryTupleStore();
          await using fast = new WasmEvaluator({
            program: model.program,
            store,
            maxDepth,
            questionFacts: false,
            ...(factLimit !== undefined ? { factLimit } : {}),
          });
          if (tuples.length > 0) await store.write({ writes: tuples.map(normalized), deletes: [] });
          const revision = await store.currentRevision();
          const queries: CheckQuery[] = [];
          for (const type of model.types) {
            for (const relation of model.program.types.get(type)!.relations.keys()) {
              for (const id of IDS)
                for (const user of subjectsOf(model)) queries.push(query(`${type}:${id}`, relation, user));
            }
          }
          const expected = await referenceAnswers(store, model.program, revision, queries, maxDepth);
          for (let pass = 0; pass < 2; pass++) {
            expect((await fast.checkMany(queries, revision)).map(comparable)).toEqual(expected);
          }
          for (const [i, q] of queries.entries())
            expect(comparable(await fast.check(q, revision))).toEqual(expected[i]);
          expect((await fast.checkMany(queries, revision)).map(comparable)).toEqual(expected);
          compared += 4 * queries.length;
          await store.close();
        },
      ),
      { numRuns: Number(process.env.FAST_DIFF_RUNS ?? 120) },
    );
    expect(compared).toBeGreaterThan(10_000);
  }, 600_000);

  it("keeps the shared subproblems' facts, not the questions' own", async () => {
    await ready();
    await loadOpenFgaDsl();
    const program = compileModel(`model
  schema 1.1
type user
type folder
  relations
    define parent: [folder]
    define viewer: [user]
    define view: viewer or view from parent
type file
  relations
    define parent: [folder]
    define viewer: [user]
    define view: viewer or view from parent
`);
    const held = async (questionFacts: boolean) => {
      const store = new MemoryTupleStore();
      await using fast = new WasmEvaluator({ program, store, questionFacts });
      // A fact is kept only for a node that took the kernel's threshold t of resolves below it (assembly/evaluate.ts
      // FACT_MIN_REDO). Every file's parents are the same t folders x{j}, each of whose parents are the same t
      // folders y{k}, and ann is granted none of them, so every node is evaluated: each x{j} resolves more than t
      // nodes below it the first time (its viewer, the y{k} and theirs) and keeps its fact; each file's view
      // resolves its viewer and the t x{j} (answered by their facts from the second file on), t + 1 below it.
      // Few enough facts that none is dropped: the fact table is a 4-way set-associative cache with a random seed,
      // and at 51 facts in its first 64 buckets a bucket overflowed in about one run in ten (48 held, not 50).
      const t = fast.kernel.exports.eval_fact_min_redo();
      const files = Array.from({ length: 10 }, (_, i) => `file:f${i}`);
      const writes: TupleKey[] = [{ object: "folder:z", relation: "viewer", user: "user:ann" }];
      for (let j = 0; j < t; j++) {
        for (const object of files) writes.push({ object, relation: "parent", user: `folder:x${j}` });
        for (let k = 0; k < t; k++)
          writes.push({ object: `folder:x${j}`, relation: "parent", user: `folder:y${k}` });
      }
      await store.write({ writes: writes.map(normalized), deletes: [] });
      const revision = await store.currentRevision();
      const answers = await fast.checkMany(
        files.map((object) => query(object, "view", "user:ann")),
        revision,
      );
      expect(answers.every((a) => a === false)).toBe(true);
      const facts = fast.kernelStats.factsHeld;
      await store.close();
      return { facts, t };
    };
    // Kept: each folder:x{j}#view, reached from every file (t facts), and with question facts each file's own view.
    const kept = await held(true);
    const without = await held(false);
    expect(kept.facts - without.facts).toBe(10);
    expect(without.facts).toBe(without.t);
  });
});
