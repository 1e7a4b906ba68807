// Subproblem facts: (node, subject) -> TRUE/FALSE with the depth it was computed at, kept across checks and
// batches at the graph's revision, only for "union-only" relations, whose answers are path-independent facts
// (evaluate.ts says why that gives the reference's answers). A stamped table (lib/stamped-table.ts) keyed on
// (object, subject, relation << 16 | subject relation): relation ids < 0xffff and depths < 256, the evaluator
// keeps no fact otherwise. Invalidation is per node through the node epochs (epochs.ts).
import { nodeEpoch } from "./epochs";
import { slotValue, tableCapacity, tableFind, tableLive, tableNew, tablePut } from "../lib/stamped-table";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const KEY_WORDS: u32 = 3;

// Facts a table may hold (kernel-wide, like the limit it comes from: eval_set_fact_limit).
let factCapacity: u32 = 1 << 18;

/** Sets the most facts a table holds: the largest power of two ≤ limit (at least 4; 0 is the caller's "off"). */
export function setFactCapacity(limit: u32): void {
  factCapacity = tableCapacity(limit);
}

export function factTableNew(seedLo: u32, seedHi: u32): usize {
  return tableNew(KEY_WORDS, false, seedLo, seedHi);
}

// @ts-ignore: decorator
@inline
function keyWord(relation: u32, subjectRelation: u32): u32 {
  return (relation << 16) | (subjectRelation & 0xffff);
}

/** The live fact (depth << 1 | outcome) for node and subject, or ABSENT; marks it referenced. */
// @ts-ignore: decorator
@inline
export function factGet(t: usize, epochs: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32): u32 {
  const s = tableFind(t, KEY_WORDS, object, subject, keyWord(relation, subjectRelation));
  if (s == 0 || !tableLive(t, s, nodeEpoch(epochs, object, relation))) return ABSENT;
  return slotValue(s);
}

/** Records a fact (value = depth << 1 | outcome, depth < 256) under the node's current epoch. */
export function factSet(
  t: usize,
  epochs: usize,
  object: u32,
  relation: u32,
  subject: u32,
  subjectRelation: u32,
  value: u32,
): void {
  const epoch = nodeEpoch(epochs, object, relation);
  tablePut(t, factCapacity, false, object, subject, keyWord(relation, subjectRelation), epoch, value);
}

/** The fact's slot (0 when absent), read without marking it referenced: the evaluator touches it ahead. */
// @ts-ignore: decorator
@inline
export function factSlot(t: usize, object: u32, relation: u32, subject: u32, subjectRelation: u32): usize {
  return tableFind(t, KEY_WORDS, object, subject, keyWord(relation, subjectRelation));
}
