/**
 * NexusFS: files whose every operation is checked against the permission engine, with contents in the volume
 * store and metadata in 64-byte records.
 *
 * What each operation checks (Nexus's rules, without its gaps: rename is checked on both ends, `mkdir -p` checks
 * every level it creates, and there is no owner shortcut: the creator is only an owner through its tuple):
 * - read, stat, versions: `read` on the path;
 * - write/append to an existing file, remove, rmdir: `write` on the path;
 * - creating a file or directory: `write` on the parent; the creator gets `direct_owner` (`shared-owner` when it
 *   comes from another tenant) and a `parent` tuple links the entry to its directory;
 * - rename: `write` on the source and on the destination's parent (and on a file it replaces);
 * - list, glob: `traverse` on the directory (or anything readable below it), then entries filtered by `read`
 *   through engine.filter; a directory shows when it or anything below it is readable;
 * - share, unshare: `execute` on the path.
 *
 * Crash safety: mutations run one at a time. Each that has effects outside the journal first journals a `begin`
 * naming them (the content hash it may store, the tuples it writes), then stores the bytes and writes the tuples,
 * then journals `commit` (the file becomes visible), then removes what the operation dropped and journals `end`.
 * Opening replays the journal and finishes the one operation a crash can have cut: an uncommitted one is rolled
 * back (its new tuples deleted, its bytes released), a committed one is rolled forward. The filesystem holds one
 * store reference per distinct content it keeps (any version of any file), so a content no record names is
 * never left behind.
 */

import { createReadStream } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { createBLAKE3 } from "hash-wasm";
import { toAsyncIterable } from "../blobs/byte-stream.js";
import { openStore } from "../blobs/index.js";
import { MetadataTable } from "../blobs/metadata/metadata.js";
import { type BlobStore, FsBlobStore } from "../blobs/tiered/blob-store.js";
import type { TieredStats, TieringPolicy } from "../blobs/tiered/options.js";
import { openTieredStore, type TieredStore } from "../blobs/tiered/store.js";
import { createEngine, type Engine } from "../engine/engine.js";
import { nexusFilesystemModel } from "../model/preset.js";
import { decodeToken } from "../tuples/token.js";
import { identityKey, type TupleKey } from "../tuples/tuple.js";
import type { TupleStore } from "../tuples/types.js";
import { describe, isNexusError, NexusError } from "../util/errors.js";
import {
  type EventSource,
  type FsEvent,
  FsEventLog,
  type FsWatchRequest,
  type NewFsEvent,
} from "./events.js";
import { Journal } from "./journal.js";
import { globMatcher, isWithin, joinPath, normalizePath, objectOf, parentOf, pathOfObject } from "./paths.js";
import { type FileStat, notFound, TenantTree, type TreeSnapshot, type Version } from "./tree.js";
import { openTupleStoreIn } from "./tuple-store.js";

export type { FileStat, Version } from "./tree.js";

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
  /** Largest file, in bytes (default and maximum 2 GiB - 1 KiB, the volume store's blob limit). */
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
export interface DirEntry {
  readonly name: string;
  readonly path: string;
  readonly isDirectory: boolean;
  readonly size: number;
  readonly mtime: number;
  /** Content hash (files). */
  readonly hash?: string;
}

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

const MAX_BLOB = 2 ** 31 - 1024;
const EVENT_KINDS = ["created", "written", "removed", "renamed", "permission"] as const;
void EVENT_KINDS;

interface BeginRecord {
  t: "begin";
  seq: number;
  tenant: string;
  /** Content hashes this operation may store. */
  keys: string[];
  /** Tuples written before the commit (only those that did not exist). */
  wrote: TupleKey[];
  /** Tuples deleted before the commit. */
  deleted: TupleKey[];
}

type CommitOp =
  | { op: "put"; path: string; hash: string; size: number; mtime: number; creator: string; created: boolean }
  | { op: "mkdir"; path: string; mtime: number; creator: string }
  | { op: "remove"; path: string; mtime: number }
  | { op: "rename"; from: string; to: string; mtime: number };

type CommitRecord = CommitOp & {
  t: "commit";
  seq: number;
  tenant: string;
  /** Tuples deleted after the commit (a removed entry's). */
  deleteAfter: TupleKey[];
  /** The change stream position of its event (reserved before the commit, so it survives with it). */
  p?: number;
  /** The tuple changelog revision of the tuples written before the commit (the filesystem's own change). */
  rev?: number;
};

interface EndRecord {
  t: "end";
  seq: number;
  /** The revision of the tuples deleted after the commit. */
  rev?: number;
}

type JournalRecord = BeginRecord | CommitRecord | EndRecord;

interface Checkpoint {
  seq: number;
  tenants: { name: string; table: string; tree: TreeSnapshot }[];
}

/** A staged content: hashed, and either in memory or in a staging file. */
interface Staged {
  hash: string;
  size: number;
  bytes?: Uint8Array;
  file?: string;
}

/** What the recovery on open found and did (for tests and logs). */
export interface RecoveryReport {
  readonly replayed: number;
  readonly rolledBack: boolean;
  readonly rolledForward: boolean;
  readonly releasedKeys: number;
}

export class FileSystem implements AsyncDisposable {
  readonly engine: Engine;
  readonly dir: string;
  /** Whether permission tuples survive a restart (false while the default engine keeps them in memory). */
  readonly tuplesDurable: boolean;
  readonly recovery: RecoveryReport;
  readonly #ownsEngine: boolean;
  /** The tuple store under the engine this filesystem created (the engine does not close a store it was given). */
  readonly #tupleStore: TupleStore | undefined;
  readonly #store: TieredStore;
  readonly #journal: Journal;
  readonly #trees: Map<string, TenantTree>;
  readonly #held: Map<string, number>;
  readonly #sync: boolean;
  readonly #maxVersions: number;
  readonly #maxFileBytes: number;
  readonly #checkpointEvery: number;
  readonly #clock: () => number;
  readonly #traverse: string;
  readonly #onStep: ((step: MutationStep, op: string) => void) | undefined;
  readonly #events: FsEventLog;
  readonly #closing = new AbortController();
  /** Following the tuple changelog (permission events). */
  #follower: Promise<void> = Promise.resolve();
  /** Revisions of tuple writes this filesystem made (the follower skips them: the operation's event says more). */
  readonly #ownRevisions: Set<number>;
  /** The own tuple write in flight: the follower waits for its revision before it judges a change. */
  #ownWriting: Promise<unknown> = Promise.resolve();
  /** Tuples the operation a crash cut may have changed, at revisions up to `below` (all its own). */
  readonly #recovered: { tuples: Set<string>; below: number };
  /** Changes already in the stream past the cursor (`revision:tuple`): a restart does not report them again. */
  readonly #reported: Set<string>;
  #cursorWaiters: { revision: number; resolve: () => void }[] = [];
  #following = true;
  #seq: number;
  #token: string | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #stagingDir: string;
  #hasher: Awaited<ReturnType<typeof createBLAKE3>> | undefined;

