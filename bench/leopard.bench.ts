/**
 * The Leopard index's upkeep on a chain a tenant can write: 20,000 nested groups (`group#member`), written from the
 * bottom up in writes of 1,000 with a check after each (every link maintained as it comes: its cycle check walks the
 * chain below it, at most WALK_LIMIT groups before the relation is left to a rebuild), against the same chain in
 * one write (the graph built with the index deferred, then one rebuild): the baseline, measured in the same run.
 * The previous kernel (no walk limit) took 6.0–6.4 s for the maintained case in a one-off probe.
 *
 * Deletes: one group of 80,000 members (`group:big#member@user:…`) written, then all deleted in writes of 10,000,
 * last-written first (each delete at the end of the group's list: the longest scan) or first-written first, on a
 * TupleGraph driven as TenantGraphs drives it (a write's changes in runs of 256, CLOCK_EVERY, inside
 * beginBatch/endBatch). Deletes in batches (applyMany: a run's deletes go to the kernel as one batch that compacts
 * the list once, assembly/graph.ts graph_batch_begin) against one `apply` a delete (one graph_remove each, a scan
 * and shift of the list: the path every delete took before), with the Leopard index pending a rebuild (as a bulk
 * load leaves it: the list alone is measured) and with it maintained (each delete recomputes the group and its
 * members: once a write when batched; once a delete before, which took 173 s for one call of the maintained case
 * at 8e29aee, so that way is not run here). The 80,000 writes alone are the baseline to subtract.
 * The same through the whole engine (createEngine at its defaults: store, change feed, every layer, the graph kept
 * current at each write), the group written and then deleted last-written first in writes of 10,000, against the
 * writes alone in the same run; a check after the deletes answers false.
 * LEOPARD_BENCH_ONLY=<regex> runs only the matching cases.
 *
 * Run: BENCH_TIME=1 node --import tsx --expose-gc bench/leopard.bench.ts
 */
import { createEngine } from "../src/engine/engine.js";
import { compileModel, loadOpenFgaDsl } from "../src/model/index.js";
import type { CheckQuery } from "../src/reference/check.js";
import { MemoryTupleStore } from "../src/tuples/memory.js";
import { normalizeTuple } from "../src/tuples/normalize.js";
import { parseSubject, type RelationTuple, type TupleKey } from "../src/tuples/tuple.js";
import { ready } from "../src/wasm/loader.js";
import { compileProgram } from "../src/wasm-eval/compile.js";
import { WasmEvaluator } from "../src/wasm-eval/evaluator.js";
import { type GraphChange, TupleGraph } from "../src/wasm-eval/graph.js";
import { instantiateEvaluateKernel } from "../src/wasm-eval/kernel.js";
import { Symbols } from "../src/wasm-eval/symbols.js";
import { runSuite } from "./harness.js";

