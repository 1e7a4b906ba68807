/**
 * A NexusFS client that caches, for one caller: attributes (stat) and directory listings per path, and contents
 * by hash. Caches are invalidated by the filesystem's change stream (server push), not by a TTL: an event drops
 * exactly what it can have changed, so a read served from cache is one the caller could make now, as of the
 * last event delivered.
 *
 * What each event drops:
 * - created/written/removed: the entry's stat, its directory's listing (and for a removed directory, all below);
 * - renamed: both paths and everything below them, both directories' listings;
 * - permission change on a path: everything at and below it, and the listings and stats of every directory
 *   above it (a directory shows when anything below it is readable); on a group (membership): all of them.
 * Contents are immutable under their hash, so they are never invalidated; they are dropped least recently used
 * first beyond `contentBytes`. A read needs a cached stat (which only a checked call fills), so revoking a
 * permission stops cached reads as soon as its event arrives.
 */
import { NexusError } from "../util/errors.js";
import type { FsEvent } from "./events.js";
import type { Caller, DirEntry, FileData, FileStat, FileSystem, TargetOptions } from "./filesystem.js";
import { isWithin, normalizePath, parentOf } from "./paths.js";

/** What a client calls: a FileSystem in the same process, or one over HTTP (same shape). */
export type FsBackend = Pick<
  FileSystem,
  | "stat"
  | "list"
  | "readWithStat"
  | "write"
  | "assertWritable"
  | "append"
  | "mkdir"
  | "remove"
  | "rename"
  | "glob"
  | "watch"
  | "token"
  | "currentToken"
>;

export interface FsClientOptions {
  /** Content cache size in bytes (default 64 MiB). */
  readonly contentBytes?: number;
  /** Stats and listings kept (default 100,000 each); the oldest go first. */
  readonly maxEntries?: number;
}

export interface CacheCounters {
  hits: number;
  misses: number;
}

export interface FsClientStats {
  readonly stat: CacheCounters;
  readonly list: CacheCounters;
  readonly content: CacheCounters;
  /** Reads answered without calling the filesystem (stat and content, or a refusal, from cache). */
  readonly read: CacheCounters;
  /** Entries dropped by events. */
  readonly invalidations: number;
  readonly events: number;
}