  /** Use openFileSystem(). */
  constructor(parts: {
    engine: Engine;
    ownsEngine: boolean;
    tupleStore: TupleStore | undefined;
    tuplesDurable: boolean;
    dir: string;
    store: TieredStore;
    journal: Journal;
    trees: Map<string, TenantTree>;
    held: Map<string, number>;
    seq: number;
    options: FileSystemOptions;
    recovery: RecoveryReport;
    events: FsEventLog;
    ownRevisions: Set<number>;
    recovered: { tuples: Set<string>; below: number };
    lostCursor: boolean;
  }) {
    this.engine = parts.engine;
    this.#ownsEngine = parts.ownsEngine;
    this.#tupleStore = parts.tupleStore;
    this.tuplesDurable = parts.tuplesDurable;
    this.dir = parts.dir;
    this.#store = parts.store;
    this.#journal = parts.journal;
    this.#trees = parts.trees;
    this.#held = parts.held;
    this.#seq = parts.seq;
    this.recovery = parts.recovery;
    const o = parts.options;
    this.#sync = o.fsync ?? true;
    this.#maxVersions = o.maxVersions ?? 10;
    this.#maxFileBytes = o.maxFileBytes ?? MAX_BLOB;
    this.#checkpointEvery = o.checkpointEvery ?? 10_000;
    this.#clock = o.clock ?? Date.now;
    this.#onStep = o.testing?.onStep;
    this.#traverse = parts.engine.program.types.get("file")?.relations.has("traverse") ? "traverse" : "read";
    this.#events = parts.events;
    this.#ownRevisions = parts.ownRevisions;
    this.#recovered = parts.recovered;
    this.#reported = new Set();
    for (const r of parts.events.loaded) {
      if (r.tr !== undefined && r.tr > parts.events.cursor && r.e.change !== undefined) {
        this.#reported.add(`${r.tr}:${tupleId({ ...r.e.change, tenant: r.e.tenant })}`);
      }
    }
    this.#stagingDir = join(parts.dir, "staging");
    this.#follower = this.#follow(parts.lostCursor)
      .catch(() => {})
      .finally(() => {
        this.#following = false;
        this.#wakeCursorWaiters(Number.POSITIVE_INFINITY);
      });
  }

  /**
   * The tiered store holding the contents (one reference per distinct content any version holds). Exposed for
   * tiering passes, scrubs and stats; putting or deleting through it directly breaks that count.
   */
  get contents(): TieredStore {
    return this.#store;
  }

  /** A handle whose operations act as `caller`. */
  as(caller: Caller): FsSession {
    return new FsSession(this, callerOf(caller));
  }

