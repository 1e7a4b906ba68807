/**
 * The in-memory store's changelog and commit times. The changelog keeps at most `maxEntries` changes, none older
 * than `maxAgeMs` (the latest revision's changes are always kept), and drops whole revisions only, so a retained
 * revision is always complete; asking for changes after a revision it no longer covers is "invalid_token" with
 * reason "beyond_retention" (the gap can no longer be filled). Commit times map a time to the revision current then
 * (revisionAt); they are kept for as long as a snapshot or the changelog may be asked about.
 */
import { NexusError } from "../util/errors.js";
import { lastAtOrBefore } from "../util/sorted.js";
import type { RelationTuple } from "./tuple.js";
import type { ChangeOp, Revision, StoredChange } from "./types.js";

export interface ChangelogLimits {
  readonly maxEntries: number;
  readonly maxAgeMs: number;
  /** Commit times are kept for this long too (old versions stay readable for it). */
  readonly snapshotRetentionMs: number;
}

/** The retained changelog and commit times, as a checkpoint holds them. */
export interface ChangelogState {
  readonly changes: readonly StoredChange[];
  readonly changelogFloor: Revision;
  readonly commits: readonly { readonly revision: Revision; readonly time: number }[];
}

/** A change's kind, packed with its revision into one number per run of changes (revision * 4 + op). */
const WRITE = 0;
const DELETE = 1;
const EXPIRED = 2;
const OPS = 4;

export class Changelog {
  readonly #limits: ChangelogLimits;
  /**
   * The changes: their tuples (the same objects the version index holds), in order, and the runs they fall into,
   * a run being consecutive changes of one revision and kind: where it starts in #tuples and its revision * 4 + op.
   * A write is one run or a few (its deletes, its writes), so a change costs its slot in #tuples and nothing more
   * (a number per change was 8-12 bytes a tuple of a load). A StoredChange object is made only when a reader asks
   * for the change.
   */
  #tuples: RelationTuple[] = [];
  #runStarts: number[] = [];
  #runMeta: number[] = [];
  #changesHead = 0;
  /** The run #changesHead is in (trim drops whole revisions, so it starts there), or #runMeta.length. */
  #runsHead = 0;
  /** Changes with revision ≤ this are no longer retained. */
  #floor: Revision = 0;
  /** (revision, commit time), ascending; trimmed to what revisionAt can be asked. */
  #commits: { revision: Revision; time: number }[] = [];
  #commitsHead = 0;

  constructor(limits: ChangelogLimits) {
    this.#limits = limits;
  }

  /** Records a change at `revision` (not before the last one recorded). */
  push(revision: Revision, op: ChangeOp, tuple: RelationTuple, expired = false): void {
    const meta = revision * OPS + (op === "write" ? WRITE : expired ? EXPIRED : DELETE);
    const runs = this.#runMeta.length;
    if (runs === this.#runsHead || this.#runMeta[runs - 1] !== meta) {
      this.#runStarts.push(this.#tuples.length);
      this.#runMeta.push(meta);
    }
    this.#tuples.push(tuple);
  }

  /** The run change `i` is in (binary search: the last run starting at or before it). */
  #runOf(i: number): number {
    return lastAtOrBefore(this.#runStarts, i, this.#runsHead);
  }

  #revisionOf(i: number): Revision {
    return Math.floor(this.#runMeta[this.#runOf(i)]! / OPS);
  }

