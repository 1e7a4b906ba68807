/**
 * The Leopard index's upkeep on a chain a tenant can write: 20,000 nested groups (`group#member`), written from the
 * bottom up in writes of 1,000 with a check after each (every link maintained as it comes: its cycle check walks the
 * chain below it, at most WALK_LIMIT groups before the relation is left to a rebuild), against the same chain in
 * one write (the graph built with the index deferred, then one rebuild): the baseline, measured in the same run.
 * The previous kernel (no walk limit) took 6.0–6.4 s for the maintained case in a one-off probe.
 *
 * Run: BENCH_TIME=1 node --import tsx --expose-gc bench/leopard.bench.ts
 */
import { compileModel, loadOpenFgaDsl } from "../src/model/index.js";
import type { CheckQuery } from "../src/reference/check.js";
import { MemoryTupleStore } from "../src/tuples/memory.js";
import { normalizeTuple } from "../src/tuples/normalize.js";
import { parseSubject, type RelationTuple, type TupleKey } from "../src/tuples/tuple.js";
import { ready } from "../src/wasm/loader.js";
import { WasmEvaluator } from "../src/wasm-eval/evaluator.js";
import { runSuite } from "./harness.js";

await loadOpenFgaDsl();
await ready();
const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
`);
const GROUPS = 20_000;

const normalized = (key: TupleKey): RelationTuple => {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};
const links = Array.from({ length: GROUPS - 1 }, (_, i) =>
  normalized({ user: `group:g${i + 1}#member`, relation: "member", object: `group:g${i}` }),
);
const member = normalized({ user: "user:x", relation: "member", object: `group:g${GROUPS - 1}` });
const question: CheckQuery = {
  tenant: "default",
  subjectTenant: "default",
  object: "group:g0",
  relation: "member",
  user: "user:x",
  subject: parseSubject("user:x")!,
};

/** The chain into a fresh store and evaluator: in writes of `batch` from the bottom up, a check after each. */
async function chain(batch: number): Promise<void> {
  const store = new MemoryTupleStore();
  const fast = new WasmEvaluator({ program, store, maxDepth: 25 });
  try {
    await store.write({ writes: [member], deletes: [] });
    await fast.check(question, await store.currentRevision());
    for (let end = links.length; end > 0; end -= batch) {
      await store.write({ writes: links.slice(Math.max(0, end - batch), end).reverse(), deletes: [] });
      await fast.check(question, await store.currentRevision());
    }
  } finally {
    fast.close();
    await store.close();
  }
}

await runSuite(
  "leopard",
  [
    { name: "20,000-group chain, bottom-up in writes of 1,000, maintained", fn: () => chain(1000) },
    { name: "20,000-group chain in one write (baseline)", fn: () => chain(GROUPS) },
  ],
  {
    time: 1,
    iterations: 3,
    comparisons: [
      {
        subject: "20,000-group chain, bottom-up in writes of 1,000, maintained",
        peer: "20,000-group chain in one write (baseline)",
      },
    ],
  },
);
