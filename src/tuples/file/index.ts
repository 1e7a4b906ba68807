/**
 * nexus-fast/file-store (Node only): the durable embedded TupleStore, a log of write batches with checkpoints in
 * one directory. Open it with openFileTupleStore({ dir }).
 */
export {
  FileTupleStore,
  type FileTupleStoreOptions,
  type FileTupleStoreStats,
  type FsyncPolicy,
  openFileTupleStore,
} from "./store.js";
