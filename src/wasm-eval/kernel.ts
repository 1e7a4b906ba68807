/**
 * The `evaluate` WASM kernel (assembly/evaluate.ts, which also exports the graph's, the Leopard index's and the
 * interner's functions; contract: src/kernels/abi/evaluate.ts): its exports, typed, and a private instance per evaluator so that its globals (installed program, current check) and its linear
 * memory (graphs, interned symbols, memo tables) belong to one engine and are dropped with it. Runtime-neutral.
 */
import { evaluateAbi } from "../kernels/abi/evaluate.js";
import type { InternKernelExports } from "../kernels/intern.js";
import { instantiateKernel, type Kernel } from "../wasm/loader.js";

/** graph_add / graph_remove: one tuple in or out (1 when the graph changed, else 0). */
type GraphUpdate = (
  graph: number,
  object: number,
  relation: number,
  subject: number,
  subjectRelation: number,
  kind: number,
  flagged: number,
) => number;

/** leopard_on_add / leopard_on_remove: the Leopard index follows one tuple of an indexed relation. */
type LeopardUpdate = (
  graph: number,
  leopard: number,
  type: number,
  relation: number,
  group: number,
  subject: number,
  subjectRelation: number,
  kind: number,
  flagged: number,
) => void;

export interface EvaluateKernelExports extends InternKernelExports {
  symbols_set_types(pairs: number, count: number): void;
  symbols_type(symbol: number): number;
  symbols_memory_bytes(): number;
  graph_new(seedLo: number, seedHi: number): number;
  graph_free(graph: number): void;
  graph_add: GraphUpdate;
  graph_remove: GraphUpdate;
  /** Opens / ends a batch of graph_remove calls on one graph (assembly/graph.ts: nothing reads it in between). */
  graph_batch_begin(graph: number): void;
  graph_batch_end(graph: number): void;
  graph_tuples(graph: number): number;
  graph_flagged(graph: number): number;
  graph_node_flagged(graph: number, object: number, relation: number): number;
  graph_node_length(graph: number, object: number, relation: number, which: number): number;
  graph_node_entries(graph: number, object: number, relation: number, which: number): number;
  graph_has_edge(
    graph: number,
    object: number,
    relation: number,
    subject: number,
    subjectRelation: number,
  ): number;
  graph_subject_length(graph: number, subject: number, subjectRelation: number): number;
  graph_subject_entries(graph: number, subject: number, subjectRelation: number): number;
  graph_memory_bytes(graph: number): number;
  graph_set_leopard(graph: number, leopard: number): void;
  graph_invalidate(graph: number, object: number, relation: number): void;
  graph_facts(graph: number): number;
  graph_clear_facts(graph: number): void;
  graph_plans(graph: number): number;
  graph_clear_plans(graph: number): void;
  eval_fact_hits(): bigint;
  /** The resolves a node must take for its fact to be kept (assembly/evaluate.ts FACT_MIN_REDO). */
  eval_fact_min_redo(): number;
  eval_set_plan_limit(limit: number): void;
  eval_plan_hits(): bigint;
  eval_plans_built(): bigint;
  leopard_new(seedLo: number, seedHi: number): number;
  leopard_free(leopard: number): void;
  leopard_mark_dirty(leopard: number, type: number, relation: number): void;
  leopard_rebuild(graph: number, leopard: number, type: number, relation: number): number;
  leopard_on_add: LeopardUpdate;
  leopard_on_remove: LeopardUpdate;
  leopard_decide(
    graph: number,
    leopard: number,
    nodes: number,
    type: number,
    relation: number,
    group: number,
    subject: number,
    wildcard: number,
    budget: number,
  ): number;
  leopard_updates(): bigint;
  leopard_entries(leopard: number): number;
  leopard_memory_bytes(leopard: number): number;
  leopard_distance(leopard: number, relation: number, group: number, member: number): number;
  leopard_height(leopard: number, relation: number, group: number): number;
  leopard_state(leopard: number, type: number, relation: number): number;
  eval_set_program(block: number): void;
  eval_set_fact_limit(limit: number): void;
  eval_resolved(): bigint;
  eval_leopard_decided(): bigint;
  eval_leopard_undecided(): bigint;
  eval_memo_hits(): bigint;
  eval_check(
    graph: number,
    object: number,
    type: number,
    relation: number,
    subject: number,
    subjectRelation: number,
    wildcard: number,
    kind: number,
    userset: number,
  ): number;
  eval_check_many(graph: number, requests: number, count: number, out: number, flags: number): void;
  list_objects(
    graph: number,
    block: number,
    subject: number,
    wildcard: number,
    type: number,
    relation: number,
  ): number;
  list_objects_results(): number;
  list_objects_memory_bytes(): number;
  list_objects_order(interner: number, results: number, count: number): number;
  list_objects_fresh(): number;
}

export type EvaluateKernel = Kernel<EvaluateKernelExports>;

/** A new private instance of the evaluator kernel (requires `await ready()`). */
export function instantiateEvaluateKernel(): EvaluateKernel {
  return instantiateKernel<EvaluateKernelExports>("evaluate");
}

const abi = evaluateAbi.constants;

/** Outcome codes the kernel returns. */
export const Outcome = {
  FALSE: abi.FALSE,
  TRUE: abi.TRUE,
  CYCLE: abi.CYCLE,
  TOO_COMPLEX: abi.TOO_COMPLEX,
  UNSUPPORTED: abi.UNSUPPORTED,
  TOO_MANY_STEPS: abi.TOO_MANY_STEPS,
} as const;

/** Subject kinds as graph_add takes them. */
export const SubjectForm = {
  OBJECT: abi.KIND_OBJECT,
  WILDCARD: abi.KIND_WILDCARD,
  USERSET: abi.KIND_USERSET,
} as const;
