/**
 * The access tracker: a navigation model learned from the accesses it is shown, in bounded memory.
 *   (a) directory transitions: for objects whose id is a path (`file:/a/b/c.txt`, directory `file:/a/b`), an
 *       order-1 Markov table "next directory given the current one", per user and shared by all users of a
 *       tenant (a user's own counts, smoothed towards everyone's);
 *   (b) siblings: the objects seen in each directory (and, optionally, a caller's directory lister): an access
 *       to a file predicts the other files of its directory, a predicted directory predicts its contents.
 * `predict(access, k)` returns the k questions most likely to come next. Every table is an LRU or a space-saving
 * counter row, so memory stays within the bounds in AccessTrackerOptions whatever the traffic.
 */

import { DEFAULT_TENANT } from "../../tuples/tuple.js";
import { Lru } from "./lru.js";
import { functionOption, nonNegativeNumber, optionsObject, positiveInteger } from "./options.js";
import {
  type Access,
  accessOf,
  directoryKey,
  type Listing,
  listingOf,
  pathDirectory,
  questionOf,
  type TrackedVisit,
  userKeyOf,
  type WarmQuestion,
} from "./questions.js";

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

/** Predictions up to this many are told apart by a scan of those taken; more, by a Set. */
const LINEAR_TAKEN = 32;

/**
 * Adds `object` to `out` unless it is the visit's own object or already there (in `taken` when given, which it
 * then joins); returns how many `out` holds.
 */
function take(object: string, self: string, out: string[], taken: Set<string> | undefined): number {
  if (object === self) return out.length;
  if (taken === undefined) {
    if (out.includes(object)) return out.length;
  } else {
    if (taken.has(object)) return out.length;
    taken.add(object);
  }
  return out.push(object);
}

const byScore = (a: Group, b: Group): number => b.score - a.score;

/** A directory to predict from, scored against the others. */
interface Group {
  readonly score: number;
  readonly directory: string;
  /** A next directory: the directory itself is predicted first (siblings' directory: not). */
  readonly withSelf: boolean;
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
  /** Scratch: a directory's seen objects while predicting. */
  readonly #keys: string[] = [];
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

  /**
   * Whether anything can be predicted: a directory learned, or a lister to ask. Until then the warmer need not
   * note what was asked (no prediction can repeat it).
   */
  canPredict(): boolean {
    return this.#directories.size > 0 || this.#listDirectory !== undefined;
  }

  /** Forgets everything learned. */
  clear(): void {
    this.#users.clear();
    this.#directories.clear();
  }

  /** @internal Learns one (validated) access; returns what predictions start from (undefined: no directory). */
  visit(access: Access): TrackedVisit | undefined {
    return this.visitAccess(access.user, access.relation, access.object, access.tenant, access.subjectTenant);
  }

  /**
   * @internal visit() on an access's fields: an object without a directory (nothing to learn) costs its
   * directoryOf call and no allocation.
   */
  visitAccess(
    user: string,
    relation: string,
    object: string,
    tenant: string | undefined,
    subjectTenant: string | undefined,
  ): TrackedVisit | undefined {
    const directory = this.#directoryOf(object);
    if (directory === undefined) return undefined;
    const question: {
      user: string;
      relation: string;
      object: string;
      tenant?: string;
      subjectTenant?: string;
    } = { user, relation, object };
    if (tenant !== undefined) question.tenant = tenant;
    if (subjectTenant !== undefined) question.subjectTenant = subjectTenant;
    const userKey = userKeyOf(question);
    const t = tenant ?? DEFAULT_TENANT;
    this.#see(t, directory, object);
    this.#moveTo(t, userKey, directory);
    return { question, tenant: t, userKey, directory, listing: false };
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
    const objects: string[] = [];
    this.predictObjects(visit, k, objects);
    return objects.map((object) => questionOf(visit.question, object));
  }

  /**
   * @internal predictVisit's objects (each asked as the visit's question is), into `out` (emptied first): the
   * warmer queues them without a question object each. Returns how many.
   */
  predictObjects(visit: TrackedVisit, k: number, out: string[]): number {
    out.length = 0;
    if (!(k > 0)) return 0;
    const { tenant, directory } = visit;
    const groups: Group[] = [];
    const shared = this.#directories.peek(directoryKey(tenant, directory))?.next;
    const own = this.#users.peek(visit.userKey)?.rows?.peek(directory);
    // Next directories: the user's own, then everyone's (each once).
    if (own !== undefined) for (const next of own.keys) this.#scoreNext(groups, next, own, shared);
    if (shared !== undefined) {
      for (const next of shared.keys) {
        if (own === undefined || !own.keys.includes(next)) this.#scoreNext(groups, next, own, shared);
      }
    }
    if (!visit.listing && this.#siblingScore > 0) {
      groups.push({ score: this.#siblingScore, directory, withSelf: false });
    }
    groups.sort(byScore);
    const self = visit.question.object;
    const taken = k > LINEAR_TAKEN ? new Set<string>() : undefined;
    const keys = this.#keys;
    try {
      for (const group of groups) {
        if (group.withSelf && take(group.directory, self, out, taken) >= k) break;
        // The objects seen there (most recent first), then the caller's lister's.
        const seen = this.#directories.peek(directoryKey(tenant, group.directory))?.seen;
        if (seen !== undefined) {
          seen.keysByRecency(keys);
          for (const object of keys) if (take(object, self, out, taken) >= k) return out.length;
        }
        const listed = this.#listDirectory?.(group.directory, tenant);
        if (listed !== undefined) {
          for (const o of listed)
            if (typeof o === "string" && take(o, self, out, taken) >= k) return out.length;
        }
      }
      return out.length;
    } finally {
      keys.length = 0; // let the strings go
    }
  }

  /** Adds `next` as a group when this user is likely enough to go there (own count smoothed towards shared). */
  #scoreNext(groups: Group[], next: string, own: Row | undefined, shared: Row | undefined): void {
    const w = this.#sharedWeight;
    const sharedShare = shared !== undefined && shared.total > 0 ? shared.count(next) / shared.total : 0;
    const p =
      own !== undefined && own.total > 0
        ? (own.count(next) + w * sharedShare) / (own.total + w)
        : sharedShare;
    if (p >= this.#minProbability && p > 0) groups.push({ score: p, directory: next, withSelf: true });
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
