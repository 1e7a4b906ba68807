/**
 * The public shapes of NexusFS: who calls (Caller), which tenant an operation addresses, the filesystem's
 * options (tiers included), listings, grants, file data, and what recovery on open reports.
 */
import type { BlobStore } from "../blobs/tiered/blob-store.js";
import type { TieringPolicy } from "../blobs/tiered/policy.js";
import type { Engine } from "../engine/engine.js";
import type { ListingEntry } from "./tree.js";

export type { FileStat, Version } from "./tree.js";

/** The largest file: the volume store's blob limit (2 GiB - 1 KiB). */
export const MAX_FILE_BYTES = 2 ** 31 - 1024;

/** Who is asking: a subject (`user:alice`, `agent:a1`) and its tenant (default "default"). */
export interface Caller {
  readonly user: string;
  readonly tenant?: string;
}

/** Which tenant's tree an operation addresses (default: the caller's own). */
export interface TargetOptions {
  readonly tenant?: string;
}

export interface FileSystemOptions {
  /** Where contents, metadata and (with the default engine) tuples live. */
  readonly dir: string;
  /**
   * The permission engine (its model needs the file namespace of `nexusFilesystemModel`). Default: one on that
   * preset whose tuples live in `dir` (see tuple-store.ts), closed with the filesystem. A given engine is not closed.
   */
  readonly engine?: Engine;
  /** Sync the journal and contents before an operation is acknowledged (default true; false survives a process crash, not a machine crash). */
  readonly fsync?: boolean;
  /** Contents kept per file, the current one included (default 10). */
  readonly maxVersions?: number;
  /** Largest file, in bytes (default and maximum MAX_FILE_BYTES, 2 GiB - 1 KiB, the volume store's blob limit). */
  readonly maxFileBytes?: number;
  /**
   * Events the change stream keeps (default 10,000), across restarts: a token older than that gets
   * NexusError "invalid_token" with `details.reason` "expired".
   */
  readonly eventRetention?: number;
  /** Journal records between checkpoints (default 10,000). */
  readonly checkpointEvery?: number;
  /** Epoch milliseconds for mtimes (default Date.now). */
  readonly clock?: () => number;
  /**
   * Where contents live. They are always in the tiered store: hot in volumes (`dir/blobs`), warm as RS(10,4)
   * shards over `warmDirs`, cold in a blob store; a background pass every `intervalMs` moves them by the policy
   * (defaults: warm after a day idle, cold after 30 days, back to hot after 2 reads).
   */
  readonly tiers?: FileSystemTiers;
  /** Test hooks (not part of the API): called after each step of a journaled mutation. */
  readonly testing?: { readonly onStep?: (step: MutationStep, op: string) => void };
}

export interface FileSystemTiers {
  /**
   * Directories for the warm tier's shards (at least 14 for RS(10,4); default `dir/warm/00` … `dir/warm/13`).
   * On one disk they protect against corrupt or lost shard files, not a lost disk: give 14 mounts for that.
   */
  readonly warmDirs?: readonly string[];
  /** The cold tier (default an FsBlobStore in `dir/cold`). Owned: closed with the filesystem. */
  readonly cold?: BlobStore;
  readonly policy?: TieringPolicy;
  /** Milliseconds between background tiering passes (default 60 000); false runs none (call `contents.runTieringPass()`). */
  readonly intervalMs?: number | false;
}

/** The steps of a journaled mutation, in order. */
export type MutationStep = "begun" | "stored" | "tuples" | "committed" | "after";

/** One entry of a listing. */
export type DirEntry = ListingEntry;

/** A grant made by share(). */
export interface Grant {
  /** `user:bob`, `agent:x`, or a group (`group:eng`: its members) of the file's own tenant. */
  readonly user: string;
  readonly relation: "viewer" | "editor" | "owner";
  /** The grantee's tenant (default: the file's); another tenant makes a cross-tenant share (`shared-*`). */
  readonly tenant?: string;
}

/** File data: bytes, text (UTF-8), or a stream of chunks (never held whole in memory). */
export type FileData = Uint8Array | string | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

/** What the recovery on open found and did (for tests and logs). */
export interface RecoveryReport {
  readonly replayed: number;
  readonly rolledBack: boolean;
  readonly rolledForward: boolean;
  readonly releasedKeys: number;
}
