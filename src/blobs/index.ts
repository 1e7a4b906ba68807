/**
 * nexus-fast/storage (Node only): content-addressed blob storage in Haystack-style volumes with a WASM needle
 * index, and the compact metadata table that maps paths to contents.
 */

export { type BlobStore, FsBlobStore, type FsBlobStoreOptions } from "./blob-store.js";
export type { CompactOptions, CompactProgress, CompactResult, CompactStep } from "./compaction.js";
export { type FileMeta, type FileRecord, MetadataTable } from "./metadata.js";
export { type IndexEntry, NeedleIndex, type NeedleLocation } from "./needle-index.js";
export { PathInterner } from "./path-interner.js";
export type { CorruptNeedle } from "./recovery.js";
export {
  type FsyncPolicy,
  type GetOptions,
  NeedleStore,
  openStore,
  type PutResult,
  type ScrubOptions,
  type ScrubProgress,
  type ScrubResult,
  type StoreOptions,
  type StoreStats,
} from "./store.js";
export {
  type HotStore,
  type MoveOptions,
  type MoveProgress,
  type MoveStep,
  type MoveTarget,
  openTieredStore,
  type RecoveryReport,
  type Tier,
  type TieredScrubOptions,
  type TieredScrubProgress,
  type TieredScrubResult,
  type TieredStats,
  TieredStore,
  type TieredStoreOptions,
  TieringJob,
  type TieringJobEvents,
  type TieringJobOptions,
  type TieringPassOptions,
  type TieringPassResult,
  type TieringPolicy,
  type TieringProgress,
} from "./tiered.js";
export { type WarmReadReport, WarmTier, type WarmTierOptions } from "./tiered-warm.js";
