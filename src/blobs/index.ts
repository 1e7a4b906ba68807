/**
 * nexus-fast/storage (Node only): content-addressed blob storage. volume/ holds the volume store (Haystack-style
 * volumes with a WASM needle index, `openStore`); tiered/ the tiered store over it (hot volumes, an
 * erasure-coded warm tier, a cold blob store, `openTieredStore`); metadata/ the compact table that maps paths to
 * contents.
 */

export { type FileMeta, type FileRecord, MetadataTable } from "./metadata/metadata.js";
export { PathInterner } from "./metadata/path-interner.js";
export { type BlobStore, FsBlobStore, type FsBlobStoreOptions } from "./tiered/blob-store.js";
// The WarmTier* names are the erasure-coded tier's old names, kept so existing imports compile ("warm" also names
// the permission engine's unrelated cache warming). They go in the next major version.
export {
  ErasureCodedTier,
  /** @deprecated Renamed ErasureCodedTier (the RS(10,4) warm tier). */
  ErasureCodedTier as WarmTier,
  type ErasureCodedTierOptions,
  /** @deprecated Renamed ErasureCodedTierOptions. */
  type ErasureCodedTierOptions as WarmTierOptions,
  type ShardReadReport,
  /** @deprecated Renamed ShardReadReport. */
  type ShardReadReport as WarmReadReport,
} from "./tiered/erasure-coded-tier.js";
export { TieringJob, type TieringJobEvents, type TieringJobOptions } from "./tiered/job.js";
export type {
  HotStore,
  MoveOptions,
  MoveProgress,
  MoveStep,
  MoveTarget,
  RecoveryReport,
  Tier,
  TieredScrubOptions,
  TieredScrubProgress,
  TieredScrubResult,
  TieredStats,
  TieredStoreOptions,
  TieringPassOptions,
  TieringPassResult,
  TieringProgress,
} from "./tiered/options.js";
export type { TieringPolicy } from "./tiered/policy.js";
export { openTieredStore, TieredStore } from "./tiered/store.js";
export type { CompactOptions, CompactProgress, CompactResult, CompactStep } from "./volume/compaction.js";
export { type IndexEntry, NeedleIndex, type NeedleLocation } from "./volume/needle-index.js";
export type { CorruptNeedle } from "./volume/recovery.js";
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
} from "./volume/store.js";
