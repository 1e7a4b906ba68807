/**
 * Following writes: the change feed (one changelog subscription per store, fanned out to every follower), its
 * followers in this folder (the depth bound; a subscription read as an async iterable) and the rule for which
 * answers a change can affect (influence).
 */

export {
  type DepthBoundSource,
  TupleDepthBound,
  type TupleDepthBoundOptions,
  type TupleDepthBoundStats,
} from "./depth.js";
export { ChangeFeed, type ChangeFeedOptions, type ChangeFeedStats, type ChangeListener } from "./feed.js";
export { type InfluenceMap, influenceOf, type RelationClass } from "./influence.js";
export { type FollowChangesOptions, followChanges } from "./stream.js";
