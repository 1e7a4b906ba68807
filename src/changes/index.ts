/** Change streams and the invalidation fan-out. */

export {
  type DepthBoundSource,
  TupleDepthBound,
  type TupleDepthBoundOptions,
  type TupleDepthBoundStats,
} from "./depth.js";
export { ChangeFeed, type ChangeFeedOptions, type ChangeFeedStats, type ChangeListener } from "./feed.js";
export { type InfluenceMap, influenceOf, type RelationClass } from "./influence.js";
