/**
 * Predictive warming: learn where users go next and ask those questions in the background, so their answers are in
 * the result cache (and their Tiger bitmaps materialised) before the users ask.
 *
 * - questions.ts: accesses, listings, warm questions and their keys; `pathDirectory`.
 * - tracker.ts: `AccessTracker`, the navigation model (directory transitions and siblings) that predicts.
 * - warmer.ts: `Warmer`, the background loop that turns observed accesses into warm calls within a budget.
 * - warm-through.ts: `warmThrough`, the warm function that sends questions through a check chain.
 * - observations.ts: the ring observe() records accesses into (parallel arrays: nothing allocated per check).
 * - question-table.ts, recent.ts: questions kept by hash (no key string, no object per question): the record of
 *   what was asked or warmed recently, and the queue of questions to warm.
 * - lru.ts, ring.ts, options.ts: the bounded containers and option checks the above share.
 */

export {
  type Access,
  type Listing,
  pathDirectory,
  type TrackedVisit,
  type WarmQuestion,
  warmKey,
} from "./questions.js";
export { AccessTracker, type AccessTrackerOptions, type AccessTrackerStats } from "./tracker.js";
export { type WarmTarget, type WarmThroughOptions, warmThrough } from "./warm-through.js";
export { Warmer, type WarmerOptions, type WarmerStats, type WarmFn } from "./warmer.js";