export class FsClient implements AsyncDisposable {
  readonly caller: Required<Caller>;
  readonly #backend: FsBackend;
  /** A stat, or the refusal it got (permission_denied / not_found: invalidated by the same events). */
  readonly #stats = new Map<string, FileStat | NexusError>();
  readonly #lists = new Map<string, DirEntry[]>();
  readonly #contents = new Map<string, Uint8Array>();
  #contentSize = 0;
  readonly #maxContent: number;
  readonly #maxEntries: number;
  readonly #counters = {
    stat: { hits: 0, misses: 0 },
    list: { hits: 0, misses: 0 },
    content: { hits: 0, misses: 0 },
    read: { hits: 0, misses: 0 },
    invalidations: 0,
    events: 0,
  };
  readonly #stop = new AbortController();
  readonly #following: Promise<void>;
  #lastToken: string;
  /** Bumped by every invalidation: an answer requested before a bump may be stale and is not cached. */
  #epoch = 0;
  #waiters: { token: string; resolve: () => void }[] = [];

  constructor(backend: FsBackend, caller: Caller, options: FsClientOptions = {}) {
    if (caller === null || typeof caller !== "object" || typeof caller.user !== "string") {
      throw new NexusError("invalid_argument", "a client needs a caller { user, tenant? }");
    }
    this.#backend = backend;
    this.caller = { user: caller.user, tenant: caller.tenant ?? "default" };
    this.#maxContent = options.contentBytes ?? 64 * 1024 * 1024;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#lastToken = backend.token;
    this.#following = this.#follow(this.#lastToken);
  }

  async stat(path: string, options: TargetOptions = {}): Promise<FileStat> {
    const key = this.#key(path, options);
    const cached = this.#stats.get(key);
    if (cached !== undefined) {
      this.#counters.stat.hits++;
      if (cached instanceof NexusError) throw cached;
      return cached;
    }
    this.#counters.stat.misses++;
    const epoch = this.#epoch;
    const stat = await this.#remember(key, epoch, this.#backend.stat(this.caller, path, options));
    if (epoch === this.#epoch) this.#put(this.#stats, key, stat);
    return stat;
  }

  async list(path: string, options: TargetOptions = {}): Promise<DirEntry[]> {
    const key = this.#key(path, options);
    const cached = this.#lists.get(key);
    if (cached !== undefined) {
      this.#counters.list.hits++;
      return cached;
    }
    this.#counters.list.misses++;
    const epoch = this.#epoch;
    const entries = await this.#backend.list(this.caller, path, options);
    if (epoch === this.#epoch) this.#put(this.#lists, key, entries);
    return entries;
  }

  async read(path: string, options: TargetOptions = {}): Promise<Uint8Array> {
    const key = this.#key(path, options);
    const stat = this.#stats.get(key);
    if (stat instanceof NexusError) {
      this.#counters.stat.hits++;
      this.#counters.read.hits++;
      throw stat;
    }
    if (stat !== undefined && !stat.isDirectory) {
      this.#counters.stat.hits++;
      const bytes = this.#contents.get(stat.hash!);
      if (bytes !== undefined) {
        this.#counters.content.hits++;
        this.#counters.read.hits++;
        // Most recently used last.
        this.#contents.delete(stat.hash!);
        this.#contents.set(stat.hash!, bytes);
        return bytes;
      }
    } else this.#counters.stat.misses++;
    this.#counters.content.misses++;
    this.#counters.read.misses++;
    const epoch = this.#epoch;
    const fresh = await this.#remember(key, epoch, this.#backend.readWithStat(this.caller, path, options));
    if (epoch === this.#epoch) this.#put(this.#stats, key, fresh.stat);
    this.#keepContent(fresh.stat.hash!, fresh.bytes);
    return fresh.bytes;
  }

  async readText(path: string, options: TargetOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(path, options));
  }

  // Writes go through; what they change is dropped at once (their events drop it again, harmlessly).

  async write(path: string, data: FileData, options: TargetOptions = {}): Promise<FileStat> {
    const stat = await this.#backend.write(this.caller, path, data, options);
    this.#changed(this.#tenant(options), stat.path);
    return stat;
  }

  /** Refuses as a write would, without writing (not cached: it is asked right before a write). */
  assertWritable(path: string, options: TargetOptions = {}): Promise<void> {
    return this.#backend.assertWritable(this.caller, path, options);
  }

  async append(path: string, data: FileData, options: TargetOptions = {}): Promise<FileStat> {
    const stat = await this.#backend.append(this.caller, path, data, options);
    this.#changed(this.#tenant(options), stat.path);
    return stat;
  }

  async mkdir(path: string, options: TargetOptions & { recursive?: boolean } = {}): Promise<FileStat> {
    const stat = await this.#backend.mkdir(this.caller, path, options);
    this.#dropBelow(this.#tenant(options), parentOf(stat.path) ?? "/");
    return stat;
  }

  async remove(path: string, options: TargetOptions & { recursive?: boolean } = {}): Promise<void> {
    await this.#backend.remove(this.caller, path, options);
    const p = normalizePath(path);
    this.#dropBelow(this.#tenant(options), p);
    this.#changed(this.#tenant(options), p);
  }

  async rename(from: string, to: string, options: TargetOptions = {}): Promise<FileStat> {
    const stat = await this.#backend.rename(this.caller, from, to, options);
    const tenant = this.#tenant(options);
    for (const p of [normalizePath(from), stat.path]) {
      this.#dropBelow(tenant, p);
      this.#changed(tenant, p);
    }
    return stat;
  }

  /** Not cached (a pattern's answer depends on too much). */
  glob(pattern: string, options: TargetOptions & { cwd?: string } = {}): Promise<string[]> {
    return this.#backend.glob(this.caller, pattern, options);
  }

  /** Resolves once every event up to the backend's current token has been applied (for tests and demos). */
  async synced(): Promise<void> {
    const target = await this.#backend.currentToken();
    if (this.#lastToken === target || position(this.#lastToken) >= position(target)) return;
    await new Promise<void>((resolve) => this.#waiters.push({ token: target, resolve }));
  }

  stats(): FsClientStats {
    const c = this.#counters;
    return {
      stat: { ...c.stat },
      list: { ...c.list },
      content: { ...c.content },
      read: { ...c.read },
      invalidations: c.invalidations,
      events: c.events,
    };
  }

  async close(): Promise<void> {
    this.#stop.abort();
    await this.#following;
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- invalidation --------------------------------------------------------------------------------------------

  async #follow(after: string): Promise<void> {
    try {
      for await (const event of this.#backend.watch({
        after,
        signal: this.#stop.signal,
        caller: this.caller,
      })) {
        // A position event only says how far the caller's filtered stream has got.
        if (event.kind !== "position") this.#apply(event);
        this.#lastToken = event.token;
        this.#waiters = this.#waiters.filter((w) => {
          if (position(w.token) > position(event.token)) return true;
          w.resolve();
          return false;
        });
      }
    } catch (e) {
      // A stream that lost its place (invalid_token): everything cached may be stale.
      this.#stats.clear();
      this.#lists.clear();
      if (!this.#stop.signal.aborted) throw e;
    }
  }

  #apply(e: FsEvent): void {
    this.#counters.events++;
    this.#epoch++;
    if (e.path === undefined) {
      // A group's membership changed: any answer may have.
      this.#counters.invalidations += this.#stats.size + this.#lists.size;
      this.#stats.clear();
      this.#lists.clear();
      return;
    }
    switch (e.kind) {
      case "created":
      case "written":
        this.#changed(e.tenant, e.path);
        break;
      case "removed":
        this.#dropBelow(e.tenant, e.path);
        this.#changed(e.tenant, e.path);
        break;
      case "renamed":
        for (const p of [e.from!, e.path]) {
          this.#dropBelow(e.tenant, p);
          this.#changed(e.tenant, p);
        }
        break;
      case "permission":
        this.#dropBelow(e.tenant, e.path);
        // Directories above show (and stat) when anything below them is readable.
        for (let p = parentOf(e.path); p !== undefined; p = parentOf(p)) {
          this.#drop(this.#lists, `${e.tenant}\u0000${p}`);
          this.#drop(this.#stats, `${e.tenant}\u0000${p}`);
        }
        break;
    }
  }

  /** An entry's content or existence changed: its stat and its directory's listing. */
  #changed(tenant: string, path: string): void {
    // An answer in flight may predate this change: it is not kept (see the epoch checks above).
    this.#epoch++;
    this.#drop(this.#stats, `${tenant}\u0000${path}`);
    this.#drop(this.#lists, `${tenant}\u0000${path}`);
    const parent = parentOf(path);
    if (parent !== undefined) this.#drop(this.#lists, `${tenant}\u0000${parent}`);
  }

  /** Everything cached at or below `dir`. */
  #dropBelow(tenant: string, dir: string): void {
    this.#epoch++;
    const prefix = `${tenant}\u0000`;
    for (const map of [this.#stats, this.#lists] as Map<string, unknown>[]) {
      for (const key of map.keys()) {
        if (key.startsWith(prefix) && isWithin(key.slice(prefix.length), dir)) this.#drop(map, key);
      }
    }
  }

  #drop(map: Map<string, unknown>, key: string): void {
    if (map.delete(key)) this.#counters.invalidations++;
  }

  // ---- storage of the caches -----------------------------------------------------------------------------------

  #key(path: string, options: TargetOptions): string {
    return `${this.#tenant(options)}\u0000${normalizePath(path)}`;
  }

  #tenant(options: TargetOptions): string {
    return options.tenant ?? this.caller.tenant;
  }

  /** Awaits a backend answer; a refusal that events can lift (permission_denied, not_found) is cached too. */
  async #remember<T>(key: string, epoch: number, answer: Promise<T>): Promise<T> {
    try {
      return await answer;
    } catch (e) {
      if (
        e instanceof NexusError &&
        (e.code === "permission_denied" || e.code === "not_found") &&
        epoch === this.#epoch
      ) {
        this.#put(this.#stats, key, e);
      }
      throw e;
    }
  }

  #put<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > this.#maxEntries) map.delete(map.keys().next().value!);
  }

  #keepContent(hash: string, bytes: Uint8Array): void {
    if (bytes.length > this.#maxContent || this.#contents.has(hash)) return;
    this.#contents.set(hash, bytes);
    this.#contentSize += bytes.length;
    for (const [h, b] of this.#contents) {
      if (this.#contentSize <= this.#maxContent) break;
      this.#contents.delete(h);
      this.#contentSize -= b.length;
    }
  }
}

function position(token: string): number {
  return Number(token.slice(token.indexOf(".") + 1));
}
