// Object plans: (object, relation) -> the node's rewrite with this graph's structure read in (evaluate/plan.ts
// builds them; evaluate.ts replays them). Kept across checks and batches in a stamped table (lib/stamped-table.ts)
// keyed on the node, stamped and invalidated with the same node epochs as the facts (epochs.ts): a plan reads
// only nodes of its own object below it, and the TypeScript side bumps the epoch of every node above a change.
// The payload is PLAN_SEEN (reached once: a plan is built at the second visit), PLAN_NONE (too large to keep)
// or the address of a plan block the table owns ([u32 bytes][words...]; freed when its slot is reused, evicted
// or the graph freed, but never under a replay: see tableBeginUse).
import { nodeEpoch } from "./epochs";
import { slotPayload, tableCapacity, tableFind, tableLive, tableNew, tablePut } from "../lib/stamped-table";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const KEY_WORDS: u32 = 2;
// The two markers (below the table's PAYLOAD_MARKERS, so it never frees them).
// @ts-ignore: decorator
@inline export const PLAN_SEEN: u32 = 0;
// @ts-ignore: decorator
@inline export const PLAN_NONE: u32 = 1;

// Plans a table may hold (kernel-wide; a power of two ≥ 4; 0 = no plans), set through eval_set_plan_limit.
let planCapacity: u32 = 1 << 15;

export function setPlanCapacity(limit: u32): void {
  planCapacity = limit == 0 ? 0 : tableCapacity(limit);
}

// @ts-ignore: decorator
@inline
export function plansOn(): bool {
  return planCapacity != 0;
}

export function planTableNew(seedLo: u32, seedHi: u32): usize {
  return tableNew(KEY_WORDS, true, seedLo, seedHi);
}

/** The node's live plan entry (PLAN_SEEN, PLAN_NONE or a plan address), or ABSENT; marks it referenced. */
export function planGet(t: usize, epochs: usize, object: u32, relation: u32): u32 {
  const s = tableFind(t, KEY_WORDS, object, relation, 0);
  if (s == 0 || !tableLive(t, s, nodeEpoch(epochs, object, relation))) return ABSENT;
  return slotPayload(s);
}

/** Records the node's plan entry (the table takes ownership of a plan address) under its current epoch. */
export function planSet(t: usize, epochs: usize, object: u32, relation: u32, plan: u32): void {
  tablePut(t, planCapacity, true, object, relation, plan, nodeEpoch(epochs, object, relation), 0);
}
