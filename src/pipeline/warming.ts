/**
 * Predictive warming (P3-4): learn where users go next and ask those questions in the background, so their
 * answers are in the result cache (and their Tiger bitmaps materialised) before the users ask.
 *
 * - `AccessTracker` learns from the accesses it is shown, in bounded memory:
 *   (a) directory transitions — for objects whose id is a path (`file:/a/b/c.txt`, directory `file:/a/b`), an
 *       order-1 Markov table "next directory given the current one", per user and shared by all users of a
 *       tenant (a user's own counts, smoothed towards everyone's);
 *   (b) siblings — the objects seen in each directory (and, optionally, a caller's directory lister): an access
 *       to a file predicts the other files of its directory, a predicted directory predicts its contents.
 *   `predict(access, k)` returns the k questions most likely to come next.
 * - `Warmer` owns a tracker and a background loop. `observe()` is synchronous and O(1) (it copies the access into
 *   a bounded ring; learning and predicting happen later, in the loop, off the request path); the loop turns
 *   accesses into predicted questions and hands them in batches to `warm` (the chain's filter / checkMany, see
 *   `warmThrough`), within a budget:
 *   questions per second (token bucket), batches in flight, a queue bound (oldest dropped), and no question
 *   asked twice within `recentMs` unless a change made its answer stale. Subscribed to the change feed, it also
 *   re-warms what the most recently active users will ask once a change becomes visible (the next
 *   quantization window), so their next request does not pay for the invalidation.
 *
 * Warming can only fill caches: every question goes through the chain's public entry points, which answer
 * exactly with or without it. Errors of warm requests are swallowed and counted.
 *
 * Runtime-neutral (no `node:` import): only setTimeout/clearTimeout, unref'd where the runtime has it, so an idle
 * warmer never keeps a process alive. Owner: whoever creates the Warmer closes it; close() stops the loop, clears
 * its timer, aborts and awaits the warm requests in flight.
 */

import type { ChangeListener } from "../changes/feed.js";
import { DEFAULT_TENANT } from "../tuples/tuple.js";
import type { Revision, StoredChange } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";

/** One access (a check request; extra fields such as context or consistency are ignored). */
export interface Access {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
}

/** A listing: the objects of one directory filtered for a user (a filter request). */
export interface Listing {
  readonly user: string;
  readonly relation: string;
  readonly objects: readonly string[];
  readonly tenant?: string;
  readonly subjectTenant?: string;
}

/** A question to warm: a plain check request (no context, no contextual tuples, minimize_latency). */
export interface WarmQuestion {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
}

export interface AccessTrackerOptions {
  /** Users tracked (default 10,000; the least recently active is forgotten with their rows). */
  readonly maxUsers?: number;
  /** A user's own transition rows, one per directory left (default 16; least recently used dropped). */
  readonly maxRowsPerUser?: number;
  /** Directories with a shared transition row and a set of seen objects (default 10,000; LRU). */
  readonly maxDirectories?: number;
  /** Next directories counted per row (default 8; beyond it the least counted is replaced: space-saving). */
  readonly maxSuccessors?: number;
  /** Objects remembered per directory, most recently seen kept (default 64). */
  readonly maxObjectsPerDirectory?: number;
  /** A row's counts are halved once its total reaches this (default 256), so recent habits outweigh old ones. */
  readonly decayAt?: number;
  /**
   * Pseudo-count of the shared (all users) transitions in a user's estimate (default 2): a user with n moves out
   * of a directory predicts (own count + w · shared share) / (n + w); a user never seen there predicts the shared
   * row alone.
   */
  readonly sharedWeight?: number;
  /** Score of the siblings of an accessed object, against next-directory probabilities (default 0.5). */
  readonly siblingScore?: number;
  /** Next directories less likely than this are not predicted (default 0.05). */
  readonly minProbability?: number;
  /** The directory of an object, or undefined when it has none (default: `pathDirectory`). */
  readonly directoryOf?: (object: string) => string | undefined;
  /**
   * Objects in a directory from the caller's own index (a metadata store, a filesystem), consulted when
   * predicting (in the background, never on the request path); added after the objects seen there.
   */
  readonly listDirectory?: (directory: string, tenant: string) => readonly string[] | undefined;
}

/** Bounds and sizes of what the tracker holds. */
export interface AccessTrackerStats {
  readonly users: number;
  readonly userRows: number;
  readonly directories: number;
  /** Objects remembered over all directories. */
  readonly objects: number;
  readonly transitions: number;
}

/**
 * The directory of a path object: `file:/a/b/c.txt` → `file:/a/b`, `file:/a` → `file:/`, `file:a/b` → `file:a`;
 * undefined for an id without `/` (not a path) and for a root.
 */
export function pathDirectory(object: string): string | undefined {
  const colon = object.indexOf(":");
  if (colon < 0) return undefined;
  let end = object.length;
  if (end - colon > 2 && object.charCodeAt(end - 1) === 47 /* "/" */) end--; // "a/b/" names the directory a/b
  const slash = object.lastIndexOf("/", end - 1);
  if (slash <= colon) return undefined;
  if (slash === colon + 1) return end === colon + 2 ? undefined : object.slice(0, colon + 2); // under the root
  return object.slice(0, slash);
}

const SEP = "\u0000";

/**
 * A map of at most `max` entries that forgets the least recently used. A use stamps the entry (no re-insertion,
 * which costs a Map far more than a field write); going over `max` drops the least recently used eighth at once,
 * so eviction is amortised O(log n) per insert.
 */
