/**
 * Large inputs on whole paths (issue 11): listUsers on an object with many tuples (was quadratic: 100k tuples
 * took 92 s), against reading the same tuples (the floor: every tuple must be seen once) and against a quarter as
 * many tuples (linear: about 4× the time); program analysis on models with many types (was quadratic), 8,000
 * types against 2,000.
 *
 * Run: BENCH_TIME=200 node --import tsx bench/inputs.bench.ts
 */

import { createEngine } from "../src/engine/engine.js";
import { analyze } from "../src/model/analysis.js";
import { compileModel } from "../src/model/index.js";
import { type BenchCase, runSuite } from "./harness.js";

const engine = await createEngine({
  model: "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n",
});
for (const [object, n] of [
  ["doc:10k", 10_000],
  ["doc:40k", 40_000],
] as const) {
  for (let i = 0; i < n; i += 5000) {
    const writes = [];
    for (let j = i; j < Math.min(n, i + 5000); j++)
      writes.push({ user: `user:${j}`, relation: "viewer", object });
    await engine.write({ writes });
  }
}

/** Types t1..tn, each with a parent (the previous type) and a viewer inherited through it. */
function chainOfTypes(n: number) {
  const types: object[] = [
    { type: "user" },
    {
      type: "t0",
      relations: { r: { this: {} } },
      metadata: { relations: { r: { directly_related_user_types: [{ type: "user" }] } } },
    },
  ];
  for (let i = 1; i < n; i++) {
    types.push({
      type: `t${i}`,
      relations: {
        p: { this: {} },
        r: {
          union: {
            child: [
              { this: {} },
              { tupleToUserset: { tupleset: { relation: "p" }, computedUserset: { relation: "r" } } },
            ],
          },
        },
      },
      metadata: {
        relations: {
          p: { directly_related_user_types: [{ type: `t${i - 1}` }] },
          r: { directly_related_user_types: [{ type: "user" }, { type: `t${i - 1}`, relation: "r" }] },
        },
      },
    });
  }
  return compileModel({ schema_version: "1.1", type_definitions: types });
}
const small = chainOfTypes(2000);
const large = chainOfTypes(8000);
/** A fresh analysis each call (analyze caches per Program): copy the Program's shell. */
const analyseFresh = (program: typeof small) => {
  const analysis = analyze({ ...program });
  analysis.canReach("t1", "r", "user");
};

const cases: BenchCase[] = [
  {
    name: "listUsers, 10k tuples on the object",
    fn: () => engine.listUsers({ object: "doc:10k", relation: "viewer", userFilters: [{ type: "user" }] }),
  },
  {
    name: "listUsers, 40k tuples on the object",
    fn: () => engine.listUsers({ object: "doc:40k", relation: "viewer", userFilters: [{ type: "user" }] }),
  },
  { name: "read the 10k tuples (floor)", fn: () => engine.read({ object: "doc:10k", relation: "viewer" }) },
  { name: "analyse 2,000 types", fn: () => analyseFresh(small) },
  { name: "analyse 8,000 types", fn: () => analyseFresh(large) },
];

await runSuite("inputs", cases, {
  iterations: 5,
  comparisons: [
    { subject: "listUsers, 10k tuples on the object", peer: "read the 10k tuples (floor)" },
    {
      subject: "listUsers, 40k tuples on the object",
      peer: "listUsers, 10k tuples on the object",
      goalRatio: 0.2,
    },
    { subject: "analyse 8,000 types", peer: "analyse 2,000 types", goalRatio: 0.2 },
  ],
});
await engine.close();
