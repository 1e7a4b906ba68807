// Node epochs: one counter per graph node (object, relation), bumped when a change below the node can alter its
// answer or its plan (the TypeScript side walks the reverse edges and calls graph_invalidate for each). The kept
// facts (facts.ts) and plans (plans.ts) stamp every entry with its node's epoch at the time, so a bump retires
// them all at once without visiting them. A node never bumped has epoch 0 and no entry in the memo.
import { memo_get2, memo_size } from "../intern";
import { put2 } from "../tables/put";
import { STAMP_HALF } from "../lib/stamped-table";

// @ts-ignore: decorator
@inline const ABSENT: u32 = 0xffffffff;

/** The epoch of node (object, relation) in the epochs memo `epochs`. */
// @ts-ignore: decorator
@inline
export function nodeEpoch(epochs: usize, object: u32, relation: u32): u32 {
  if (memo_size(epochs) == 0) return 0;
  const e = memo_get2(epochs, object, relation);
  return e == ABSENT ? 0 : e;
}

/** Bumps the node's epoch; false, changing nothing, when it is spent (the caller wipes the epochs and tables). */
export function bumpEpoch(epochs: usize, object: u32, relation: u32): bool {
  const e = memo_get2(epochs, object, relation);
  const epoch: u32 = e == ABSENT ? 0 : e;
  if (epoch + 1 >= STAMP_HALF) return false;
  put2(epochs, object, relation, epoch + 1);
  return true;
}
