/**
 * nexus-fast/storage (Node only): content-addressed blob storage in Haystack-style volumes with a WASM needle
 * index, and the compact metadata table that maps paths to contents.
 */
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
  type StoreOptions,
  type StoreStats,
} from "./store.js";
