/**
 * nexus-fast/fs (Node only): NexusFS, files whose every operation is checked by the permission engine, with
 * contents in the tiered store (hot volumes, warm RS(10,4) shards, cold blobs) and metadata in 64-byte records;
 * its change stream, a caching client, and a FUSE mount.
 */
export {
  type CacheCounters,
  type FsBackend,
  FsClient,
  type FsClientOptions,
  type FsClientStats,
} from "./client.js";
export type { FsEvent, FsEventKind, FsWatchRequest } from "./event-types.js";
export {
  type Caller,
  type DirEntry,
  type FileData,
  type FileStat,
  FileSystem,
  type FileSystemOptions,
  type FileSystemTiers,
  FsSession,
  type Grant,
  type MutationStep,
  type RecoveryReport,
  type TargetOptions,
  type Version,
} from "./filesystem.js";
export { HttpFileSystem, type HttpFsOptions } from "./http.js";
export { fuseUnavailableReason, Mount, type MountOptions, mount } from "./mount.js";
export { openFileSystem } from "./open.js";
export { MAX_NAME_BYTES, MAX_PATH_BYTES, normalizePath } from "./paths.js";