class Lru<V> {
  readonly max: number;
  readonly #entries = new Map<string, { value: V; used: number }>();
  #tick = 0;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, marked as just used. */
  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    e.used = ++this.#tick;
    return e.value;
  }

  /** The value, leaving the order alone. */
  peek(key: string): V | undefined {
    return this.#entries.get(key)?.value;
  }

  set(key: string, value: V): void {
    const e = this.#entries.get(key);
    if (e !== undefined) {
      e.value = value;
      e.used = ++this.#tick;
      return;
    }
    this.#entries.set(key, { value, used: ++this.#tick });
    if (this.#entries.size > this.max) this.#trim();
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  *values(): IterableIterator<V> {
    for (const e of this.#entries.values()) yield e.value;
  }

  /** Keys, most recently used first. */
  keysByRecency(): string[] {
    return [...this.#entries].sort((a, b) => b[1].used - a[1].used).map(([key]) => key);
  }

  #trim(): void {
    const drop = Math.max(1, Math.ceil(this.max / 8));
    const stamps = [...this.#entries.values()].map((e) => e.used).sort((a, b) => a - b);
    const cut = stamps[drop - 1]!;
    for (const [key, e] of this.#entries) if (e.used <= cut) this.#entries.delete(key);
  }
}

/** Counts of next directories out of one directory: at most `max` kept (space-saving), halved at `decayAt`. */
class Row {
  readonly keys: string[] = [];
  readonly counts: number[] = [];
  total = 0;

  add(key: string, max: number, decayAt: number): void {
    const i = this.keys.indexOf(key);
    if (i >= 0) {
      this.counts[i]!++;
    } else if (this.keys.length < max) {
      this.keys.push(key);
      this.counts.push(1);
    } else {
      // Space-saving: the least counted successor makes room; the newcomer inherits its count (+1), an upper
      // bound of its true count, so a newly popular move climbs quickly.
      let min = 0;
      for (let j = 1; j < this.counts.length; j++) if (this.counts[j]! < this.counts[min]!) min = j;
      this.total -= this.counts[min]!;
      this.keys[min] = key;
      this.counts[min]! += 1;
      this.total += this.counts[min]!;
      if (this.total >= decayAt) this.#halve();
      return;
    }
    this.total++;
    if (this.total >= decayAt) this.#halve();
  }

  count(key: string): number {
    const i = this.keys.indexOf(key);
    return i < 0 ? 0 : this.counts[i]!;
  }

  #halve(): void {
    let total = 0;
    for (let j = this.counts.length - 1; j >= 0; j--) {
      const c = this.counts[j]! >> 1;
      if (c === 0) {
        this.keys.splice(j, 1);
        this.counts.splice(j, 1);
      } else {
        this.counts[j] = c;
        total += c;
      }
    }
    this.total = total;
  }
}

interface Directory {
  /** Where users went next from here (all users of the tenant). */
  readonly next: Row;
  /** Objects seen in this directory (by recency). */
  readonly seen: Lru<true>;
}

interface UserState {
  /** The directory of the user's last access. */
  current: string | undefined;
  /** Directory left → where this user went next from it (created on the first move). */
  rows: Lru<Row> | undefined;
}

/** An access as the tracker resolved it: the question plus its directory (what predictions start from). */
export interface TrackedVisit {
  readonly question: WarmQuestion;
  readonly tenant: string;
  readonly userKey: string;
  readonly directory: string;
  /** A listing: its objects were all just asked, so siblings are not predicted. */
  readonly listing: boolean;
}

function positiveInteger(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new NexusError("invalid_argument", `${name} must be an integer ≥ ${min}, got ${describe(value)}`, {
      [name]: value,
    });
  }
  return value;
}

function nonNegativeNumber(name: string, value: unknown, fallback: number, max = Number.POSITIVE_INFINITY) {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0 || value > max) {
    throw new NexusError(
      "invalid_argument",
      `${name} must be a number in [0, ${max}], got ${describe(value)}`,
      { [name]: value },
    );
  }
  return value;
}

function functionOption<F>(name: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new NexusError("invalid_argument", `${name} must be a function, got ${describe(value)}`);
  }
  return value as F;
}

function optionsObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new NexusError("invalid_argument", `${what} must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function isAccessLike(value: unknown): value is Access {
  if (typeof value !== "object" || value === null) return false;
  const a = value as Record<string, unknown>;
  return (
    typeof a.user === "string" &&
    typeof a.relation === "string" &&
    typeof a.object === "string" &&
    (a.tenant === undefined || typeof a.tenant === "string") &&
    (a.subjectTenant === undefined || typeof a.subjectTenant === "string")
  );
}

function questionOf(source: Access | Listing, object: string): WarmQuestion {
  const q: { user: string; relation: string; object: string; tenant?: string; subjectTenant?: string } = {
    user: source.user,
    relation: source.relation,
    object,
  };
  if (source.tenant !== undefined) q.tenant = source.tenant;
  if (source.subjectTenant !== undefined) q.subjectTenant = source.subjectTenant;
  return q;
}

/**
 * Who asks, as a key: the user alone in the default tenant (the common case, no string building), else tenant,
 * subject tenant and user NUL-separated (a user id holds no NUL, so the two forms never collide).
 */
function userKeyOf(a: Access | Listing): string {
  const tenant = a.tenant ?? DEFAULT_TENANT;
  const subjectTenant = a.subjectTenant ?? tenant;
  return tenant === DEFAULT_TENANT && subjectTenant === DEFAULT_TENANT
    ? a.user
    : tenant + SEP + subjectTenant + SEP + a.user;
}

/** A directory as a key: the directory alone in the default tenant, else tenant NUL directory. */
function directoryKey(tenant: string, directory: string): string {
  return tenant === DEFAULT_TENANT ? directory : tenant + SEP + directory;
}

/** The identity of a question for dedup and recency (tenants, user, relation, object). */
export function warmKey(q: WarmQuestion): string {
  return userKeyOf(q) + SEP + q.relation + SEP + q.object;
}

export class AccessTracker {
  readonly #maxRowsPerUser: number;
  readonly #maxSuccessors: number;
  readonly #maxObjects: number;
  readonly #decayAt: number;
  readonly #sharedWeight: number;
  readonly #siblingScore: number;
  readonly #minProbability: number;
  readonly #directoryOf: (object: string) => string | undefined;
  readonly #listDirectory: ((directory: string, tenant: string) => readonly string[] | undefined) | undefined;
  /** userKeyOf → the user's current directory and own transition rows. */
  readonly #users: Lru<UserState>;
  /** directoryKey → its shared transition row and seen objects. */
  readonly #directories: Lru<Directory>;
  #transitions = 0;

  constructor(options: AccessTrackerOptions = {}) {
    const o = optionsObject(options, "access tracker options");
    this.#users = new Lru(positiveInteger("maxUsers", o.maxUsers, 10_000));
    this.#maxRowsPerUser = positiveInteger("maxRowsPerUser", o.maxRowsPerUser, 16);
    this.#directories = new Lru(positiveInteger("maxDirectories", o.maxDirectories, 10_000));
    this.#maxSuccessors = positiveInteger("maxSuccessors", o.maxSuccessors, 8);
    this.#maxObjects = positiveInteger("maxObjectsPerDirectory", o.maxObjectsPerDirectory, 64);
    this.#decayAt = positiveInteger("decayAt", o.decayAt, 256, 2);
    this.#sharedWeight = nonNegativeNumber("sharedWeight", o.sharedWeight, 2);
    this.#siblingScore = nonNegativeNumber("siblingScore", o.siblingScore, 0.5, 1);
    this.#minProbability = nonNegativeNumber("minProbability", o.minProbability, 0.05, 1);
    this.#directoryOf =
      functionOption<(object: string) => string | undefined>("directoryOf", o.directoryOf) ?? pathDirectory;
    this.#listDirectory = functionOption("listDirectory", o.listDirectory);
  }

  /**
   * Learns from one access. Returns false when the object has no directory (nothing to learn).
   * @throws NexusError "invalid_argument" when `access` is not one.
   */
  observe(access: Access): boolean {
    return this.visit(accessOf(access)) !== undefined;
  }

  /**
   * Learns from a listing of one directory's objects (the objects, and a move into that directory).
   * @throws NexusError "invalid_argument" when `listing` is not one.
   */
  observeListing(listing: Listing): boolean {
    return this.visitListing(listingOf(listing)) !== undefined;
  }

  /** The k questions most likely to follow `access` (learn it first with observe()). */
  predict(access: Access, k: number): WarmQuestion[] {
    accessOf(access);
    const directory = this.#directoryOf(access.object);
    if (directory === undefined) return [];
    return this.predictVisit(
      {
        question: questionOf(access, access.object),
        tenant: access.tenant ?? DEFAULT_TENANT,
        userKey: userKeyOf(access),
        directory,
        listing: false,
      },
      k,
    );
  }

  /** The k questions most likely to follow a listing (learn it first with observeListing()). */
  predictAfterListing(listing: Listing, k: number): WarmQuestion[] {
    listingOf(listing);
    const first = listing.objects[0];
    const directory = first === undefined ? undefined : this.#directoryOf(first);
    if (directory === undefined) return [];
    return this.predictVisit(
      {
        question: questionOf(listing, first!),
        tenant: listing.tenant ?? DEFAULT_TENANT,
        userKey: userKeyOf(listing),
        directory,
        listing: true,
      },
      k,
    );
  }

  stats(): AccessTrackerStats {
    let objects = 0;
    for (const d of this.#directories.values()) objects += d.seen.size;
    let userRows = 0;
    for (const u of this.#users.values()) userRows += u.rows?.size ?? 0;
    return {
      users: this.#users.size,
      userRows,
      directories: this.#directories.size,
      objects,
      transitions: this.#transitions,
    };
  }

  /** Forgets everything learned. */
  clear(): void {
    this.#users.clear();
    this.#directories.clear();
  }

  /** @internal Learns one (validated) access; returns what predictions start from (undefined: no directory). */
  visit(access: Access): TrackedVisit | undefined {
    const directory = this.#directoryOf(access.object);
    if (directory === undefined) return undefined;
    const tenant = access.tenant ?? DEFAULT_TENANT;
    const userKey = userKeyOf(access);
    this.#see(tenant, directory, access.object);
    this.#moveTo(tenant, userKey, directory);
    return { question: questionOf(access, access.object), tenant, userKey, directory, listing: false };
  }

  /** @internal Learns one (validated) listing: at most maxObjectsPerDirectory of its objects. */
  visitListing(listing: Listing): TrackedVisit | undefined {
    const objects = listing.objects;
    const first = objects[0];
    if (typeof first !== "string") return undefined;
    const directory = this.#directoryOf(first);
    if (directory === undefined) return undefined;
    const tenant = listing.tenant ?? DEFAULT_TENANT;
    const userKey = userKeyOf(listing);
    const seen = this.#directory(tenant, directory).seen;
    const n = Math.min(objects.length, this.#maxObjects);
    for (let i = 0; i < n; i++) {
      const object = objects[i];
      if (typeof object === "string" && (i === 0 || this.#directoryOf(object) === directory)) {
        seen.set(object, true);
      }
    }
    this.#moveTo(tenant, userKey, directory);
    return { question: questionOf(listing, first), tenant, userKey, directory, listing: true };
  }

  /** @internal Predictions from a visit: next directories (and their contents) and siblings, best first. */
  predictVisit(visit: TrackedVisit, k: number): WarmQuestion[] {
    if (!(k > 0)) return [];
    const { tenant, directory } = visit;
    const groups: { score: number; directory: string; withSelf: boolean }[] = [];
    const shared = this.#directories.peek(directoryKey(tenant, directory))?.next;
    const own = this.#users.peek(visit.userKey)?.rows?.peek(directory);
    const candidates = new Set<string>([...(own?.keys ?? []), ...(shared?.keys ?? [])]);
    const w = this.#sharedWeight;
    for (const next of candidates) {
      const sharedShare = shared !== undefined && shared.total > 0 ? shared.count(next) / shared.total : 0;
      const p =
        own !== undefined && own.total > 0
          ? (own.count(next) + w * sharedShare) / (own.total + w)
          : sharedShare;
      if (p >= this.#minProbability && p > 0) groups.push({ score: p, directory: next, withSelf: true });
    }
    if (!visit.listing && this.#siblingScore > 0) {
      groups.push({ score: this.#siblingScore, directory, withSelf: false });
    }
    groups.sort((a, b) => b.score - a.score);
    const out: WarmQuestion[] = [];
    const taken = new Set<string>([visit.question.object]);
    const source = visit.question;
    const take = (object: string): boolean => {
      if (!taken.has(object)) {
        taken.add(object);
        out.push(questionOf(source, object));
      }
      return out.length >= k;
    };
    for (const group of groups) {
      if (group.withSelf && take(group.directory)) return out;
      for (const object of this.#contents(tenant, group.directory)) if (take(object)) return out;
    }
    return out;
  }

  /** Objects of a directory: those seen (most recent first), then the caller's lister's. */
  #contents(tenant: string, directory: string): string[] {
    const seen = this.#directories.peek(directoryKey(tenant, directory))?.seen;
    const out = seen === undefined ? [] : seen.keysByRecency();
    const listed = this.#listDirectory?.(directory, tenant);
    if (listed !== undefined) for (const o of listed) if (typeof o === "string") out.push(o);
    return out;
  }

  #directory(tenant: string, directory: string): Directory {
    const key = directoryKey(tenant, directory);
    let d = this.#directories.get(key);
    if (d === undefined) {
      d = { next: new Row(), seen: new Lru(this.#maxObjects) };
      this.#directories.set(key, d);
    }
    return d;
  }

  /** Remembers `object` in its directory. */
  #see(tenant: string, directory: string, object: string): void {
    this.#directory(tenant, directory).seen.set(object, true);
  }

  /** Remembers a directory in its own parent (the tree, as accesses reveal it). */
  #seeDirectory(tenant: string, directory: string): void {
    const parent = this.#directoryOf(directory);
    if (parent !== undefined) this.#directory(tenant, parent).seen.set(directory, true);
  }

  #moveTo(tenant: string, userKey: string, directory: string): void {
    let user = this.#users.get(userKey);
    if (user === undefined) {
      user = { current: undefined, rows: undefined };
      this.#users.set(userKey, user);
    }
    const last = user.current;
    user.current = directory;
    if (last === directory) return;
    // Entering a directory (not staying in one) is when the tree and the move are learned.
    this.#seeDirectory(tenant, directory);
    if (last === undefined) return;
    this.#transitions++;
    user.rows ??= new Lru(this.#maxRowsPerUser);
    let own = user.rows.get(last);
    if (own === undefined) {
      own = new Row();
      user.rows.set(last, own);
    }
    own.add(directory, this.#maxSuccessors, this.#decayAt);
    this.#directory(tenant, last).next.add(directory, this.#maxSuccessors, this.#decayAt);
  }
}

function accessOf(value: Access): Access {
  if (!isAccessLike(value)) {
    throw new NexusError(
      "invalid_argument",
      `an access must be { user, relation, object } strings, got ${describe(value)}`,
    );
  }
  return value;
}

function listingOf(value: Listing): Listing {
  if (typeof value !== "object" || value === null || !Array.isArray(value.objects)) {
    throw new NexusError(
      "invalid_argument",
      `a listing must be { user, relation, objects: string[] }, got ${describe(value)}`,
    );
  }
  if (!isAccessLike({ ...value, object: "" })) {
    throw new NexusError(
      "invalid_argument",
      `a listing must be { user, relation, objects: string[] }, got ${describe(value)}`,
    );
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// The warmer

/**
 * Runs warm questions (answers are discarded). `signal` aborts when the warmer closes. Rejecting counts as an
 * error; it never reaches the caller of observe().
 */
export type WarmFn = (questions: readonly WarmQuestion[], signal: AbortSignal) => Promise<unknown>;

export interface WarmerOptions {
  /** Where warm questions go: `warmThrough(chain)` (required). */
  readonly warm: WarmFn;
  /** The tracker to learn with, or options for a new one (default: a new tracker with default bounds). */
  readonly tracker?: AccessTracker | AccessTrackerOptions;
  /** Questions predicted per access (default 16). */
  readonly predictions?: number;
  /** Rate budget: warm questions per second, on average (default 1,000; Infinity: no rate limit). */
  readonly questionsPerSecond?: number;
  /** Token-bucket size: questions that may go at once after a quiet spell (default 128). */
  readonly burst?: number;
  /** Questions per warm call (default 32). */
  readonly batchSize?: number;
  /** Warm calls in flight at once (default 2). */
  readonly maxInFlight?: number;
  /** Questions waiting (default 1,024); beyond it the oldest is dropped. */
  readonly maxQueue?: number;
  /** Accesses waiting to be predicted from (default 1,024); beyond it the oldest is dropped. */
  readonly maxPendingAccesses?: number;
  /** A question warmed or asked within this many ms is not warmed again (default 5,000), unless a change since. */
  readonly recentMs?: number;
  /** Questions remembered as recent (default 20,000; least recent forgotten). */
  readonly maxRecent?: number;
  /**
   * The chain's quantization window (default 0): a change becomes visible to minimize_latency reads at the next
   * window boundary, which is when the refresh after a change runs.
   */
  readonly quantizationWindowMs?: number;
  /** After a change, re-warm the last access (and its predictions) of this many most recent users (default 16). */
  readonly refreshUsers?: number;
  /** Epoch ms (default Date.now): the chain's clock, for the budget, recency and window boundaries. */
  readonly clock?: () => number;
}

export interface WarmerStats {
  /** Accesses and listings observed. */
  readonly observed: number;
  /** Observed inputs ignored (not an access, or after close). */
  readonly ignored: number;
  /** Questions predicted (before dedup and recency). */
  readonly predicted: number;
  /** Predicted questions skipped as asked or warmed recently. */
  readonly skippedRecent: number;
  /** Questions handed to `warm` that completed. */
  readonly warmed: number;
  /** Warm calls made. */
  readonly batches: number;
  /** Questions and accesses dropped by the queue bounds (oldest first). */
  readonly dropped: number;
  /** Warm calls that failed (their questions are not marked warm). */
  readonly errors: number;
  readonly lastError?: string;
  /** Questions of warm calls cut short by close(). */
  readonly aborted: number;
  /** Refreshes run after changes. */
  readonly refreshes: number;
  readonly queueLength: number;
  readonly pendingAccesses: number;
  readonly inFlight: number;
  readonly tracker: AccessTrackerStats;
}

/** An access or listing as observed, waiting for the loop to learn it. */
type Observation =
  | { readonly access: WarmQuestion; readonly plain: boolean; readonly at: number }
  | { readonly listing: Listing; readonly at: number };

/** Objects of a listing kept for learning: a copy bounded on the request path (trackers read 64 by default). */
const LISTING_PREFIX = 256;

/** A fixed-capacity FIFO (drop-oldest on overflow). */
class Ring<T> {
  readonly #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  constructor(capacity: number) {
    this.#items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Adds at the back; returns true when the oldest was dropped to make room. */
  push(item: T): boolean {
    const cap = this.#items.length;
    if (this.#length === cap) {
      this.#items[this.#head] = item;
      this.#head = (this.#head + 1) % cap;
      return true;
    }
    this.#items[(this.#head + this.#length) % cap] = item;
    this.#length++;
    return false;
  }

  /** Items, newest first. */
  *newestFirst(): IterableIterator<T> {
    const cap = this.#items.length;
    for (let i = this.#length - 1; i >= 0; i--) yield this.#items[(this.#head + i) % cap]!;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    return item;
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#head = 0;
    this.#length = 0;
  }
}

type Timer = ReturnType<typeof setTimeout>;

/** Lets the process exit while only this timer is pending (Node, Bun, Deno); a no-op where timers are numbers. */
function setKeepAlive(timer: Timer, keepAlive: boolean): void {
  const t = timer as unknown as { ref?: () => void; unref?: () => void };
  if (keepAlive) t.ref?.();
  else t.unref?.();
}

const MAX_BACKOFF_MS = 1000;

export class Warmer implements ChangeListener, AsyncDisposable {
  readonly tracker: AccessTracker;
  readonly #warm: WarmFn;
  readonly #clock: () => number;
  readonly #predictions: number;
  readonly #rate: number;
  readonly #burst: number;
  readonly #batchSize: number;
  readonly #maxInFlight: number;
  readonly #maxQueue: number;
  readonly #recentMs: number;
  readonly #window: number;
  readonly #refreshUsers: number;
  /** Observed accesses and listings, not learned yet (learning happens in the loop, off the request path). */
  readonly #observations: Ring<Observation>;
  /** Learned visits waiting to be predicted from. */
  readonly #pending: Ring<TrackedVisit>;
  /** Questions waiting, oldest first (a re-predicted one moves to the back). */
  readonly #queue = new Map<string, WarmQuestion>();
  /** Question key → when it was last warmed or asked. */
  readonly #recent: Lru<number>;
  /** The latest visits (4 × refreshUsers), for the refresh after a change. */
  readonly #latest: Ring<TrackedVisit>;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  #idleWaiters: (() => void)[] = [];
  /** Times (clock) at which a change becomes visible and a refresh is due, ascending. */
  #refreshDue: number[] = [];
  /** Warm results and asks from before this instant predate a visible change: not "recent" any more. */
  #freshSince = Number.NEGATIVE_INFINITY;
  #tokens: number;
  #tokensAt: number;
  #timer: Timer | undefined;
  #timerDue = Number.POSITIVE_INFINITY;
  /** Consecutive timer wake-ups that found the clock not moved (a simulated clock): the wait doubles. */
  #stalls = 0;
  #stallClock = Number.NaN;
  #closing: Promise<void> | undefined;
  #observed = 0;
  #ignored = 0;
  #predicted = 0;
  #skippedRecent = 0;
  #warmed = 0;
  #batches = 0;
  #dropped = 0;
  #errors = 0;
  #lastError: string | undefined;
  #aborted = 0;
  #refreshes = 0;

  constructor(options: WarmerOptions) {
    const o = optionsObject(options, "warmer options");
    const warm = functionOption<WarmFn>("warm", o.warm);
    if (warm === undefined)
      throw new NexusError("invalid_argument", "warm must be a function, got undefined");
    this.#warm = warm;
    this.tracker =
      o.tracker instanceof AccessTracker
        ? o.tracker
        : new AccessTracker(o.tracker as AccessTrackerOptions | undefined);
    this.#clock = functionOption<() => number>("clock", o.clock) ?? Date.now;
    this.#predictions = positiveInteger("predictions", o.predictions, 16, 0);
    this.#rate = nonNegativeNumber("questionsPerSecond", o.questionsPerSecond, 1000);
    if (this.#rate === 0) {
      throw new NexusError(
        "invalid_argument",
        "questionsPerSecond must be > 0 (close the warmer to stop it)",
      );
    }
    this.#batchSize = positiveInteger("batchSize", o.batchSize, 32);
    this.#burst = positiveInteger("burst", o.burst, Math.max(128, this.#batchSize));
    this.#maxInFlight = positiveInteger("maxInFlight", o.maxInFlight, 2);
    this.#maxQueue = positiveInteger("maxQueue", o.maxQueue, 1024);
    const maxPending = positiveInteger("maxPendingAccesses", o.maxPendingAccesses, 1024);
    this.#observations = new Ring(maxPending);
    this.#pending = new Ring(maxPending);
    this.#recentMs = nonNegativeNumber("recentMs", o.recentMs, 5000);
    this.#recent = new Lru(positiveInteger("maxRecent", o.maxRecent, 20_000));
    this.#window = positiveInteger("quantizationWindowMs", o.quantizationWindowMs, 0, 0);
    this.#refreshUsers = positiveInteger("refreshUsers", o.refreshUsers, 16, 0);
    this.#latest = new Ring(Math.max(1, 4 * this.#refreshUsers));
    this.#tokens = this.#burst;
    this.#tokensAt = this.#clock();
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Takes note of an access just answered: a copy goes into a bounded ring, and the loop learns from it and
   * predicts what follows. Synchronous, O(1) (≈0.1 µs), never throws (a malformed access, or any after close(),
   * is ignored and counted): safe on the request path.
   */
  observe(access: Access): void {
    if (this.#closing !== undefined || !isAccessLike(access)) {
      this.#ignored++;
      return;
    }
    // Its plain answer is now cached (unless the request carried context or contextual tuples).
    const a = access as { context?: unknown; contextualTuples?: unknown };
    const plain = a.context === undefined && a.contextualTuples === undefined;
    // Copied (the caller may reuse the object); learning and predicting happen in the loop.
    this.#take({ access: questionOf(access, access.object), plain, at: this.#clock() });
  }

  /**
   * Takes note of a listing just answered (a filter over one directory's objects). Same guarantees as observe();
   * copies at most the first 256 objects.
   */
  observeListing(listing: Listing): void {
    if (
      this.#closing !== undefined ||
      typeof listing !== "object" ||
      listing === null ||
      !Array.isArray(listing.objects) ||
      !isAccessLike({ ...listing, object: listing.objects[0] })
    ) {
      this.#ignored++;
      return;
    }
    const copy: {
      user: string;
      relation: string;
      objects: string[];
      tenant?: string;
      subjectTenant?: string;
    } = {
      user: listing.user,
      relation: listing.relation,
      objects: listing.objects.slice(0, LISTING_PREFIX),
    };
    if (listing.tenant !== undefined) copy.tenant = listing.tenant;
    if (listing.subjectTenant !== undefined) copy.subjectTenant = listing.subjectTenant;
    this.#take({ listing: copy, at: this.#clock() });
  }

  /**
   * Resolves when the warmer has nothing it may do now: every observed access predicted, no warm call in flight,
   * and the queue empty or the rate budget spent (or the warmer closed). Work is started at once, not at the
   * next timer: with a simulated clock this makes warming deterministic between steps.
   */
  idle(): Promise<void> {
    if (this.#closing !== undefined) return Promise.resolve();
    this.#pump();
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      // Someone waits on the loop: its timer keeps the process alive until they are answered.
      if (this.#timer !== undefined) setKeepAlive(this.#timer, true);
    });
  }

  /** A change was committed: once it is visible (the next window), refresh what active users will ask. */
  onChanges(_changes: readonly StoredChange[], _watermark: Revision): void {
    this.#changed();
  }

  /** The feed lost track of changes: treat it as a change to everything. */
  onReset(_revision: Revision): void {
    this.#changed();
  }

  stats(): WarmerStats {
    return {
      observed: this.#observed,
      ignored: this.#ignored,
      predicted: this.#predicted,
      skippedRecent: this.#skippedRecent,
      warmed: this.#warmed,
      batches: this.#batches,
      dropped: this.#dropped,
      errors: this.#errors,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      aborted: this.#aborted,
      refreshes: this.#refreshes,
      queueLength: this.#queue.size,
      pendingAccesses: this.#observations.length + this.#pending.length,
      inFlight: this.#inFlight.size,
      tracker: this.tracker.stats(),
    };
  }

  /** Stops the loop, clears its timer, aborts the warm calls in flight and waits for them. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) this.#closing = this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stop.abort(new NexusError("closed", "the warmer is closed"));
    const dropped = this.#queue.size;
    this.#queue.clear();
    this.#pending.clear();
    this.#observations.clear();
    this.#recent.clear();
    this.#latest.clear();
    this.#refreshDue = [];
    this.#aborted += dropped;
    await Promise.allSettled([...this.#inFlight]);
    this.#settle();
  }

  #take(observation: Observation): void {
    this.#observed++;
    if (this.#observations.push(observation)) this.#dropped++;
    this.#schedule(0, observation.at);
  }

  /** Learns one observation (in the loop); queues it for prediction. */
  #learn(observation: Observation): void {
    let visit: TrackedVisit | undefined;
    try {
      if ("access" in observation) {
        if (observation.plain) this.#markRecent(warmKey(observation.access), observation.at);
        visit = this.tracker.visit(observation.access);
      } else {
        const listing = observation.listing;
        // A listing is a plain filter: every listed answer is now in the caches.
        for (const object of listing.objects) {
          if (typeof object === "string")
            this.#markRecent(warmKey(questionOf(listing, object)), observation.at);
        }
        visit = this.tracker.visitListing(listing);
      }
    } catch {
      this.#ignored++; // a caller's directoryOf threw: learning is best effort
      return;
    }
    if (visit === undefined) return;
    if (this.#refreshUsers > 0) this.#latest.push(visit);
    if (this.#predictions === 0) return;
    if (this.#pending.push(visit)) this.#dropped++;
  }

  #changed(): void {
    if (this.#closing !== undefined) return;
    const now = this.#clock();
    const window = this.#window;
    // Reads of the current window keep reading the old revision; the change shows from the next window on.
    const due = window > 0 ? Math.floor(now / window) * window + window : now;
    const list = this.#refreshDue;
    if (!list.includes(due)) {
      list.push(due);
      list.sort((a, b) => a - b);
      if (list.length > 16) list.shift(); // a later refresh covers the same users
    }
    this.#schedule(Math.max(0, due - now));
  }

  /** One step of the loop: due refreshes, predictions, then as many warm calls as the budget allows. */
  #pump(): void {
    if (this.#closing !== undefined) return;
    const now = this.#clock();
    for (let o = this.#observations.shift(); o !== undefined; o = this.#observations.shift()) this.#learn(o);
    this.#refresh(now);
    for (let visit = this.#pending.shift(); visit !== undefined; visit = this.#pending.shift()) {
      const questions = this.tracker.predictVisit(visit, this.#predictions);
      this.#predicted += questions.length;
      for (const q of questions) this.#enqueue(q, now);
    }
    this.#refill(now);
    while (this.#queue.size > 0 && this.#inFlight.size < this.#maxInFlight && this.#tokens >= 1) {
      const n = Math.min(this.#batchSize, Math.floor(this.#tokens), this.#queue.size);
      const batch: WarmQuestion[] = [];
      for (const [key, q] of this.#queue) {
        this.#queue.delete(key);
        if (this.#isRecent(key, now)) {
          this.#skippedRecent++;
          continue;
        }
        this.#markRecent(key, now);
        batch.push(q);
        if (batch.length === n) break;
      }
      if (batch.length === 0) continue;
      this.#tokens -= batch.length;
      this.#start(batch);
    }
    this.#scheduleNext(now);
    this.#settle();
  }

  #refresh(now: number): void {
    const due = this.#refreshDue;
    if (due.length === 0 || due[0]! > now) return;
    let visibleFrom = due[0]!;
    while (due.length > 0 && due[0]! <= now) visibleFrom = due.shift()!;
    this.#refreshes++;
    if (visibleFrom > this.#freshSince) this.#freshSince = visibleFrom;
    // The last visit of each of the most recently active users, latest first: their next request is the nearest.
    const users = new Set<string>();
    const visits: TrackedVisit[] = [];
    for (const visit of this.#latest.newestFirst()) {
      if (users.has(visit.userKey)) continue;
      users.add(visit.userKey);
      visits.push(visit);
      if (visits.length === this.#refreshUsers) break;
    }
    for (const visit of visits) {
      this.#enqueue(visit.question, now);
      // As a single access: a listing's directory contents are re-warmed as its siblings.
      if (this.#predictions > 0 && this.#pending.push({ ...visit, listing: false })) this.#dropped++;
    }
  }

  #enqueue(q: WarmQuestion, now: number): void {
    const key = warmKey(q);
    if (this.#isRecent(key, now)) {
      this.#skippedRecent++;
      return;
    }
    this.#queue.delete(key);
    this.#queue.set(key, q);
    if (this.#queue.size > this.#maxQueue) {
      this.#queue.delete(this.#queue.keys().next().value as string);
      this.#dropped++;
    }
  }

  #isRecent(key: string, now: number): boolean {
    const at = this.#recent.peek(key);
    return at !== undefined && at >= this.#freshSince && now - at < this.#recentMs;
  }

  #markRecent(key: string, now: number): void {
    if (this.#recentMs > 0) this.#recent.set(key, now);
  }

  #refill(now: number): void {
    if (this.#rate === Number.POSITIVE_INFINITY) {
      this.#tokens = this.#burst;
    } else if (now > this.#tokensAt) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#tokensAt) * this.#rate) / 1000);
    }
    this.#tokensAt = now;
  }

  #start(batch: WarmQuestion[]): void {
    const signal = this.#stop.signal;
    const run = async (): Promise<void> => {
      try {
        await this.#warm(batch, signal);
        if (signal.aborted) this.#aborted += batch.length;
        else this.#warmed += batch.length;
      } catch (error) {
        if (signal.aborted) {
          this.#aborted += batch.length;
        } else {
          this.#errors++;
          this.#lastError = error instanceof Error ? error.message : String(error);
          for (const q of batch) this.#recent.delete(warmKey(q)); // not warm: may be tried again
        }
      }
    };
    this.#batches++;
    const done: Promise<void> = run().then(() => {
      this.#inFlight.delete(done);
      if (this.#closing !== undefined) return;
      // Someone is draining: go on at once. Otherwise yield to the event loop between batches.
      if (this.#idleWaiters.length > 0) this.#pump();
      else this.#schedule(0);
    });
    this.#inFlight.add(done);
  }

  /** Wakes the loop for what remains: a token for the queue, or the next refresh. */
  #scheduleNext(now: number): void {
    let delay = Number.POSITIVE_INFINITY;
    if (this.#pending.length > 0 || this.#observations.length > 0) delay = 0;
    else if (this.#queue.size > 0 && this.#inFlight.size < this.#maxInFlight) {
      delay = Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#rate));
    }
    const due = this.#refreshDue[0];
    if (due !== undefined) delay = Math.min(delay, Math.max(0, due - now));
    if (delay !== Number.POSITIVE_INFINITY) this.#schedule(delay);
  }

  /** Arms the one timer to fire within `delay` ms (an earlier armed one stays). */
  #schedule(delay: number, now = this.#clock()): void {
    if (this.#closing !== undefined) return;
    // A clock that does not move between wake-ups (simulated time) would make a budget wait spin: back off.
    const wait = delay > 0 && this.#stalls > 0 ? Math.min(MAX_BACKOFF_MS, delay * 2 ** this.#stalls) : delay;
    const due = now + wait;
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return;
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    this.#stallClock = now;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Number.POSITIVE_INFINITY;
      const at = this.#clock();
      this.#stalls = wait > 0 && at === this.#stallClock ? Math.min(this.#stalls + 1, 10) : 0;
      this.#pump();
    }, wait);
    setKeepAlive(this.#timer, this.#idleWaiters.length > 0);
  }

  #isIdle(): boolean {
    if (this.#closing !== undefined) return true;
    if (this.#pending.length > 0 || this.#observations.length > 0 || this.#inFlight.size > 0) return false;
    const due = this.#refreshDue[0];
    if (due !== undefined && due <= this.#clock()) return false;
    return this.#queue.size === 0 || this.#tokens < 1;
  }

  #settle(): void {
    if (this.#idleWaiters.length === 0 || !this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
    if (this.#timer !== undefined) setKeepAlive(this.#timer, false);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Warming through a check chain

/** What warming needs of a check chain (CheckChain has both). */
export interface WarmTarget {
  checkMany(requests: readonly WarmQuestion[], options?: { signal?: AbortSignal }): Promise<unknown>;
  filter(
    request: {
      user: string;
      relation: string;
      objects: readonly string[];
      tenant?: string;
      subjectTenant?: string;
    },
    options?: { signal?: AbortSignal },
  ): Promise<unknown>;
}

export interface WarmThroughOptions {
  /**
   * "filter" (default): one filter per (tenants, user, relation, object type), which materialises the Tiger
   * bitmap when that layer is on and otherwise checks the objects as one batch (filling the result cache).
   * "checkMany": one batch of checks (result cache only).
   */
  readonly via?: "filter" | "checkMany";
}

/**
 * The warm function for a chain: questions go through its public entry points, so warmed answers land in its
 * result cache and Tiger bitmaps, and are exactly what the chain would answer. A failing group does not stop
 * the others; the first failure is rethrown once all have settled (the warmer counts it).
 */
export function warmThrough(target: WarmTarget, options: WarmThroughOptions = {}): WarmFn {
  const via = options.via ?? "filter";
  if (via !== "filter" && via !== "checkMany") {
    throw new NexusError("invalid_argument", `via must be "filter" or "checkMany", got ${describe(via)}`);
  }
  if (via === "checkMany") return (questions, signal) => target.checkMany(questions, { signal });
  return async (questions, signal) => {
    const groups = new Map<string, { first: WarmQuestion; objects: Set<string> }>();
    for (const q of questions) {
      const tenant = q.tenant ?? DEFAULT_TENANT;
      const type = q.object.slice(0, q.object.indexOf(":"));
      const key = tenant + SEP + (q.subjectTenant ?? tenant) + SEP + q.user + SEP + q.relation + SEP + type;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, { first: q, objects: new Set([q.object]) });
      else group.objects.add(q.object);
    }
    const settled = await Promise.allSettled(
      [...groups.values()].map(({ first, objects }) =>
        target.filter(
          {
            user: first.user,
            relation: first.relation,
            objects: [...objects],
            ...(first.tenant !== undefined ? { tenant: first.tenant } : {}),
            ...(first.subjectTenant !== undefined ? { subjectTenant: first.subjectTenant } : {}),
          },
          { signal },
        ),
      ),
    );
    for (const s of settled) if (s.status === "rejected") throw s.reason;
  };
}
