/**
 * Differential tests: the WASM fast path against the reference evaluator on random models (unions,
 * intersections, exclusions, computed usersets, tuple-to-usersets, usersets, wildcards, conditions), random tuples
 * and random write/delete sequences, at small and default depth limits. Every check over every object, relation
 * and subject is compared after every revision, through the single-check path and the batch path. A check the
 * fast path routes to the reference must be one that reads a conditional tuple. The kept subproblem facts and object
 * plans vary too: the default limits, none, and tiny limits (so the CLOCK replacement runs all the time).
 * fast-check prints the seed and the shrunk counterexample on failure.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { loadConditions } from "../../src/conditions/cel-js.js";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import type { CheckQuery } from "../../src/reference/check.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { type GeneratedModel, IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";
import { type Comparable, comparable, query, referenceAnswers } from "./reference.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

let compared = 0;
const seen = { true: 0, false: 0, error: 0, routed: 0 };
// Kept facts and Leopard answers used in models that also have intersection or exclusion (union-only relations).
const nonMonotone = { factHits: 0, leopardHits: 0 };
const plans = { built: 0, replayed: 0 };
afterAll(() => {
  console.log(`differential: ${compared} checks compared with the reference`, seen, {
    nonMonotone,
    plans,
  });
  expect(compared).toBeGreaterThanOrEqual(100_000);
});

function normalized(key: TupleKey): RelationTuple {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
}

function queriesOf(model: GeneratedModel): CheckQuery[] {
  const subjects = subjectsOf(model);
  const out: CheckQuery[] = [];
  for (const type of model.types) {
    for (const relation of model.program.types.get(type)!.relations.keys()) {
      for (const id of IDS) for (const user of subjects) out.push(query(`${type}:${id}`, relation, user));
    }
  }
  // An object no tuple names, and a subject that is the object itself.
  out.push(query(`${model.types[0]}:zz`, "r0", "user:u0"));
  out.push(query(`${model.types[0]}:zz`, "r1", `${model.types[0]}:zz#r1`));
  return out;
}

const stepArb = fc.record({
  write: fc.boolean(),
  picks: fc.uniqueArray(fc.nat(40), { minLength: 1, maxLength: 4 }),
});

async function runScenario(
  model: GeneratedModel,
  base: readonly TupleKey[],
  extra: readonly TupleKey[],
  steps: readonly { write: boolean; picks: readonly number[] }[],
  maxDepth: number,
  conditions: boolean,
  factLimit?: number,
  planLimit?: number,
): Promise<void> {
  const store = new MemoryTupleStore();
  const fast = new WasmEvaluator({
    program: model.program,
    store,
    maxDepth,
    ...(factLimit !== undefined ? { factLimit } : {}),
    ...(planLimit !== undefined ? { planLimit } : {}),
  });
  try {
    const live = new Map<string, TupleKey>();
    const keyOf = (t: TupleKey) => `${t.object}#${t.relation}@${t.user}`;
    if (base.length > 0) {
      await store.write({ writes: base.map(normalized), deletes: [] });
      for (const t of base) live.set(keyOf(t), t);
    }
    const queries = queriesOf(model);
    const pool = [...base, ...extra];
    const compare = async (batch: boolean) => {
      const revision = await store.currentRevision();
      const expected = await referenceAnswers(store, model.program, revision, queries, maxDepth, { x: 3 });
      let got: Comparable[];
      if (batch) {
        // Every seventh query asked again at the end: repeats within a batch copy the first answer.
        const repeats = queries.filter((_, i) => i % 7 === 0);
        got = (await fast.checkMany([...queries, ...repeats], revision)).map(comparable);
        const tail = got.splice(queries.length);
        for (const [k, g] of tail.entries()) expect(g).toEqual(got[k * 7]);
      } else {
        got = [];
        for (const q of queries) got.push(comparable(await fast.check(q, revision)));
      }
      for (let i = 0; i < queries.length; i++) {
        const g = got[i]!;
        seen[g === "routed" ? "routed" : typeof g === "string" ? "error" : g ? "true" : "false"]++;
        if (got[i] === "routed") {
          expect(conditions, `routed without conditions: ${JSON.stringify(queries[i])}`).toBe(true);
          continue;
        }
        const q = queries[i]!;
        expect(got[i], `${q.object}#${q.relation}@${q.user} at revision ${revision}`).toEqual(expected[i]);
        compared++;
      }
    };
    await compare(false);
    for (const [n, step] of steps.entries()) {
      if (step.write) {
        const writes = step.picks.map((p) => pool[p % pool.length]!).filter((t) => !live.has(keyOf(t)));
        const unique = [...new Map(writes.map((t) => [keyOf(t), t])).values()];
        if (unique.length === 0) continue;
        await store.write({ writes: unique.map(normalized), deletes: [] });
        for (const t of unique) live.set(keyOf(t), t);
      } else {
        const present = [...live.values()];
        if (present.length === 0) continue;
        const deletes = [...new Set(step.picks.map((p) => present[p % present.length]!))];
        await store.write({ writes: [], deletes: deletes.map(normalized) });
        for (const t of deletes) live.delete(keyOf(t));
      }
      await compare(n % 2 === 0);
    }
    plans.built += fast.kernelStats.plansBuilt;
    plans.replayed += fast.kernelStats.planHits;
    if (!fast.compiled.monotone) {
      nonMonotone.factHits += fast.kernelStats.factHits;
      nonMonotone.leopardHits += fast.kernelStats.leopardHits;
    }
  } finally {
    fast.close();
    await store.close();
  }
}

describe("fast path = reference (random models)", () => {
  it("without conditions: every answer equal, nothing routed", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        scenarioArb({ conditions: false }),
        fc.array(stepArb, { minLength: 2, maxLength: 5 }),
        fc.constantFrom(2, 3, 4, 6, 25),
        fc.constantFrom(undefined, undefined, 0, 4, 16),
        fc.constantFrom(undefined, undefined, 0, 4),
        async ({ model, tuples, extra }, steps, maxDepth, factLimit, planLimit) => {
          await runScenario(model, tuples, extra, steps, maxDepth, false, factLimit, planLimit);
        },
      ),
      { numRuns: Number(process.env.FAST_DIFF_RUNS ?? 200) },
    );
    // Object plans were exercised, not only allowed. Plans are only for rewrites reading three or more of their
    // object's nodes (assembly/evaluate/program.ts planWorthy), and a node a check reached before is answered by
    // the check's memo, not replayed (every node is memoized since the step-count fix): 90 to a few hundred replays
    // over the default runs, not the thousands of when every relation got one; the floor only asks that they ran. The facts of union-only relations in models with
    // intersection or exclusion are counted here but asserted in the next test: a fact is kept only for a node
    // with the kernel's threshold of resolves below it (assembly/evaluate.ts FACT_MIN_REDO), which these small
    // models (two ids a type) build in some runs only.
    expect(plans.replayed).toBeGreaterThan(20);
  }, 600_000);

  it("with an exclusion over chains deep enough to keep facts: every answer equal, facts read", async () => {
    await ready();
    await loadOpenFgaDsl();
    const t = (() => {
      const probe = new WasmEvaluator({
        program: compileModel("model\n  schema 1.1\ntype user\n"),
        store: new MemoryTupleStore(),
      });
      try {
        return probe.kernel.exports.eval_fact_min_redo();
      } finally {
        probe.close();
      }
    })();
    // t0:a and t0:b sit at the top of a chain of t + 1 objects (c0 .. c{t}), so their r0 nodes have more than t
    // below them and keep facts (r0 reaches no exclusion: its facts are kept); r1 excludes `banned`, so the
    // model is not union-only.
    const program = compileModel(`model
  schema 1.1
type user
type t0
  relations
    define parent: [t0]
    define r0: [user, user:*, t0#r0] or r0 from parent
    define banned: [user, t0#r0]
    define r1: [user, t0#r0] but not banned
`);
    const slots: TupleKey[] = [];
    for (let i = 1; i <= t; i++) slots.push({ user: `t0:c${i - 1}`, relation: "parent", object: `t0:c${i}` });
    for (const id of IDS) slots.push({ user: `t0:c${t}`, relation: "parent", object: `t0:${id}` });
    for (const object of ["t0:c0", "t0:c2", "t0:b"]) {
      for (const user of ["user:u0", "user:u1", "user:*", "t0:a#r0"])
        slots.push({ user, relation: "r0", object });
      slots.push(
        { user: "user:u1", relation: "banned", object },
        { user: "t0:c1#r0", relation: "r1", object },
      );
    }
    const model: GeneratedModel = { program, types: ["t0"], slots };
    const spine = slots.slice(0, t + IDS.length); // the chains, always present at first
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.nat(slots.length - 1), { minLength: 1, maxLength: 10 }),
        fc.array(stepArb, { minLength: 2, maxLength: 5 }),
        fc.constantFrom(4, 25, 25),
        async (picks, steps, maxDepth) => {
          const base = [...new Set([...spine, ...picks.map((i) => slots[i]!)])];
          await runScenario(model, base, slots, steps, maxDepth, false);
        },
      ),
      { numRuns: Number(process.env.FAST_DIFF_RUNS ?? 200) / 5 },
    );
    expect(nonMonotone.factHits).toBeGreaterThan(0);
  }, 600_000);

  it("with conditions: equal where answered, conditional reads routed", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        scenarioArb(),
        fc.array(stepArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(3, 25),
        async ({ model, tuples, extra }, steps, maxDepth) => {
          await runScenario(model, tuples, extra, steps, maxDepth, true);
        },
      ),
      { numRuns: Number(process.env.FAST_DIFF_RUNS_COND ?? 50) },
    );
  }, 600_000);
});