  /**
   * Changes [from, to) as StoredChange objects. One loop with nothing called per change: a load reads each of its
   * large revisions once, mostly before the loop is optimized.
   */
  #page(from: number, to: number): StoredChange[] {
    const page: StoredChange[] = new Array(to - from);
    if (from >= to) return page;
    const starts = this.#runStarts;
    const metas = this.#runMeta;
    const tuples = this.#tuples;
    let run = this.#runOf(from);
    let runEnd = run + 1 < starts.length ? starts[run + 1]! : tuples.length;
    let op = metas[run]! % OPS;
    let revision = (metas[run]! - op) / OPS;
    for (let i = from; i < to; i++) {
      if (i === runEnd) {
        run++;
        runEnd = run + 1 < starts.length ? starts[run + 1]! : tuples.length;
        op = metas[run]! % OPS;
        revision = (metas[run]! - op) / OPS;
      }
      page[i - from] =
        op === WRITE
          ? { revision, op: "write", tuple: tuples[i]! }
          : op === EXPIRED
            ? { revision, op: "delete", tuple: tuples[i]!, expired: true }
            : { revision, op: "delete", tuple: tuples[i]! };
    }
    return page;
  }

  /** Records that `revision` was committed at `time` (never earlier than the commit before it). */
  commit(revision: Revision, time: number): void {
    const lastTime =
      this.#commits.length > this.#commitsHead ? this.#commits[this.#commits.length - 1]!.time : 0;
    this.#commits.push({ revision, time: Math.max(time, lastTime) });
  }

  /**
   * The changes after `after` (whole revisions, at least `limit` changes when there are that many).
   * @throws NexusError "invalid_token" (reason "beyond_retention") when they are no longer retained.
   */
  after(after: Revision, limit: number): StoredChange[] {
    if (after < this.#floor) {
      throw new NexusError(
        "invalid_token",
        `changes after revision ${after} are no longer retained (the changelog starts after revision ${this.#floor})`,
        { revision: after, floor: this.#floor, reason: "beyond_retention" },
      );
    }
    const length = this.#tuples.length;
    const start = this.#firstAfter(this.#changesHead, after);
    // Never split a revision: extend the page to the end of its last revision.
    let end = Math.min(length, start + Math.max(1, limit));
    if (end < length && end > start) end = this.#firstAfter(end, this.#revisionOf(end - 1));
    // Nothing new (a feed's poll between writes, the most frequent call) is answered here: #page, optimized on
    // those calls alone, had no type feedback past its empty case and was deoptimized by the next real page (a
    // load's second write).
    if (start >= end) return [];
    return this.#page(start, end);
  }

  /** The first change at or after index `from` whose revision is past `revision` (binary search of the runs). */
  #firstAfter(from: number, revision: Revision): number {
    const metas = this.#runMeta;
    let lo = this.#runsHead;
    let hi = metas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Math.floor(metas[mid]! / OPS) <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo === metas.length ? this.#tuples.length : Math.max(from, this.#runStarts[lo]!);
  }

  /** The revision current at `timeMs` (`current` when no commit time is kept). */
  revisionAt(timeMs: number, current: Revision): Revision {
    const commits = this.#commits;
    let lo = this.#commitsHead;
    let hi = commits.length;
    if (lo === hi) return current;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (commits[mid]!.time <= timeMs) lo = mid + 1;
      else hi = mid;
    }
    // lo - 1 is the last commit at or before timeMs; before the first retained commit, clamp to it (older
    // states may be collected already) unless the store's whole history is retained.
    if (lo === this.#commitsHead) return this.#commitsHead === 0 ? 0 : commits[this.#commitsHead]!.revision;
    return commits[lo - 1]!.revision;
  }

  /** Drops what the limits no longer keep, as of `now` with `current` the latest revision. */
  trim(now: number, current: Revision): void {
    // Changelog: at most maxEntries changes, none older than maxAge.
    const length = this.#tuples.length;
    const ageFloor = this.revisionAt(now - this.#limits.maxAgeMs, current);
    while (this.#changesHead < length) {
      const oldest = this.#revisionOf(this.#changesHead);
      const tooMany = length - this.#changesHead > this.#limits.maxEntries;
      if (!tooMany && (oldest > ageFloor || oldest === current)) break;
      // Drop a whole revision at a time, so a retained revision is always complete. Its end by binary search and
      // its tuples let go by one fill: a load's revisions are 10,000 changes each, which a loop here walked one by one.
      const end = this.#firstAfter(this.#changesHead, oldest);
      this.#tuples.fill(undefined as unknown as RelationTuple, this.#changesHead, end); // let the tuples go
      this.#changesHead = end;
      this.#runsHead = end === length ? this.#runMeta.length : this.#runOf(end);
      this.#floor = oldest;
    }
    if (this.#changesHead > 1024 && this.#changesHead * 2 > length) {
      const head = this.#changesHead;
      this.#tuples = this.#tuples.slice(head);
      this.#runStarts = this.#runStarts.slice(this.#runsHead).map((start) => start - head);
      this.#runMeta = this.#runMeta.slice(this.#runsHead);
      this.#changesHead = 0;
      this.#runsHead = 0;
    }

    // Commit times: keep those within the retention window plus the one just before it.
    const windowStart = now - Math.max(this.#limits.snapshotRetentionMs, this.#limits.maxAgeMs);
    const commits = this.#commits;
    while (commits.length - this.#commitsHead > 1 && commits[this.#commitsHead + 1]!.time <= windowStart) {
      this.#commitsHead++;
    }
    if (this.#commitsHead > 1024 && this.#commitsHead * 2 > commits.length) {
      this.#commits = commits.slice(this.#commitsHead);
      this.#commitsHead = 0;
    }
  }

  /** The retained changes and commit times (copies of the lists). */
  exportState(): ChangelogState {
    return {
      changes: this.#page(this.#changesHead, this.#tuples.length),
      changelogFloor: this.#floor,
      commits: this.#commits.slice(this.#commitsHead),
    };
  }

  /** Continues from `state` (a fresh changelog only). */
  restoreState(state: ChangelogState): void {
    this.#tuples = [];
    this.#runStarts = [];
    this.#runMeta = [];
    this.#changesHead = 0;
    this.#runsHead = 0;
    for (const c of state.changes) this.push(c.revision, c.op, c.tuple, c.expired === true);
    this.#floor = state.changelogFloor;
    this.#commits = [...state.commits];
    this.#commitsHead = 0;
  }

  clear(): void {
    this.#tuples = [];
    this.#runStarts = [];
    this.#runMeta = [];
    this.#changesHead = 0;
    this.#runsHead = 0;
    this.#commits = [];
    this.#commitsHead = 0;
  }
}