await loadOpenFgaDsl();
await ready();
const MODEL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
`;
const program = compileModel(MODEL);
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

const MEMBERS = 80_000;
const DELETE_WRITE = 10_000;
/** TenantGraphs' CLOCK_EVERY: it hands a graph a write's changes in runs of this many. */
const RUN = 256;
const members: GraphChange[] = Array.from({ length: MEMBERS }, (_, i) => ({
  tuple: normalized({ user: `user:m${i}`, relation: "member", object: "group:big" }),
  op: "write",
}));
const compiled = compileProgram(program, 25);
const kernel = instantiateEvaluateKernel();

/**
 * The group written into a fresh graph, then deleted in writes of DELETE_WRITE (`order`), each write applied in runs
 * of RUN: in batches (applyMany) or one `apply` a delete; the index pending a rebuild or maintained.
 */
function deleteGroup(
  how: "batched" | "one by one" | "none",
  order: "last-written first" | "first-written first",
  index: "pending" | "maintained",
): void {
  const symbols = new Symbols(kernel);
  const graph = new TupleGraph(kernel, compiled, symbols, "default", 0);
  try {
    if (index === "pending") graph.deferLeopard();
    graph.applyMany(members, 0, MEMBERS);
    if (how === "none") return;
    const deletes: GraphChange[] = members.map((c) => ({ tuple: c.tuple, op: "delete" }));
    if (order === "last-written first") deletes.reverse();
    for (let write = 0; write < MEMBERS; write += DELETE_WRITE) {
      graph.beginBatch();
      for (let from = write; from < write + DELETE_WRITE; from += RUN) {
        const to = Math.min(write + DELETE_WRITE, from + RUN);
        if (how === "batched") graph.applyMany(deletes, from, to);
        else for (let i = from; i < to; i++) graph.apply(deletes[i]!.tuple, "delete");
      }
      graph.endBatch();
    }
    if (graph.tuples !== 0) throw new Error(`${graph.tuples} tuples left`);
  } finally {
    graph.dispose();
    symbols.dispose();
  }
}

/** The group through a default engine: written in writes of DELETE_WRITE, then (unless `deleted` is false) deleted. */
async function engineGroup(deleted: boolean): Promise<void> {
  const engine = await createEngine({ model: MODEL });
  try {
    const keys = members.map((c) => ({ user: c.tuple.user, relation: "member", object: "group:big" }));
    for (let at = 0; at < MEMBERS; at += DELETE_WRITE)
      await engine.write({ writes: keys.slice(at, at + DELETE_WRITE) });
    if (!deleted) return;
    keys.reverse();
    let token = "";
    for (let at = 0; at < MEMBERS; at += DELETE_WRITE) {
      token = (await engine.write({ deletes: keys.slice(at, at + DELETE_WRITE) })).token;
    }
    const ask = {
      user: "user:m0",
      relation: "member",
      object: "group:big",
      consistency: { atLeastAsFresh: token },
    };
    if (await engine.check(ask)) throw new Error("a deleted member still allowed");
  } finally {
    await engine.close();
  }
}

// LEOPARD_BENCH_ONLY=<regex>: only the matching cases (and the comparisons between them).
const only =
  process.env.LEOPARD_BENCH_ONLY === undefined ? undefined : new RegExp(process.env.LEOPARD_BENCH_ONLY);
const picked = (name: string) => only === undefined || only.test(name);
await runSuite(
  "leopard",
  [
    { name: "20,000-group chain, bottom-up in writes of 1,000, maintained", fn: () => chain(1000) },
    { name: "20,000-group chain in one write (baseline)", fn: () => chain(GROUPS) },
    {
      name: "80,000-member group written (baseline)",
      fn: () => deleteGroup("none", "last-written first", "pending"),
    },
    {
      name: "80,000 deleted last-written first, batched",
      fn: () => deleteGroup("batched", "last-written first", "pending"),
    },
    {
      name: "80,000 deleted last-written first, one by one",
      fn: () => deleteGroup("one by one", "last-written first", "pending"),
    },
    {
      name: "80,000 deleted first-written first, batched",
      fn: () => deleteGroup("batched", "first-written first", "pending"),
    },
    {
      name: "80,000 deleted first-written first, one by one",
      fn: () => deleteGroup("one by one", "first-written first", "pending"),
    },
    {
      name: "80,000 deleted last-written first, batched, index maintained",
      fn: () => deleteGroup("batched", "last-written first", "maintained"),
    },
    { name: "engine: 80,000-member group written (baseline)", fn: () => engineGroup(false) },
    { name: "engine: 80,000 written, then deleted last-written first", fn: () => engineGroup(true) },
  ].filter((c) => picked(c.name)),
  {
    time: 1,
    iterations: 3,
    comparisons: [
      {
        subject: "20,000-group chain, bottom-up in writes of 1,000, maintained",
        peer: "20,000-group chain in one write (baseline)",
      },
      {
        subject: "80,000 deleted last-written first, batched",
        peer: "80,000 deleted last-written first, one by one",
      },
      {
        subject: "80,000 deleted first-written first, batched",
        peer: "80,000 deleted first-written first, one by one",
      },
      {
        subject: "engine: 80,000 written, then deleted last-written first",
        peer: "engine: 80,000-member group written (baseline)",
      },
    ].filter((c) => picked(c.subject) && picked(c.peer)),
  },
);
