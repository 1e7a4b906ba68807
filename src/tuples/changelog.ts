/**
 * The in-memory store's changelog and commit times. The changelog keeps at most `maxEntries` changes, none older
 * than `maxAgeMs` (the latest revision's changes are always kept), and drops whole revisions only, so a retained
 * revision is always complete; asking for changes after a revision it no longer covers is "invalid_token" with
 * reason "beyond_retention" (the gap can no longer be filled). Commit times map a time to the revision current then
 * (revisionAt); they are kept for as long as a snapshot or the changelog may be asked about.
 */
import { NexusError } from "../util/errors.js";
import type { Revision, StoredChange } from "./types.js";

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

export class Changelog {
  readonly #limits: ChangelogLimits;
  #changes: StoredChange[] = [];
  #changesHead = 0;
  /** Changes with revision ≤ this are no longer retained. */
  #floor: Revision = 0;
  /** (revision, commit time), ascending; trimmed to what revisionAt can be asked. */
  #commits: { revision: Revision; time: number }[] = [];
  #commitsHead = 0;

  constructor(limits: ChangelogLimits) {
    this.#limits = limits;
  }

  push(change: StoredChange): void {
    this.#changes.push(change);
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
    // Binary search the first change after `after`.
    let lo = this.#changesHead;
    let hi = this.#changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#changes[mid]!.revision <= after) lo = mid + 1;
      else hi = mid;
    }
    // Never split a revision: extend the page to the end of its last revision.
    let end = Math.min(this.#changes.length, lo + Math.max(1, limit));
    while (end < this.#changes.length && this.#changes[end]!.revision === this.#changes[end - 1]!.revision)
      end++;
    return this.#changes.slice(lo, end);
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
    const changes = this.#changes;
    const ageFloor = this.revisionAt(now - this.#limits.maxAgeMs, current);
    while (this.#changesHead < changes.length) {
      const oldest = changes[this.#changesHead]!;
      const tooMany = changes.length - this.#changesHead > this.#limits.maxEntries;
      if (!tooMany && (oldest.revision > ageFloor || oldest.revision === current)) break;
      // Drop a whole revision at a time, so a retained revision is always complete.
      const rev = oldest.revision;
      while (this.#changesHead < changes.length && changes[this.#changesHead]!.revision === rev)
        this.#changesHead++;
      this.#floor = rev;
    }
    if (this.#changesHead > 1024 && this.#changesHead * 2 > changes.length) {
      this.#changes = changes.slice(this.#changesHead);
      this.#changesHead = 0;
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
      changes: this.#changes.slice(this.#changesHead),
      changelogFloor: this.#floor,
      commits: this.#commits.slice(this.#commitsHead),
    };
  }

  /** Continues from `state` (a fresh changelog only). */
  restoreState(state: ChangelogState): void {
    this.#changes = [...state.changes];
    this.#changesHead = 0;
    this.#floor = state.changelogFloor;
    this.#commits = [...state.commits];
    this.#commitsHead = 0;
  }

  clear(): void {
    this.#changes = [];
    this.#changesHead = 0;
    this.#commits = [];
    this.#commitsHead = 0;
  }
}
