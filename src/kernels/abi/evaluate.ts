/**
 * The `evaluate` kernel's contract (assembly/evaluate.ts, with the graph in assembly/graph.ts and assembly/graph/,
 * the Leopard index in assembly/leopard.ts, the program and plans in assembly/evaluate/): the functions
 * src/wasm-eval calls, and the numbers both sides read the same way — the bytecode's opcodes and the program
 * block's header (src/wasm-eval/compile.ts writes them), the outcome codes eval_check returns, the subject forms
 * graph_add takes, and the request record eval_check_many reads. The kernel also hosts interners and memo tables,
 * so it exports the `intern` kernel's functions too. test/kernels/abi.test.ts checks both sides.
 */
import { internAbi } from "./intern.js";
import type { KernelAbi } from "./kernel-abi.js";

export const evaluateAbi = {
  kernel: "evaluate",
  exports: [
    ...internAbi.exports,
    "symbols_set_types",
    "symbols_type",
    "symbols_memory_bytes",
    "graph_new",
    "graph_free",
    "graph_add",
    "graph_remove",
    "graph_batch_begin",
    "graph_batch_end",
    "graph_tuples",
    "graph_flagged",
    "graph_node_flagged",
    "graph_node_length",
    "graph_node_entries",
    "graph_has_edge",
    "graph_subject_length",
    "graph_subject_entries",
    "graph_memory_bytes",
    "graph_set_leopard",
    "graph_invalidate",
    "graph_facts",
    "graph_clear_facts",
    "graph_plans",
    "graph_clear_plans",
    "leopard_new",
    "leopard_free",
    "leopard_mark_dirty",
    "leopard_on_add",
    "leopard_on_remove",
    "leopard_decide",
    "leopard_rebuild",
    "leopard_updates",
    "leopard_entries",
    "leopard_memory_bytes",
    "leopard_distance",
    "leopard_height",
    "leopard_state",
    "eval_set_program",
    "eval_set_fact_limit",
    "eval_set_plan_limit",
    "eval_resolved",
    "eval_leopard_decided",
    "eval_leopard_undecided",
    "eval_memo_hits",
    "eval_fact_hits",
    "eval_fact_min_redo",
    "eval_plan_hits",
    "eval_plans_built",
    "eval_check",
    "eval_check_many",
    "list_objects",
    "list_objects_results",
    "list_objects_memory_bytes",
    "list_objects_order",
    "list_objects_fresh",
  ],
  constants: {
    /** No symbol, no relation index, no wildcard: the u32 all-ones. */
    ABSENT: 0xffffffff,
    /** The subject relation of a plain object or wildcard subject. */
    NO_REL: 0xffffffff,
    /** Placeholder symbols for an object / subject no tuple names (never interned; never kept as facts). */
    UNKNOWN_OBJECT: 0xfffffffe,
    UNKNOWN_SUBJECT: 0xfffffffd,

    /** Bytecode opcodes: one node per rewrite, u32 words [op, length in words, operands..., children...]. */
    OP_DIRECT: 0,
    OP_COMPUTED: 1,
    OP_TTU: 2,
    OP_UNION: 3,
    OP_INTERSECTION: 4,
    OP_EXCLUSION: 5,
    OP_NONE: 6,

    /** The program block's header: word offsets of its fields (the @ fields hold word offsets of tables). */
    PROGRAM_TYPES: 0,
    PROGRAM_RELATION_NAMES: 1,
    PROGRAM_RELATIONS: 2,
    PROGRAM_KINDS: 3,
    PROGRAM_MAX_DEPTH: 4,
    PROGRAM_RID_OF: 5,
    PROGRAM_RID_CODE: 6,
    PROGRAM_CODE: 7,
    PROGRAM_REACH: 8,
    PROGRAM_FLAGS: 9,
    PROGRAM_LEOPARD: 10,
    PROGRAM_FACTS: 11,
    /** Words of the header; the tables follow. */
    PROGRAM_HEADER: 12,

    /** Outcomes of eval_check (and the bytes eval_check_many writes). */
    FALSE: 0,
    TRUE: 1,
    CYCLE: 2,
    /** The check needs more nested lookups than the depth limit ("resolution_too_complex", details.maxDepth). */
    TOO_COMPLEX: 3,
    /** The check read a flagged tuple: the reference evaluator answers it. */
    UNSUPPORTED: 4,
    /**
     * The check went over MAX_RESOLUTION_STEPS: also "resolution_too_complex", but the error names the step budget
     * (details.limit "maxResolutionSteps"), as the reference's does, not the depth limit.
     */
    TOO_MANY_STEPS: 5,

    /**
     * The per-check step budget: `resolve` calls that evaluate a rewrite (past the depth limit, the cycle check, the
     * userset-itself rule and the memo), counted at the same point by the kernel and the reference
     * (src/reference/check.ts); the kernel's shortcuts (leaf nodes, the Leopard index, kept facts) skip steps, so
     * it may stay within the budget where the reference goes over. One more and the whole check answers
     * TOO_MANY_STEPS ("resolution_too_complex"): a recursive model can otherwise search paths for seconds
     * (exponential in the depth). OpenFGA's conformance checks need at most 33 steps.
     */
    MAX_RESOLUTION_STEPS: 250_000,

    /** Subject forms, graph_add's and graph_remove's `kind`. */
    KIND_OBJECT: 0,
    KIND_WILDCARD: 1,
    KIND_USERSET: 2,

    /** A request record of eval_check_many: word offsets (eval_check takes the same words as arguments). */
    REQUEST_OBJECT: 0,
    REQUEST_TYPE: 1,
    REQUEST_RELATION: 2,
    REQUEST_SUBJECT: 3,
    REQUEST_SUBJECT_RELATION: 4,
    REQUEST_WILDCARD: 5,
    REQUEST_KIND: 6,
    REQUEST_USERSET: 7,
    /** Words per record (the last one is 0). */
    REQUEST_WORDS: 9,

    /**
     * list_objects_order's answers other than a count of new symbols: a new text holds a character above U+FFFF
     * (the caller sorts the texts), or a symbol was given twice (the results must be distinct).
     */
    LIST_ORDER_ASTRAL: -1,
    LIST_ORDER_REPEATED: -2,

    /** list_objects' reverse program block (src/wasm-eval/list-objects.ts writes it): header word offsets. */
    LIST_TYPES: 0,
    LIST_RELATION_NAMES: 1,
    /** Words of its header; the (type, relation) index follows. */
    LIST_HEADER: 2,
  },
} as const satisfies KernelAbi;
