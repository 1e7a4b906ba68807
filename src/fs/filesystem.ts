/**
 * NexusFS: files whose every operation is checked against the permission engine, with contents in the tiered
 * store (blobs/tiered/) and metadata in 64-byte records (one TenantTree per tenant, tree.ts). This file holds the
 * operations; what they lean on has its own file: the checks (checks.ts), journaled mutations (mutations.ts),
 * opening and crash recovery (open.ts), permission events from other writers (permission-follower.ts), staging
 * of contents (staging.ts).
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
 * back (its new tuples deleted, its bytes released), a committed one is rolled forward. A mutation failing before
 * its commit is undone at once, the same way (mutations.ts). The filesystem holds one store reference per
 * distinct content it keeps (any version of any file), so a content no record names is never left behind.
 *
 * Reads take no lock: a read whose checks overlapped a mutation runs again (see #unchanged), so what it returns
 * is what its checks allowed.
 */

import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { TieredStats } from "../blobs/tiered/options.js";
import type { TieredStore } from "../blobs/tiered/store.js";
import type { Engine } from "../engine/engine.js";
import type { TupleKey } from "../tuples/tuple.js";
import type { TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { ancestorsAndSelf, callerOf, denied, exists, tenantOf } from "./caller.js";
import { PermissionChecks } from "./checks.js";
import type { FsEvent, FsEventLog, FsWatchRequest } from "./events.js";
import type { Journal } from "./journal.js";
import type { CommitOp } from "./journal-records.js";
import { MutationLog } from "./mutations.js";
import { globMatcher, isWithin, joinPath, normalizePath, objectOf, parentOf, pathOfObject } from "./paths.js";
import { PermissionFollower } from "./permission-follower.js";
import { ContentStager, type Staged, stagedBytes } from "./staging.js";
import { type FileStat, notFound, TenantTree, type Version } from "./tree.js";
import { grantTuple, sameTuple } from "./tuple-keys.js";
import {
  type Caller,
  type DirEntry,
  type FileData,
  type FileSystemOptions,
  type Grant,
  MAX_FILE_BYTES,
  type RecoveryReport,
  type TargetOptions,
} from "./types.js";

export type {
  Caller,
  DirEntry,
  FileData,
  FileStat,
  FileSystemOptions,
  FileSystemTiers,
  Grant,
  MutationStep,
  RecoveryReport,
  TargetOptions,
  Version,
} from "./types.js";

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
  readonly #maxVersions: number;
  readonly #maxFileBytes: number;
  readonly #clock: () => number;
  readonly #events: FsEventLog;
  readonly #closing = new AbortController();
  readonly #checks: PermissionChecks;
  /** Turns tuple changes this filesystem did not make into permission events. */
  readonly #follower: PermissionFollower;
  readonly #mutations: MutationLog;
  readonly #stager: ContentStager;
  #closed = false;

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
    this.recovery = parts.recovery;
    const o = parts.options;
    this.#maxVersions = o.maxVersions ?? 10;
    this.#maxFileBytes = o.maxFileBytes ?? MAX_FILE_BYTES;
    this.#clock = o.clock ?? Date.now;
    this.#events = parts.events;
    this.#checks = new PermissionChecks(
      parts.engine,
      (tenant) => this.#tree(tenant),
      () => this.#mutations.token,
      () => this.#closed,
    );
    this.#stager = new ContentStager(join(parts.dir, "staging"), this.#maxFileBytes);
    this.#follower = new PermissionFollower({
      engine: parts.engine,
      events: parts.events,
      signal: this.#closing.signal,
      hasTree: (tenant) => this.#trees.has(tenant),
      tenants: () => [...this.#trees.keys()],
      ownRevisions: parts.ownRevisions,
      recovered: parts.recovered,
      lostCursor: parts.lostCursor,
    });
    this.#mutations = new MutationLog({
      engine: parts.engine,
      store: parts.store,
      journal: parts.journal,
      trees: parts.trees,
      tree: (tenant) => this.#tree(tenant, true),
      held: parts.held,
      seq: parts.seq,
      events: parts.events,
      follower: this.#follower,
      sync: o.fsync ?? true,
      maxVersions: this.#maxVersions,
      checkpointEvery: o.checkpointEvery ?? 10_000,
      onStep: o.testing?.onStep,
      closed: () => this.#closed,
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
    await this.#mutations.exclusive(async () => {
      const existing = await this.#mutations.tuplesOf(tenant, "/");
      const writes: TupleKey[] = request.owners
        .map((user) => ({ user, relation: "direct_owner", object: objectOf("/"), tenant }))
        .filter((t) => !existing.some((e) => sameTuple(e, t)));
      if (writes.length === 0) return;
      await this.#mutations.permissionChange(tenant, "/", { writes, onDuplicate: "ignore" });
    });
  }

  // ---- reads ---------------------------------------------------------------------------------------------------

  async stat(caller: Caller, path: string, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    return this.#unchanged(async () => {
      const stat = this.#tree(tenant).stat(p);
      // A directory a listing shows (it, or anything below it, is readable) can be stat-ed too.
      if (stat?.isDirectory && (await this.#checks.mayTraverse(c, tenant, p))) return stat;
      await this.#checks.require(c, "read", tenant, p);
      if (stat === undefined) throw notFound(tenant, p);
      return stat;
    });
  }

  /** Whether the entry exists and the caller may read it (false for both "no" and "not there"). */
  async exists(caller: Caller, path: string, options: TargetOptions = {}): Promise<boolean> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    return this.#unchanged(async () => {
      if (this.#tree(tenant).kindOf(p) === undefined) return false;
      return this.#checks.allowed(c, "read", tenant, p);
    });
  }

  /** The file's content (a given `version`, default the current one). */
  async read(
    caller: Caller,
    path: string,
    options: TargetOptions & { version?: number } = {},
  ): Promise<Uint8Array> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    const hash = await this.#unchanged(async () => {
      await this.#checks.require(c, "read", tenant, p);
      return this.#contentHash(tenant, p, options.version);
    });
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
    const stat = await this.#unchanged(async () => {
      await this.#checks.require(c, "read", tenant, p);
      const stat = this.#tree(tenant).stat(p);
      if (stat === undefined) throw notFound(tenant, p);
      if (stat.isDirectory) throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
      return stat;
    });
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
    return this.#unchanged(async () => {
      await this.#checks.require(c, "read", tenant, p);
      const tree = this.#tree(tenant);
      const kind = tree.kindOf(p);
      if (kind === undefined) throw notFound(tenant, p);
      if (kind === "directory") throw new NexusError("is_a_directory", `${p} is a directory`, { path: p });
      return [...tree.versions(p)];
    });
  }

  /** The entries of a directory the caller may see, sorted by name. */
  async list(caller: Caller, path: string, options: TargetOptions = {}): Promise<DirEntry[]> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    return this.#unchanged(async () => {
      const tree = this.#tree(tenant);
      const kind = tree.kindOf(p);
      // Without traverse on the directory, it may still be listed when anything below it is readable; the
      // entries' own filter answers that (a directory shows when anything below it is readable), so no second
      // filter over everything below is needed.
      const traversable = await this.#checks.allowed(c, this.#checks.traverse, tenant, p);
      if (!traversable && kind !== "directory") throw denied(c, "list", tenant, p);
      if (kind === undefined) throw notFound(tenant, p);
      if (kind === "file") throw new NexusError("not_a_directory", `${p} is a file`, { path: p });
      const listing = tree.listing(p);
      const visible = await this.#checks.visible(c, tenant, listing);
      if (!traversable && visible.length === 0) throw denied(c, "list", tenant, p);
      const out: DirEntry[] = [];
      for (const i of visible) {
        const entry = listing.entries[i]!;
        // A subdirectory's mtime moves with its own entries, which do not refresh this listing: read it now.
        out.push(entry.isDirectory ? { ...entry, mtime: tree.entry(entry.path)!.mtime } : entry);
      }
      return out;
    });
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
    return this.#unchanged(async () => {
      const tree = this.#tree(tenant);
      if (!(await this.#checks.mayTraverse(c, tenant, base))) throw denied(c, "glob", tenant, base);
      if (tree.kindOf(base) !== "directory") return [];
      const candidates = tree.descendants(base).filter((path) => matcher.test(path));
      return this.#checks.readable(c, tenant, candidates);
    });
  }

  // ---- writes --------------------------------------------------------------------------------------------------

  /** Writes a whole file (creating it, or adding a version). Returns its stat. */
  async write(caller: Caller, path: string, data: FileData, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    // A stream is staged (hashed, spilled to disk) before the write waits its turn; refuse early when it is bound to fail.
    if (!(await this.#checks.mayWriteFile(c, tenant, p))) throw denied(c, "write", tenant, p);
    const staged = await this.#stager.stage(data);
    try {
      return await this.#mutations.exclusive(() => this.#putContent(c, tenant, p, staged));
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
    if (kind === "file") return this.#checks.require(c, "write", tenant, p);
    await this.#checks.require(c, "write", tenant, parentOf(p)!);
    this.#assertDirectory(tree, tenant, parentOf(p)!);
  }

  /** Appends to a file (creating it when missing): a new version holding the old content then `data`. */
  async append(caller: Caller, path: string, data: FileData, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    if (!(await this.#checks.mayWriteFile(c, tenant, p))) throw denied(c, "write", tenant, p);
    const extra = await this.#stager.stage(data);
    try {
      return await this.#mutations.exclusive(async () => {
        const tree = this.#tree(tenant);
        const current =
          tree.kindOf(p) === "file" ? await this.#store.get(tree.stat(p)!.hash!) : new Uint8Array();
        const tail = await stagedBytes(extra);
        const joined = new Uint8Array(current.length + tail.length);
        joined.set(current, 0);
        joined.set(tail, current.length);
        return this.#putContent(c, tenant, p, await this.#stager.stage(joined));
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
    return this.#mutations.exclusive(async () => {
      const tree = this.#tree(tenant, true);
      const levels = options.recursive ? ancestorsAndSelf(p) : [p];
      for (const level of levels) {
        const kind = tree.kindOf(level);
        if (kind === "directory" && (options.recursive || level !== p)) continue;
        const parent = parentOf(level)!;
        await this.#checks.require(c, "write", tenant, parent);
        if (kind !== undefined) throw exists(tenant, level);
        this.#assertDirectory(tree, tenant, parent);
        await this.#mutations.create(
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
    await this.#mutations.exclusive(async () => {
      const tree = this.#tree(tenant);
      await this.#checks.require(c, "write", tenant, p);
      const kind = tree.kindOf(p);
      if (kind === undefined) throw notFound(tenant, p);
      if (p === "/")
        throw new NexusError("invalid_argument", "the root directory cannot be removed", { path: p });
      const below = kind === "directory" ? tree.descendants(p) : [];
      if (below.length > 0) {
        if (!options.recursive) throw new NexusError("not_empty", `directory ${p} is not empty`, { path: p });
        const allowed = new Set(
          await this.engine.filter({
            ...this.#checks.subject(c, tenant),
            relation: "write",
            objects: below.map(objectOf),
          }),
        );
        const refused = below.find((b) => !allowed.has(objectOf(b)));
        if (refused !== undefined) throw denied(c, "remove", tenant, refused);
      }
      // Children before parents.
      for (const entry of [...below.reverse(), p]) {
        const deleteAfter = await this.#mutations.tuplesOf(tenant, entry);
        await this.#mutations.run(
          tenant,
          { op: "remove", path: entry, mtime: this.#clock() },
          { deleteAfter },
        );
      }
    });
  }

  /** Moves a file or directory. Checks `write` on the source and on the destination's parent (and on a file it replaces). */
  async rename(caller: Caller, from: string, to: string, options: TargetOptions = {}): Promise<FileStat> {
    const c = callerOf(caller);
    const { tenant, p: src } = this.#target(c, from, options);
    const dst = normalizePath(to);
    return this.#mutations.exclusive(async () => {
      const tree = this.#tree(tenant);
      await this.#checks.require(c, "write", tenant, src);
      const kind = tree.kindOf(src);
      if (kind === undefined) throw notFound(tenant, src);
      if (src === "/" || dst === "/") {
        throw new NexusError("invalid_argument", "the root directory cannot be moved or replaced", {
          from,
          to,
        });
      }
      const dstParent = parentOf(dst)!;
      await this.#checks.require(c, "write", tenant, dstParent);
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
      if (target === "file") await this.#checks.require(c, "write", tenant, dst);
      // Permissions follow the entry: every tuple on it and below it moves to the new paths, atomically.
      const moved = [src, ...(kind === "directory" ? tree.descendants(src) : [])];
      const deleted: TupleKey[] = [];
      const wrote: TupleKey[] = [];
      for (const old of moved) {
        for (const t of await this.#mutations.tuplesOf(tenant, old)) {
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
      const atDestination = await this.#mutations.tuplesOf(tenant, dst);
      const stays = (t: TupleKey) => atDestination.some((e) => sameTuple(e, t));
      await this.#mutations.run(
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
    const tuple = grantTuple(tenant, p, grant);
    return this.#mutations.exclusive(async () => {
      await this.#checks.require(c, "execute", tenant, p);
      if (this.#tree(tenant).kindOf(p) === undefined) throw notFound(tenant, p);
      // Sharing what is already shared changes nothing (and makes no event).
      if ((await this.#mutations.tuplesOf(tenant, p)).some((t) => sameTuple(t, tuple)))
        return this.#mutations.token ?? (await this.engine.token());
      return this.#mutations.permissionChange(tenant, p, { writes: [tuple] });
    });
  }

  /** Revokes a grant made by share (the caller needs `execute`); not_found when there was none. */
  async unshare(caller: Caller, path: string, grant: Grant, options: TargetOptions = {}): Promise<string> {
    const c = callerOf(caller);
    const { tenant, p } = this.#target(c, path, options);
    const tuple = grantTuple(tenant, p, grant);
    return this.#mutations.exclusive(async () => {
      await this.#checks.require(c, "execute", tenant, p);
      const existing = await this.engine.read({
        tenant,
        object: tuple.object,
        relation: tuple.relation,
        user: tuple.user,
        consistency: this.#checks.consistency(),
      });
      if (!existing.some((t) => (t.subjectTenant ?? t.tenant) === (tuple.subjectTenant ?? tenant))) {
        throw new NexusError("not_found", `no ${grant.relation} grant to ${grant.user} on ${p}`, {
          path: p,
          grant,
        });
      }
      return this.#mutations.permissionChange(tenant, p, { deletes: [tuple] });
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
      c === undefined ? undefined : (event) => this.#checks.visibleTo(c, event),
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
    await this.#mutations.idle();
    // Report every permission change made until now, so the cursor kept on disk is exact.
    await this.#follower.caughtUp();
    this.#closing.abort();
    await this.#follower.done;
    try {
      // A mutation only replay can finish keeps the journal as it is.
      if (this.#journal.records > 0 && this.#mutations.broken === undefined)
        await this.#mutations.checkpoint();
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

  // ---- internals -----------------------------------------------------------------------------------------------

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
    if (kind === "file") await this.#checks.require(c, "write", tenant, p);
    else {
      await this.#checks.require(c, "write", tenant, parentOf(p)!);
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
    if (kind === undefined) await this.#mutations.create(c, tenant, commit, [staged]);
    else await this.#mutations.run(tenant, commit, { staged });
    return tree.stat(p)!;
  }

  /**
   * Runs a read's checks and tree lookups so that they see one state: reads do not wait for the mutation lock,
   * and a mutation changes tuples and tree one after the other (a rename over a file could otherwise hand a
   * caller, checked against the old file, the new one's content). Runs `work` again when a mutation started or
   * was running meanwhile, and under the lock when mutations keep coming.
   */
  async #unchanged<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = this.#mutations.changes;
      if (before % 2 === 1) {
        await this.#mutations.settled();
        continue;
      }
      let result: { value: T } | { error: unknown };
      try {
        result = { value: await work() };
      } catch (error) {
        result = { error };
      }
      if (this.#mutations.changes !== before) continue;
      if ("error" in result) throw result.error;
      return result.value;
    }
    return this.#mutations.exclusive(work);
  }

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
