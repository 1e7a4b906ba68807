/** The query pipeline (pipeline.ts), its layers as wired by builder.ts, and CheckChain (chain.ts), which runs them. */
export { type BloomNegativeOptions, BloomNegativeResolver } from "./bloom-negative.js";
export {
  type ChainStats,
  CheckChain,
  type CheckChainOptions,
  type CheckOptions,
  type FilterRequest,
  type ValidateStats,
  type WarmingOptions,
} from "./chain.js";
export {
  type CrossTenantContext,
  CrossTenantIndex,
  type CrossTenantOptions,
  CrossTenantResolver,
  type GrantsOnQuery,
  type GrantsToQuery,
} from "./cross-tenant/index.js";
export { ReferenceResolver, type ReferenceResolverOptions } from "./reference.js";
export { type ResultCacheOptions, ResultCacheResolver } from "./result-cache.js";
export { RevisionChooser, type RevisionStats } from "./revision.js";
export { SingleflightResolver } from "./singleflight.js";
// TigerResolver itself is imported from ./tiger.js (it brings roaring-wasm); the chain loads it on demand.
export type { TigerOptions } from "./tiger/index.js";
export type { BatchOutcome, CheckResolver, LayerStats, Resolution, ResolvedCheck } from "./types.js";
export {
  type Access,
  AccessTracker,
  type AccessTrackerOptions,
  type AccessTrackerStats,
  type Listing,
  pathDirectory,
  Warmer,
  type WarmerOptions,
  type WarmerStats,
  type WarmFn,
  type WarmQuestion,
  type WarmTarget,
  type WarmThroughOptions,
  warmThrough,
} from "./warming/index.js";
export { WasmResolver } from "./wasm.js";