  /** Tenants with a tree here. */
  get tenants(): string[] {
    return [...this.#trees.keys()];
  }

  /**
   * Makes `owners` owners of a tenant's root directory (an administrator's act, not checked): nothing can be
   * created in a tenant before someone may write its root.
   */
  async initTenant(request: { tenant: string; owners: readonly string[] }): Promise<void> {
    const tenant = tenantOf(request.tenant);
    this.#tree(tenant, true);
    await this.#exclusive(async () => {
      const existing = await this.#tuplesOf(tenant, "/");
      const writes: TupleKey[] = request.owners
        .map((user) => ({ user, relation: "direct_owner", object: objectOf("/"), tenant }))
        .filter((t) => !existing.some((e) => sameTuple(e, t)));
      if (writes.length === 0) return;
      const token = await this.#tupleWrite({ writes, onDuplicate: "ignore" }, true);
      await this.#events.pushDurable(
        writes.map((t) => ({
          event: { kind: "permission", tenant, path: "/", change: changeOf("write", t) },
          source: { rev: revisionOf(token) },
        })),
      );
    });
  }

  // ---- reads ---------------------------------------------------------------------------------------------------

  async stat(caller: Caller, path: string, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    const stat = this.#tree(tenant).stat(p);
    // A directory a listing shows (it, or anything below it, is readable) can be stat-ed too.
    if (stat?.isDirectory && (await this.#mayTraverse(c, tenant, p))) return stat;
    await this.#require(c, "read", tenant, p);
    if (stat === undefined) throw notFound(tenant, p);
    return stat;
  }

  /** Whether the entry exists and the caller may read it (false for both "no" and "not there"). */
  async exists(caller: Caller, path: string, options: TargetOptions = {}): Promise<boolean> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    if (this.#tree(tenant).kindOf(p) === undefined) return false;
    return this.#allowed(c, "read", tenant, p);
  }

  /** The file's content (a given `version`, default the current one). */
  async read(
    caller: Caller,
    path: string,
    options: TargetOptions & { version?: number } = {},
  ): Promise<Uint8Array> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    await this.#require(c, "read", tenant, p);
    const hash = this.#contentHash(tenant, p, options.version);
    return this.#store.get(hash);
  }

  /** The file's stat and content, read together (the content is the one the stat names). */
  async readWithStat(
    caller: Caller,
    path: string,
    options: TargetOptions = {},
  ): Promise<{ stat: FileStat; bytes: Uint8Array }> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    await this.#require(c, "read", tenant, p);
    const stat = this.#tree(tenant).stat(p);
    if (stat === undefined) throw notFound(tenant, p);
    if (stat.isDirectory) throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
    return { stat, bytes: await this.#store.get(stat.hash!) };
  }

  /** The file's content as UTF-8 text. */
  async readText(caller: Caller, path: string, options: TargetOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(caller, path, options));
  }

  /** The file's versions, oldest first (at most maxVersions). */
  async versions(caller: Caller, path: string, options: TargetOptions = {}): Promise<Version[]> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    await this.#require(c, "read", tenant, p);
    const tree = this.#tree(tenant);
    const kind = tree.kindOf(p);
    if (kind === undefined) throw notFound(tenant, p);
    if (kind === "directory") throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
    return [...tree.versions(p)];
  }

  /** The entries of a directory the caller may see, sorted by name. */
  async list(caller: Caller, path: string, options: TargetOptions = {}): Promise<DirEntry[]> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    const tree = this.#tree(tenant);
    const kind = tree.kindOf(p);
    // Without traverse on the directory, it may still be listed when anything below it is readable; the
    // entries' own filter answers that (a directory shows when anything below it is readable), so no second
    // filter over everything below is needed.
    const traversable = await this.#allowed(c, this.#traverse, tenant, p);
    if (!traversable && kind !== "directory") throw denied(c, "list", tenant, p);
    if (kind === undefined) throw notFound(tenant, p);
    if (kind === "file") throw new NexusError("not_a_directory", `${p} is a file`, { path: p });
    const listing = tree.listing(p);
    const visible = await this.#visible(c, tenant, listing);
    if (!traversable && visible.length === 0) throw denied(c, "list", tenant, p);
    const out: DirEntry[] = [];
    for (const i of visible) {
      const entry = listing.entries[i]!;
      // A subdirectory's mtime moves with its own entries, which do not refresh this listing: read it now.
      out.push(entry.isDirectory ? { ...entry, mtime: tree.entry(entry.path)!.mtime } : entry);
    }
    return out;
  }

  /**
   * Paths matching `pattern` (absolute, or relative to `cwd`, default "/") that the caller may read, sorted.
   * The walk starts at the pattern's longest literal directory, which the caller must be able to traverse.
   */
  async glob(
    caller: Caller,
    pattern: string,
    options: TargetOptions & { cwd?: string } = {},
  ): Promise<string[]> {
    const c = callerOf(caller);
    const tenant = tenantOf(options.tenant ?? c.tenant);
    const cwd = normalizePath(options.cwd ?? "/");
    const absolute = pattern.startsWith("/") ? pattern : joinPath(cwd, pattern);
    const matcher = globMatcher(absolute);
    const parts = absolute.split("/");
    const literal: string[] = [];
    for (const part of parts.slice(1, -1)) {
      if (/[*?[]/.test(part)) break;
      literal.push(part);
    }
    const base = literal.length === 0 ? "/" : `/${literal.join("/")}`;
    const tree = this.#tree(tenant);
    if (!(await this.#mayTraverse(c, tenant, base))) throw denied(c, "glob", tenant, base);
    if (tree.kindOf(base) !== "directory") return [];
    const candidates = tree.descendants(base).filter((path) => matcher.test(path));
    return this.#readable(c, tenant, candidates);
  }

  // ---- writes --------------------------------------------------------------------------------------------------

  /** Writes a whole file (creating it, or adding a version). Returns its stat. */
  async write(caller: Caller, path: string, data: FileData, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    // A stream is staged (hashed, spilled to disk) before the write waits its turn; refuse early when it is bound to fail.
    if (!(await this.#mayWriteFile(c, tenant, p))) throw denied(c, "write", tenant, p);
    const staged = await this.#stage(data);
    try {
      return await this.#exclusive(() => this.#putContent(c, tenant, p, staged));
    } finally {
      if (staged.file !== undefined) await rm(staged.file, { force: true });
    }
  }

  /**
   * Refuses as write() would, without writing: `write` on the file, or on its directory (which must exist) to
   * create it. For a client that opens a file now and stores it later (the FUSE mount's create).
   */
  async assertWritable(caller: Caller, path: string, options: TargetOptions = {}): Promise<void> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    const tree = this.#tree(tenant);
    const kind = tree.kindOf(p);
    if (kind === "directory" || p === "/")
      throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
    if (kind === "file") return this.#require(c, "write", tenant, p);
    await this.#require(c, "write", tenant, parentOf(p)!);
    this.#assertDirectory(tree, tenant, parentOf(p)!);
  }

  /** Appends to a file (creating it when missing): a new version holding the old content then `data`. */
  async append(caller: Caller, path: string, data: FileData, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    if (!(await this.#mayWriteFile(c, tenant, p))) throw denied(c, "write", tenant, p);
    const extra = await this.#stage(data);
    try {
      return await this.#exclusive(async () => {
        const tree = this.#tree(tenant);
        const current =
          tree.kindOf(p) === "file" ? await this.#store.get(tree.stat(p)!.hash!) : new Uint8Array();
        const tail = extra.bytes ?? (await readAll(extra.file!));
        const joined = new Uint8Array(current.length + tail.length);
        joined.set(current, 0);
        joined.set(tail, current.length);
        return this.#putContent(c, tenant, p, await this.#stage(joined));
      });
    } finally {
      if (extra.file !== undefined) await rm(extra.file, { force: true });
    }
  }

  /** Creates a directory; with `recursive`, every missing level (each checked) and no error when it exists. */
  async mkdir(
    caller: Caller,
    path: string,
    options: TargetOptions & { recursive?: boolean } = {},
  ): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    return this.#exclusive(async () => {
      const tree = this.#tree(tenant, true);
      const levels = options.recursive ? ancestorsAndSelf(p) : [p];
      for (const level of levels) {
        const kind = tree.kindOf(level);
        if (kind === "directory" && (options.recursive || level !== p)) continue;
        const parent = parentOf(level)!;
        await this.#require(c, "write", tenant, parent);
        if (kind !== undefined) throw exists(tenant, level);
        this.#assertDirectory(tree, tenant, parent);
        await this.#create(
          c,
          tenant,
          { op: "mkdir", path: level, mtime: this.#clock(), creator: c.user },
          [],
        );
      }
      return tree.stat(p)!;
    });
  }

  /** Removes a file, or a directory (empty, or with `recursive` everything below it, each entry checked). */
  async remove(
    caller: Caller,
    path: string,
    options: TargetOptions & { recursive?: boolean } = {},
  ): Promise<void> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    await this.#exclusive(async () => {
      const tree = this.#tree(tenant);
      await this.#require(c, "write", tenant, p);
      const kind = tree.kindOf(p);
      if (kind === undefined) throw notFound(tenant, p);
      if (p === "/")
        throw new NexusError("invalid_argument", "the root directory cannot be removed", { path: p });
      const below = kind === "directory" ? tree.descendants(p) : [];
      if (below.length > 0) {
        if (!options.recursive) throw new NexusError("not_empty", `directory ${p} is not empty`, { path: p });
        const allowed = new Set(
          await this.engine.filter({
            ...this.#subject(c, tenant),
            relation: "write",
            objects: below.map(objectOf),
          }),
        );
        const refused = below.find((b) => !allowed.has(objectOf(b)));
        if (refused !== undefined) throw denied(c, "remove", tenant, refused);
      }
      // Children before parents.
      for (const entry of [...below.reverse(), p]) {
        const deleteAfter = await this.#tuplesOf(tenant, entry);
        await this.#run(tenant, { op: "remove", path: entry, mtime: this.#clock() }, { deleteAfter });
      }
    });
  }

  /** Moves a file or directory. Checks `write` on the source and on the destination's parent (and on a file it replaces). */
  async rename(caller: Caller, from: string, to: string, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p: src } = this.#target(c, from, options);
    const dst = normalizePath(to);
    return this.#exclusive(async () => {
      const tree = this.#tree(tenant);
      await this.#require(c, "write", tenant, src);
      const kind = tree.kindOf(src);
      if (kind === undefined) throw notFound(tenant, src);
      if (src === "/" || dst === "/") {
        throw new NexusError("invalid_argument", "the root directory cannot be moved or replaced", {
          from,
          to,
        });
      }
      const dstParent = parentOf(dst)!;
      await this.#require(c, "write", tenant, dstParent);
      this.#assertDirectory(tree, tenant, dstParent);
      if (src === dst) return tree.stat(src)!;
      if (kind === "directory" && isWithin(dst, src)) {
        throw new NexusError("invalid_argument", `cannot move ${src} into itself (${dst})`, {
          from: src,
          to: dst,
        });
      }
      const target = tree.kindOf(dst);
      if (target === "directory" || (target === "file" && kind === "directory")) throw exists(tenant, dst);
      if (target === "file") await this.#require(c, "write", tenant, dst);
      // Permissions follow the entry: every tuple on it and below it moves to the new paths, atomically.
      const moved = [src, ...(kind === "directory" ? tree.descendants(src) : [])];
      const deleted: TupleKey[] = [];
      const wrote: TupleKey[] = [];
      for (const old of moved) {
        for (const t of await this.#tuplesOf(tenant, old)) {
          deleted.push(t);
          const renamed = dst + old.slice(src.length);
          let user = t.user;
          if (t.relation === "parent") {
            const parentPath = pathOfObject(t.user);
            user = old === src ? objectOf(dstParent) : objectOf(dst + parentPath!.slice(src.length));
          }
          wrote.push({ ...t, object: objectOf(renamed), user });
        }
      }
      // A tuple already on the destination (a replaced file's, or granted ahead) stays: neither deleted nor
      // written, so a rollback does not remove it either.
      const atDestination = await this.#tuplesOf(tenant, dst);
      const stays = (t: TupleKey) => atDestination.some((e) => sameTuple(e, t));
      await this.#run(
        tenant,
        { op: "rename", from: src, to: dst, mtime: this.#clock() },
        {
          before: {
            wrote: wrote.filter((t) => !stays(t)),
            deleted: [
              ...deleted,
              ...(target === "file" ? atDestination.filter((t) => !wrote.some((w) => sameTuple(w, t))) : []),
            ],
          },
        },
      );
      return tree.stat(dst)!;
    });
  }

  // ---- permissions ---------------------------------------------------------------------------------------------

  /** Grants `grant` on `path` (the caller needs `execute`, i.e. ownership). Returns the engine's token. */
  async share(caller: Caller, path: string, grant: Grant, options: TargetOptions = {}): Promise<string> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    const tuple = this.#grantTuple(tenant, p, grant);
    return this.#exclusive(async () => {
      await this.#require(c, "execute", tenant, p);
      if (this.#tree(tenant).kindOf(p) === undefined) throw notFound(tenant, p);
      // Sharing what is already shared changes nothing (and makes no event).
      if ((await this.#tuplesOf(tenant, p)).some((t) => sameTuple(t, tuple)))
        return this.#token ?? (await this.engine.token());
      const token = await this.#tupleWrite({ writes: [tuple] }, true);
      await this.#events.pushDurable([
        {
          event: { kind: "permission", tenant, path: p, change: changeOf("write", tuple) },
          source: { rev: revisionOf(token) },
        },
      ]);
      return token;
    });
  }

  /** Revokes a grant made by share (the caller needs `execute`); not_found when there was none. */
  async unshare(caller: Caller, path: string, grant: Grant, options: TargetOptions = {}): Promise<string> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    const tuple = this.#grantTuple(tenant, p, grant);
    return this.#exclusive(async () => {
      await this.#require(c, "execute", tenant, p);
      const existing = await this.engine.read({
        tenant,
        object: tuple.object,
        relation: tuple.relation,
        user: tuple.user,
        consistency: this.#consistency(),
      });
      if (!existing.some((t) => (t.subjectTenant ?? t.tenant) === (tuple.subjectTenant ?? tenant))) {
        throw new NexusError("not_found", `no ${grant.relation} grant to ${grant.user} on ${p}`, {
          path: p,
          grant,
        });
      }
      const token = await this.#tupleWrite({ deletes: [tuple] }, true);
      await this.#events.pushDurable([
        {
          event: { kind: "permission", tenant, path: p, change: changeOf("delete", tuple) },
          source: { rev: revisionOf(token) },
        },
      ]);
      return token;
    });
  }

  // ---- change stream -------------------------------------------------------------------------------------------

  /**
   * File events after `after` (default: from now), in order; ends on close() or `signal`. With `caller`, only
   * what that caller may see (see #visibleTo), and `position` events where hidden ones were passed over.
   */
  watch(request: FsWatchRequest & { caller?: Caller } = {}): AsyncGenerator<FsEvent, void, undefined> {
    const c = request.caller === undefined ? undefined : callerOf(request.caller);
    return this.#events.watch(
      request,
      this.#closing.signal,
      c === undefined ? undefined : (event) => this.#visibleTo(c, event),
    );
  }

  /** A token for "now": events after it are the ones still to come. */
  get token(): string {
    return this.#events.token;
  }

  /** The same token, as a backend that has to ask for it (over HTTP) gives it. */
  async currentToken(): Promise<string> {
    return this.#events.token;
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------------

  stats(): {
    tenants: number;
    files: number;
    contents: number;
    journalRecords: number;
    store: TieredStats;
  } {
    let files = 0;
    for (const t of this.#trees.values()) files += t.fileCount;
    return {
      tenants: this.#trees.size,
      files,
      contents: this.#held.size,
      journalRecords: this.#journal.records,
      store: this.#store.stats(),
    };
  }

  /** Waits for running operations, checkpoints, and closes everything it opened. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    // Report every permission change made until now, so the cursor kept on disk is exact.
    await this.#caughtUp();
    this.#closing.abort();
    await this.#follower;
    try {
      if (this.#journal.records > 0) await this.#checkpoint();
    } finally {
      await this.#events.close();
      await this.#journal.close();
      await this.#store.close();
      if (this.#ownsEngine) await this.engine.close();
      await this.#tupleStore?.close();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals: checks -----------------------------------------------------------------------------------------

  /**
   * What of an event one caller may see, judged when it is delivered:
   * - created, written: the caller may read the path;
   * - removed: the caller may read its directory, or had a grant on the entry itself (`grantees`);
   * - renamed: the caller may read the new path, or the old path's directory;
   * - permission: the change names the caller, or the caller may read the path; a change whose subject is a
   *   group or a userset (it may reach the caller through a membership) or that has no path is passed on
   *   redacted, as "something changed" in that tenant (a client drops its caches), naming neither path nor
   *   subject, to callers of that tenant and to callers of other tenants who hold a grant there (no one else
   *   learns that the tenant changed).
   * Anything else is hidden. `grantees` never leaves here.
   */
  async #visibleTo(c: Required<Caller>, e: FsEvent): Promise<FsEvent | undefined> {
    if (this.#closed) return undefined;
    const may = async (path: string | undefined) =>
      path !== undefined && (await this.#allowed(c, "read", e.tenant, path).catch(() => false));
    switch (e.kind) {
      case "created":
      case "written":
        return (await may(e.path)) ? e : undefined;
      case "removed": {
        const { grantees, ...rest } = e;
        const named = grantees?.some(
          (g) => g === `${c.tenant}/${c.user}` || (g === c.user && c.tenant === e.tenant),
        );
        return named || (await may(parentOf(e.path!))) ? rest : undefined;
      }
      case "renamed":
        return (await may(e.path)) || (await may(parentOf(e.from!))) ? e : undefined;
      case "permission": {
        const change = e.change;
        if (
          change !== undefined &&
          change.user === c.user &&
          (change.subjectTenant ?? e.tenant) === c.tenant
        ) {
          return e;
        }
        if (await may(e.path)) return e;
        if (
          change === undefined ||
          e.path === undefined ||
          change.user.includes("#") ||
          change.user.startsWith("group:")
        ) {
          const redacted: FsEvent = { token: e.token, kind: "permission", tenant: e.tenant };
          return c.tenant === e.tenant || (await this.#holdsGrantIn(c, e.tenant)) ? redacted : undefined;
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /**
   * Whether a caller from another tenant is the subject of any tuple in `tenant` (a share, a group membership):
   * only then can a redacted change there reach it, and only then may it learn that the tenant changed.
   */
  async #holdsGrantIn(c: Required<Caller>, tenant: string): Promise<boolean> {
    const tuples = await this.engine
      .read({
        tenant,
        user: c.user,
        ...(this.#token !== undefined ? { consistency: this.#consistency() } : {}),
      })
      .catch(() => []);
    return tuples.some((t) => t.subjectTenant === c.tenant);
  }

  #subject(c: Required<Caller>, tenant: string) {
    return {
      user: c.user,
      tenant,
      ...(c.tenant !== tenant ? { subjectTenant: c.tenant } : {}),
      ...(this.#token !== undefined ? { consistency: { atLeastAsFresh: this.#token } } : {}),
    };
  }

  #consistency() {
    return this.#token !== undefined ? { atLeastAsFresh: this.#token } : undefined;
  }

  #allowed(c: Required<Caller>, relation: string, tenant: string, path: string): Promise<boolean> {
    return this.engine.check({ ...this.#subject(c, tenant), relation, object: objectOf(path) });
  }

  /**
   * Refuses unless allowed. A missing entry has no tuples, so it is refused too; it is reported not_found only
   * to a caller who may read the nearest directory that exists (its absence is no secret from them).
   */
  async #require(c: Required<Caller>, relation: string, tenant: string, path: string): Promise<void> {
    if (await this.#allowed(c, relation, tenant, path)) return;
    const tree = this.#tree(tenant);
    if (tree.kindOf(path) === undefined) {
      let dir = parentOf(path);
      while (dir !== undefined && tree.kindOf(dir) === undefined) dir = parentOf(dir);
      if (
        dir !== undefined &&
        tree.kindOf(dir) === "directory" &&
        (await this.#allowed(c, "read", tenant, dir))
      ) {
        throw notFound(tenant, path);
      }
    }
    throw denied(c, relation, tenant, path);
  }

  /** `write` on the file when it exists, else on its parent (what creating it needs). */
  async #mayWriteFile(c: Required<Caller>, tenant: string, p: string): Promise<boolean> {
    const kind = this.#tree(tenant).kindOf(p);
    if (kind === "directory") throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
    if (p === "/") throw new NexusError("is_a_directory", "/ is a directory", { path: p });
    return this.#allowed(c, "write", tenant, kind === "file" ? p : parentOf(p)!);
  }

  /** `traverse` on the directory, or anything readable below it (Nexus shows such a directory too). */
  async #mayTraverse(c: Required<Caller>, tenant: string, dir: string): Promise<boolean> {
    if (await this.#allowed(c, this.#traverse, tenant, dir)) return true;
    return this.#readableBelow(c, tenant, dir);
  }

  async #readableBelow(c: Required<Caller>, tenant: string, dir: string): Promise<boolean> {
    const below = this.#tree(tenant).descendants(dir);
    if (below.length === 0) return false;
    const allowed = await this.engine.filter({
      ...this.#subject(c, tenant),
      relation: "read",
      objects: below.map(objectOf),
    });
    return allowed.length > 0;
  }

  /** The paths the caller may read, in input order. */
  async #readable(c: Required<Caller>, tenant: string, paths: readonly string[]): Promise<string[]> {
    if (paths.length === 0) return [];
    const allowed = await this.engine.filter({
      ...this.#subject(c, tenant),
      relation: "read",
      objects: paths.map(objectOf),
    });
    return allowed.map((o) => pathOfObject(o)!);
  }

  /**
   * Which entries of one directory the caller may see (their indexes, in order): readable ones, and
   * directories with anything readable below. One filter over the entries (the listing's objects, the same
   * strings each time, so the engine's lookups hit), then at most one more over everything below the
   * subdirectories the first did not let through.
   */
  async #visible(
    c: Required<Caller>,
    tenant: string,
    listing: {
      readonly paths: readonly string[];
      readonly objects: readonly string[];
      readonly entries: readonly DirEntry[];
    },
  ): Promise<number[]> {
    const { paths, objects, entries } = listing;
    if (paths.length === 0) return [];
    const subject = this.#subject(c, tenant);
    const allowed = await this.engine.filter({ ...subject, relation: "read", objects });
    const visible = new Uint8Array(paths.length);
    const closedDirs: number[] = [];
    // filter answers in input order: walk both lists together.
    let next = 0;
    for (let i = 0; i < paths.length; i++) {
      if (allowed[next] === objects[i]) {
        next++;
        visible[i] = 1;
      } else if (entries[i]!.isDirectory) {
        closedDirs.push(i);
      }
    }
    if (closedDirs.length > 0) {
      const tree = this.#tree(tenant);
      const below: string[] = [];
      const owner: number[] = [];
      for (const i of closedDirs) {
        for (const d of tree.descendants(paths[i]!)) {
          below.push(objectOf(d));
          owner.push(i);
        }
      }
      if (below.length > 0) {
        const readable = await this.engine.filter({ ...subject, relation: "read", objects: below });
        let k = 0;
        for (let j = 0; j < below.length && k < readable.length; j++) {
          if (readable[k] === below[j]) {
            k++;
            visible[owner[j]!] = 1;
          }
        }
      }
    }
    const out: number[] = [];
    for (let i = 0; i < visible.length; i++) if (visible[i] === 1) out.push(i);
    return out;
  }

  // ---- internals: mutations ------------------------------------------------------------------------------------

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new NexusError("closed", "the filesystem is closed"));
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #putContent(c: Required<Caller>, tenant: string, p: string, staged: Staged): Promise<FileStat> {
    if (staged.size > this.#maxFileBytes) {
      throw new NexusError("invalid_argument", `${p}: a file is at most ${this.#maxFileBytes} bytes`, {
        path: p,
        limit: this.#maxFileBytes,
      });
    }
    const tree = this.#tree(tenant, true);
    const kind = tree.kindOf(p);
    if (kind === "directory") throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
    if (kind === "file") await this.#require(c, "write", tenant, p);
    else {
      await this.#require(c, "write", tenant, parentOf(p)!);
      this.#assertDirectory(tree, tenant, parentOf(p)!);
    }
    const commit: CommitOp = {
      op: "put",
      path: p,
      hash: staged.hash,
      size: staged.size,
      mtime: this.#clock(),
      creator: c.user,
      created: kind === undefined,
    };
    if (kind === undefined) await this.#create(c, tenant, commit, [staged]);
    else await this.#run(tenant, commit, { staged });
    return tree.stat(p)!;
  }

  /** A new entry: its creator becomes its owner, and a parent tuple links it to its directory. */
  async #create(c: Required<Caller>, tenant: string, commit: CommitOp & { path: string }, staged: Staged[]) {
    const object = objectOf(commit.path);
    const owner: TupleKey =
      c.tenant === tenant
        ? { user: c.user, relation: "direct_owner", object, tenant }
        : { user: c.user, relation: "shared-owner", object, tenant, subjectTenant: c.tenant };
    const parent: TupleKey = { user: objectOf(parentOf(commit.path)!), relation: "parent", object, tenant };
    const existing = await this.#tuplesOf(tenant, commit.path);
    const wrote = [owner, parent].filter((t) => !existing.some((e) => sameTuple(e, t)));
    await this.#run(tenant, commit, { staged: staged[0], before: { wrote, deleted: [] } });
  }

  /**
   * One journaled mutation: begin (when it has effects outside the journal), bytes, tuples, commit, apply, the
   * effects after the commit, end.
   */
  async #run(
    tenant: string,
    commit: CommitOp,
    effects: {
      staged?: Staged | undefined;
      before?: { wrote: TupleKey[]; deleted: TupleKey[] };
      deleteAfter?: TupleKey[];
    },
  ): Promise<void> {
    const seq = ++this.#seq;
    const wrote = effects.before?.wrote ?? [];
    const deleted = effects.before?.deleted ?? [];
    const staged = effects.staged;
    const storing = staged !== undefined && !this.#held.has(staged.hash);
    if (storing || wrote.length > 0 || deleted.length > 0) {
      const begin: BeginRecord = {
        t: "begin",
        seq,
        tenant,
        keys: storing ? [staged.hash] : [],
        wrote,
        deleted,
      };
      await this.#journal.append(begin, this.#sync);
      this.#onStep?.("begun", commit.op);
    }
    if (storing) {
      const put =
        staged.bytes !== undefined
          ? await this.#store.put(staged.bytes)
          : await this.#store.putStream(createReadStream(staged.file!) as AsyncIterable<Uint8Array>);
      if (put.key !== staged.hash) {
        throw new NexusError(
          "internal",
          `the store keyed ${commit.op} content ${put.key}, expected ${staged.hash}`,
        );
      }
      this.#onStep?.("stored", commit.op);
    }
    let rev: number | undefined;
    if (wrote.length > 0 || deleted.length > 0) {
      rev = revisionOf(
        await this.#tupleWrite(
          { writes: wrote, deletes: deleted, onDuplicate: "ignore", onMissing: "ignore" },
          true,
        ),
      );
      this.#onStep?.("tuples", commit.op);
    }
    // The event's position is reserved now and written in the commit: a crash after the commit brings the event
    // back under the same position at open.
    const p = this.#events.reserve();
    const record: CommitRecord = {
      ...commit,
      t: "commit",
      seq,
      tenant,
      deleteAfter: effects.deleteAfter ?? [],
      p,
      ...(rev !== undefined ? { rev } : {}),
    };
    try {
      await this.#journal.append(record, this.#sync);
    } catch (e) {
      this.#events.skip(p);
      throw e;
    }
    const released = this.#apply(record);
    this.#events.push(eventOf(record), { seq, ...(rev !== undefined ? { rev } : {}) }, p);
    this.#onStep?.("committed", commit.op);
    let revAfter: number | undefined;
    if (record.deleteAfter.length > 0) {
      revAfter = revisionOf(
        await this.#tupleWrite({ deletes: record.deleteAfter, onMissing: "ignore" }, true),
      );
    }
    await this.#release(released);
    this.#onStep?.("after", commit.op);
    // Only effects after the commit need an end mark; a commit without one is rolled forward, which for an
    // operation with none changes nothing.
    if (record.deleteAfter.length > 0 || released.length > 0) {
      const end: EndRecord = { t: "end", seq, ...(revAfter !== undefined ? { rev: revAfter } : {}) };
      await this.#journal.append(end, false);
    }
    if (this.#journal.records >= this.#checkpointEvery) await this.#checkpoint();
  }

  /** Applies a committed record to its tree and the held counts; returns the hashes no longer held by it. */
  #apply(record: CommitRecord): string[] {
    return applyCommit(this.#tree(record.tenant, true), record, this.#held, this.#maxVersions);
  }

  async #release(hashes: readonly string[]): Promise<void> {
    for (const hash of new Set(hashes)) {
      if (!this.#held.has(hash)) await this.#store.delete(hash);
    }
  }

  async #tupleWrite(
    request: {
      writes?: TupleKey[];
      deletes?: TupleKey[];
      onDuplicate?: "ignore";
      onMissing?: "ignore";
    },
    own = false,
  ): Promise<string> {
    const writing = this.engine.write({
      ...(request.writes?.length ? { writes: request.writes } : {}),
      ...(request.deletes?.length ? { deletes: request.deletes.map(identityOf) } : {}),
      ...(request.onDuplicate ? { onDuplicate: request.onDuplicate } : {}),
      ...(request.onMissing ? { onMissing: request.onMissing } : {}),
    });
    if (own) {
      // The follower may read this write's changes before the await below returns: it waits for this first.
      this.#ownWriting = writing.then(
        ({ token }) => this.#ownRevisions.add(revisionOf(token)),
        () => {},
      );
    }
    const { token } = await writing;
    if (own) await this.#ownWriting;
    this.#token = token;
    return token;
  }

  /** Every tuple whose object is the path. */
  async #tuplesOf(tenant: string, path: string): Promise<TupleKey[]> {
    const consistency = this.#consistency();
    return this.engine.read({ tenant, object: objectOf(path), ...(consistency ? { consistency } : {}) });
  }

  #grantTuple(tenant: string, path: string, grant: Grant): TupleKey {
    if (grant === null || typeof grant !== "object") {
      throw new NexusError(
        "invalid_argument",
        `a grant is { user, relation, tenant? }, got ${describe(grant)}`,
      );
    }
    if (!["viewer", "editor", "owner"].includes(grant.relation)) {
      throw new NexusError(
        "invalid_argument",
        `a grant's relation is viewer, editor or owner, got ${describe(grant.relation)}`,
      );
    }
    const subjectTenant = tenantOf(grant.tenant ?? tenant);
    const object = objectOf(path);
    if (subjectTenant === tenant)
      return { user: grant.user, relation: `direct_${grant.relation}`, object, tenant };
    return { user: grant.user, relation: `shared-${grant.relation}`, object, tenant, subjectTenant };
  }

  // ---- internals: trees, staging, checkpoints -----------------------------------------------------------------

  #target(c: Required<Caller>, path: string, options: TargetOptions): { tenant: string; p: string } {
    if (this.#closed) throw new NexusError("closed", "the filesystem is closed");
    return { tenant: tenantOf(options.tenant ?? c.tenant), p: normalizePath(path) };
  }

  #tree(tenant: string, create = false): TenantTree {
    let tree = this.#trees.get(tenant);
    if (tree === undefined) {
      tree = new TenantTree(tenant);
      if (!create) return tree; // an empty tree, not kept until something is written
      this.#trees.set(tenant, tree);
    }
    return tree;
  }

  #assertDirectory(tree: TenantTree, tenant: string, dir: string): void {
    const kind = tree.kindOf(dir);
    if (kind === undefined) throw notFound(tenant, dir);
    if (kind === "file") throw new NexusError("not_a_directory", `${dir} is a file`, { path: dir });
  }

  #contentHash(tenant: string, p: string, version: number | undefined): string {
    const tree = this.#tree(tenant);
    const stat = tree.stat(p);
    if (stat === undefined) throw notFound(tenant, p);
    if (stat.isDirectory) throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
    if (version === undefined) return stat.hash!;
    const found = tree.versions(p).find((v) => v.version === version);
    if (found === undefined) {
      throw new NexusError(
        "not_found",
        `${p} has no version ${version} (kept: the last ${this.#maxVersions})`,
        {
          path: p,
          version,
        },
      );
    }
    return found.hash;
  }

  async #stage(data: FileData): Promise<Staged> {
    if (typeof data === "string") data = new TextEncoder().encode(data);
    if (data instanceof Uint8Array) {
      // One hasher serves every in-memory content (hashing it is synchronous); streams get their own.
      this.#hasher ??= await createBLAKE3(256);
      const hasher = this.#hasher;
      if (data.length > this.#maxFileBytes) {
        throw new NexusError("invalid_argument", `a file is at most ${this.#maxFileBytes} bytes`, {
          limit: this.#maxFileBytes,
        });
      }
      return { hash: hasher.init().update(data).digest("hex"), size: data.length, bytes: data };
    }
    const hasher = await createBLAKE3(256);
    const chunks = toAsyncIterable(data);
    await mkdir(this.#stagingDir, { recursive: true });
    const file = join(
      this.#stagingDir,
      `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    );
    const fh = await open(file, "w");
    let size = 0;
    try {
      hasher.init();
      for await (const chunk of chunks) {
        if (!(chunk instanceof Uint8Array)) {
          throw new NexusError("invalid_argument", "every chunk of a stream is a Uint8Array", {
            chunk: typeof chunk,
          });
        }
        size += chunk.length;
        if (size > this.#maxFileBytes) {
          throw new NexusError("invalid_argument", `a file is at most ${this.#maxFileBytes} bytes`, {
            limit: this.#maxFileBytes,
          });
        }
        hasher.update(chunk);
        await fh.write(chunk);
      }
    } catch (e) {
      await fh.close();
      await rm(file, { force: true });
      throw e;
    }
    await fh.close();
    return { hash: hasher.digest("hex"), size, file };
  }

  async #checkpoint(): Promise<void> {
    // The journal's commits leave with this checkpoint: their events (and the cursor past their own tuple
    // changes) must be on disk first.
    await this.#caughtUp();
    await this.#events.flush(true);
    const names = [...this.#trees.keys()];
    const tenants = names.map((name, i) => ({ name, table: "", tree: this.#trees.get(name)!.snapshot(), i }));
    await this.#journal.checkpoint(
      {
        seq: this.#seq,
        tenants: tenants.map(({ name, tree }, i) => ({
          name,
          table: `meta-${this.#journal.generation + 1}-${i}.nxm`,
          tree,
        })),
      } satisfies Checkpoint,
      async (generation) => {
        for (const [i, name] of names.entries()) {
          await this.#trees.get(name)!.table.save(join(this.#journal.dir, `meta-${generation}-${i}.nxm`));
        }
      },
    );
  }

  /**
   * Follows the tuple changelog from the stream's cursor: every change this filesystem did not make is a
   * permission event (of a tenant with a tree). Own changes are known by revision (kept in memory, in the
   * stream's records and in the journal, so a restart knows them too); the operation a crash cut is known by its
   * tuples. A changelog that no longer reaches back to the cursor (or another tuple store) gives one event
   * without a path per tenant: anything may have changed.
   */
  async #follow(lost: boolean): Promise<void> {
    const store = this.engine.store;
    const signal = this.#closing.signal;
    if (lost) await this.#lostChanges();
    let cursor = this.#events.cursor;
    while (!signal.aborted && !store.closed) {
      let changes: Awaited<ReturnType<typeof store.changesAfter>>;
      // Read "now" first: when nothing follows the cursor, nothing up to now does either.
      const now = await store.currentRevision();
      try {
        changes = await store.changesAfter(cursor, 512);
      } catch (e) {
        if (!isNexusError(e, "invalid_token")) throw e;
        cursor = now;
        await this.#lostChanges(cursor);
        continue;
      }
      if (changes.length === 0) {
        if (now > cursor) {
          cursor = now;
          this.#events.setCursor(cursor);
        }
        this.#wakeCursorWaiters(cursor);
        await store.waitForRevision(cursor, signal).catch(() => {});
        continue;
      }
      await this.#ownWriting;
      const items: { event: NewFsEvent; source: EventSource }[] = [];
      for (const change of changes) {
        if (this.#ownRevisions.has(change.revision)) continue;
        const t = change.tuple;
        const key = identityKey(t);
        if (change.revision <= this.#recovered.below && this.#recovered.tuples.has(key)) continue;
        if (this.#reported.delete(`${change.revision}:${key}`)) continue;
        if (!this.#trees.has(t.tenant)) continue;
        const path = pathOfObject(t.object);
        items.push({
          event: {
            kind: "permission",
            tenant: t.tenant,
            ...(path !== undefined ? { path } : {}),
            change: changeOf(change.op, {
              user: t.user,
              relation: t.relation,
              object: t.object,
              tenant: t.tenant,
              ...(t.subjectTenant !== t.tenant ? { subjectTenant: t.subjectTenant } : {}),
            }),
          },
          source: { tr: change.revision },
        });
      }
      cursor = changes[changes.length - 1]!.revision;
      for (const r of this.#ownRevisions) if (r <= cursor) this.#ownRevisions.delete(r);
      if (items.length > 0) await this.#events.pushDurable(items, cursor);
      else this.#events.setCursor(cursor);
      this.#wakeCursorWaiters(cursor);
    }
  }

  /** One permission event without a path per tenant: the stream could not follow some tuple changes. */
  async #lostChanges(cursor?: number): Promise<void> {
    const items = [...this.#trees.keys()].map((tenant) => ({
      event: { kind: "permission", tenant } as NewFsEvent,
      source: {},
    }));
    if (items.length > 0) await this.#events.pushDurable(items, cursor);
  }

  /** Resolves once the follower has judged every tuple change committed so far (at once when it has stopped). */
  async #caughtUp(): Promise<void> {
    if (this.#closing.signal.aborted || !this.#following) return;
    const target = await this.engine.store.currentRevision().catch(() => 0);
    if (this.#events.cursor >= target) return;
    await new Promise<void>((resolve) => this.#cursorWaiters.push({ revision: target, resolve }));
  }

  #wakeCursorWaiters(cursor: number): void {
    this.#cursorWaiters = this.#cursorWaiters.filter((w) => {
      if (w.revision > cursor) return true;
      w.resolve();
      return false;
    });
  }
}

/** Operations bound to one caller (see FileSystem for what each checks). */
export class FsSession {
  readonly fs: FileSystem;
  readonly caller: Required<Caller>;
  constructor(fs: FileSystem, caller: Required<Caller>) {
    this.fs = fs;
    this.caller = caller;
  }
  stat(path: string, o?: TargetOptions) {
    return this.fs.stat(this.caller, path, o);
  }
  exists(path: string, o?: TargetOptions) {
    return this.fs.exists(this.caller, path, o);
  }
  read(path: string, o?: TargetOptions & { version?: number }) {
    return this.fs.read(this.caller, path, o);
  }
  readText(path: string, o?: TargetOptions) {
    return this.fs.readText(this.caller, path, o);
  }
  versions(path: string, o?: TargetOptions) {
    return this.fs.versions(this.caller, path, o);
  }
  list(path: string, o?: TargetOptions) {
    return this.fs.list(this.caller, path, o);
  }
  glob(pattern: string, o?: TargetOptions & { cwd?: string }) {
    return this.fs.glob(this.caller, pattern, o);
  }
  write(path: string, data: FileData, o?: TargetOptions) {
    return this.fs.write(this.caller, path, data, o);
  }
  append(path: string, data: FileData, o?: TargetOptions) {
    return this.fs.append(this.caller, path, data, o);
  }
  mkdir(path: string, o?: TargetOptions & { recursive?: boolean }) {
    return this.fs.mkdir(this.caller, path, o);
  }
  remove(path: string, o?: TargetOptions & { recursive?: boolean }) {
    return this.fs.remove(this.caller, path, o);
  }
  rename(from: string, to: string, o?: TargetOptions) {
    return this.fs.rename(this.caller, from, to, o);
  }
  share(path: string, grant: Grant, o?: TargetOptions) {
    return this.fs.share(this.caller, path, grant, o);
  }
  unshare(path: string, grant: Grant, o?: TargetOptions) {
    return this.fs.unshare(this.caller, path, grant, o);
  }
}

/**
 * Opens (creating) the filesystem in `dir`: loads the last checkpoint, replays the journal after it, and
 * finishes the operation a crash may have cut (see the module comment).
 */
export async function openFileSystem(options: FileSystemOptions): Promise<FileSystem> {
  if (
    options === null ||
    typeof options !== "object" ||
    typeof options.dir !== "string" ||
    options.dir === ""
  ) {
    throw new NexusError("invalid_argument", "openFileSystem needs { dir }");
  }
  for (const [name, value, min] of [
    ["maxVersions", options.maxVersions, 1],
    ["maxFileBytes", options.maxFileBytes, 0],
    ["checkpointEvery", options.checkpointEvery, 1],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) {
      throw new NexusError("invalid_argument", `${name} must be an integer ≥ ${min}, got ${describe(value)}`);
    }
  }
  if ((options.maxFileBytes ?? 0) > MAX_BLOB) {
    throw new NexusError("invalid_argument", `maxFileBytes is at most ${MAX_BLOB}`, { limit: MAX_BLOB });
  }
  const dir = options.dir;
  await mkdir(dir, { recursive: true });
  let engine = options.engine;
  let tuplesDurable = false;
  let tupleStore: TupleStore | undefined;
  const ownsEngine = engine === undefined;
  if (engine === undefined) {
    const tuples = await openTupleStoreIn(join(dir, "tuples"), options.fsync ?? true);
    tuplesDurable = tuples.durable;
    tupleStore = tuples.store;
    try {
      engine = await createEngine({ model: nexusFilesystemModel, store: tuples.store });
    } catch (e) {
      await tuples.store.close();
      throw e;
    }
  }
  let store: TieredStore | undefined;
  let journal: Journal | undefined;
  let events: FsEventLog | undefined;
  try {
    events = await FsEventLog.open(join(dir, "events"), {
      fsync: options.fsync ?? true,
      ...(options.eventRetention !== undefined ? { retention: options.eventRetention } : {}),
    });
    store = await openContents(dir, options);
    const opened = await Journal.open<Checkpoint>(join(dir, "meta"));
    journal = opened.journal;
    const trees = new Map<string, TenantTree>();
    let seq = 0;
    if (opened.snapshot !== undefined) {
      seq = opened.snapshot.seq;
      for (const t of opened.snapshot.tenants) {
        const table = await MetadataTable.load(join(dir, "meta", t.table));
        trees.set(t.name, TenantTree.restore(t.name, t.tree, table));
      }
    }
    const held = new Map<string, number>();
    for (const tree of trees.values()) for (const h of tree.heldHashes()) held.set(h, (held.get(h) ?? 0) + 1);
    const maxVersions = options.maxVersions ?? 10;
    // Replay: apply every commit; remember the last operation that did not end.
    let open: { begin?: BeginRecord; commit?: CommitRecord } | undefined;
    let openSeq = -1;
    for (const r of opened.records as JournalRecord[]) {
      seq = Math.max(seq, r.seq);
      if (r.t === "begin") {
        open = { begin: r };
        openSeq = r.seq;
      } else if (r.t === "commit") {
        const tree = trees.get(r.tenant) ?? new TenantTree(r.tenant);
        trees.set(r.tenant, tree);
        applyCommit(tree, r, held, maxVersions);
        open = openSeq === r.seq ? { ...open, commit: r } : { commit: r };
        openSeq = r.seq;
      } else if (r.t === "end" && r.seq === openSeq) {
        open = undefined;
      }
    }
    // The change stream: the tuple revisions that were this filesystem's own writes (the journal and the
    // stream's records name them), and every commit whose event a crash kept out of the stream.
    const ownRevisions = new Set<number>();
    for (const r of events.loaded) if (r.rev !== undefined) ownRevisions.add(r.rev);
    for (const r of opened.records as JournalRecord[]) {
      if ((r.t === "commit" || r.t === "end") && r.rev !== undefined) ownRevisions.add(r.rev);
    }
    const lostCursor = events.cursorStore !== undefined && events.cursorStore !== engine.store.id;
    if (events.cursorStore !== engine.store.id) {
      // A new stream starts at the tuple store's present; another tuple store's revisions mean nothing here.
      events.resetCursor(await engine.store.currentRevision(), engine.store.id);
    }
    const recovered = { tuples: new Set<string>(), below: await engine.store.currentRevision() };
    for (const r of opened.records as JournalRecord[]) {
      if (r.t === "commit" && !events.reported(r.seq)) {
        const source = { seq: r.seq, ...(r.rev !== undefined ? { rev: r.rev } : {}) };
        if (r.p !== undefined) events.restore(r.p, eventOf(r), source);
        else events.push(eventOf(r), source);
      }
    }
    events.sealHoles();
    let rolledBack = false;
    let rolledForward = false;
    let releasedKeys = 0;
    if (open !== undefined) {
      const keys = new Set(open.begin?.keys ?? []);
      // Whatever tuple changes the cut operation made are its own, not permission events.
      for (const t of [
        ...(open.begin?.wrote ?? []),
        ...(open.begin?.deleted ?? []),
        ...(open.commit?.deleteAfter ?? []),
      ]) {
        recovered.tuples.add(tupleId(t));
      }
      if (open.commit === undefined && open.begin !== undefined) {
        // Cut before its commit: undo the tuple changes it may have made.
        rolledBack = true;
        const { wrote, deleted } = open.begin;
        if (wrote.length > 0 || deleted.length > 0) {
          const { token } = await engine.write({
            ...(deleted.length ? { writes: deleted } : {}),
            ...(wrote.length ? { deletes: wrote.map(identityOf) } : {}),
            onDuplicate: "ignore",
            onMissing: "ignore",
          });
          ownRevisions.add(revisionOf(token));
        }
      } else if (open.commit !== undefined) {
        // Cut after its commit: finish what comes after it.
        rolledForward = true;
        if (open.commit.deleteAfter.length > 0) {
          const { token } = await engine.write({
            deletes: open.commit.deleteAfter.map(identityOf),
            onMissing: "ignore",
          });
          ownRevisions.add(revisionOf(token));
        }
        if (open.commit.op === "put") keys.add(open.commit.hash);
      }
      for (const key of keys) {
        // At most one store reference per content is the filesystem's; none is owed when no record holds it.
        for (let i = 0; i < 2 && !held.has(key) && (await store.has(key)); i++) {
          await store.delete(key);
          releasedKeys++;
        }
      }
      await journal.append({ t: "end", seq: openSeq } satisfies EndRecord, true);
    }
    // Removes and version drops release contents after the commit; a crash between leaves them stored. Their
    // hashes are in the replayed commits: drop any no record holds.
    for (const r of opened.records as JournalRecord[]) {
      if (r.t !== "commit") continue;
      if (r.op === "put" && !held.has(r.hash) && (await store.has(r.hash))) {
        await store.delete(r.hash);
        releasedKeys++;
      }
    }
    await rm(join(dir, "staging"), { recursive: true, force: true });
    const interval = options.tiers?.intervalMs ?? 60_000;
    if (interval !== false) store.startTiering({ intervalMs: interval, runAtStart: false });
    return new FileSystem({
      engine,
      ownsEngine,
      tupleStore,
      tuplesDurable,
      dir,
      store,
      journal,
      trees,
      held,
      seq,
      options,
      recovery: { replayed: opened.records.length, rolledBack, rolledForward, releasedKeys },
      events,
      ownRevisions,
      recovered,
      lostCursor,
    });
  } catch (e) {
    await events?.close();
    await journal?.close();
    await store?.close();
    if (ownsEngine) await engine.close();
    await tupleStore?.close();
    throw e;
  }
}

/** The tiered store of a filesystem's contents (see FileSystemOptions.tiers). */
async function openContents(dir: string, options: FileSystemOptions): Promise<TieredStore> {
  const tiers = options.tiers ?? {};
  const fsync = options.fsync ?? true;
  const interval = tiers.intervalMs;
  if (interval !== undefined && interval !== false && !(Number.isFinite(interval) && interval >= 0)) {
    throw new NexusError(
      "invalid_argument",
      `tiers.intervalMs must be a number ≥ 0 or false, got ${describe(interval)}`,
    );
  }
  const hot = await openStore({ dir: join(dir, "blobs"), fsync: fsync ? "batch" : "never" });
  const cold = tiers.cold ?? new FsBlobStore({ dir: join(dir, "cold"), fsync });
  try {
    return await openTieredStore({
      dir: join(dir, "tiers"),
      hot,
      cold,
      warm: {
        dirs: [
          ...(tiers.warmDirs ??
            Array.from({ length: 14 }, (_, i) => join(dir, "warm", String(i).padStart(2, "0")))),
        ],
      },
      ...(tiers.policy !== undefined ? { policy: tiers.policy } : {}),
      fsync,
    });
  } catch (e) {
    await hot.close();
    await cold.close?.();
    throw e;
  }
}

/** Applies a committed record to a tree, keeping the held counts; returns the hashes the tree let go of. */
function applyCommit(
  tree: TenantTree,
  r: CommitRecord,
  held: Map<string, number>,
  maxVersions: number,
): string[] {
  let released: string[] = [];
  switch (r.op) {
    case "put":
      released = tree.putFile(r.path, r, maxVersions);
      held.set(r.hash, (held.get(r.hash) ?? 0) + 1);
      break;
    case "mkdir":
      tree.mkdir(r.path, r.mtime, r.creator);
      break;
    case "remove":
      released = tree.remove(r.path, r.mtime);
      break;
    case "rename":
      released = tree.rename(r.from, r.to, r.mtime);
      break;
  }
  for (const h of released) {
    const n = (held.get(h) ?? 0) - 1;
    if (n > 0) held.set(h, n);
    else held.delete(h);
  }
  return released;
}

function callerOf(caller: Caller): Required<Caller> {
  if (
    caller === null ||
    typeof caller !== "object" ||
    typeof caller.user !== "string" ||
    !caller.user.includes(":")
  ) {
    throw new NexusError(
      "invalid_argument",
      `a caller is { user: "type:id", tenant? }, got ${describe(caller)}`,
    );
  }
  return { user: caller.user, tenant: tenantOf(caller.tenant ?? "default") };
}

function tenantOf(tenant: unknown): string {
  if (typeof tenant !== "string" || tenant === "" || tenant.includes("\u0000")) {
    throw new NexusError("invalid_argument", `a tenant is a non-empty string, got ${describe(tenant)}`);
  }
  return tenant;
}

function denied(c: Required<Caller>, what: string, tenant: string, path: string): NexusError {
  return new NexusError(
    "permission_denied",
    `${c.user} (tenant ${c.tenant}) may not ${what} ${path} in tenant ${tenant}`,
    { user: c.user, subjectTenant: c.tenant, tenant, path, permission: what },
  );
}

function exists(tenant: string, path: string): NexusError {
  return new NexusError("already_exists", `${path} already exists in tenant ${tenant}`, { tenant, path });
}

/** "/a/b/c" → ["/a", "/a/b", "/a/b/c"]. */
function ancestorsAndSelf(path: string): string[] {
  const out: string[] = [];
  for (let p: string | undefined = path; p !== undefined && p !== "/"; p = parentOf(p)) out.unshift(p);
  return out;
}

/** The event a committed operation makes. */
function eventOf(record: CommitRecord): NewFsEvent {
  const tenant = record.tenant;
  switch (record.op) {
    case "put":
      return {
        kind: record.created ? "created" : "written",
        tenant,
        path: record.path,
        isDirectory: false,
        hash: record.hash,
      };
    case "mkdir":
      return { kind: "created", tenant, path: record.path, isDirectory: true };
    case "remove": {
      // Who read the entry through a grant on it: told of its removal though they may read nothing else there.
      const grantees = [
        ...new Set(
          record.deleteAfter
            .filter((t) => t.relation !== "parent")
            .map((t) => (t.subjectTenant !== undefined ? `${t.subjectTenant}/${t.user}` : t.user)),
        ),
      ];
      return { kind: "removed", tenant, path: record.path, ...(grantees.length > 0 ? { grantees } : {}) };
    }
    case "rename":
      return { kind: "renamed", tenant, path: record.to, from: record.from };
  }
}

/** The public form of a tuple change in an event. */
function changeOf(op: "write" | "delete", t: TupleKey): NonNullable<FsEvent["change"]> {
  return {
    op,
    user: t.user,
    relation: t.relation,
    object: t.object,
    ...(t.subjectTenant !== undefined && t.subjectTenant !== t.tenant
      ? { subjectTenant: t.subjectTenant }
      : {}),
  };
}

/** The tuple store revision a write's token names. */
function revisionOf(token: string): number {
  return decodeToken(token).revision;
}

function identityOf(t: TupleKey) {
  return {
    user: t.user,
    relation: t.relation,
    object: t.object,
    ...(t.tenant !== undefined ? { tenant: t.tenant } : {}),
    ...(t.subjectTenant !== undefined ? { subjectTenant: t.subjectTenant } : {}),
  };
}

function tupleId(t: TupleKey): string {
  return `${t.tenant}\u0000${t.object}\u0000${t.relation}\u0000${t.subjectTenant ?? t.tenant}\u0000${t.user}`;
}

function sameTuple(a: TupleKey, b: TupleKey): boolean {
  return tupleId(a) === tupleId(b);
}

async function readAll(file: string): Promise<Uint8Array> {
  const { readFile } = await import("node:fs/promises");
  return new Uint8Array(await readFile(file));
}
