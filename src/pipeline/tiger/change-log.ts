/**
 * The changes the Tiger layer has been delivered by the change feed, kept so that a bitmap exact at an older
 * revision can be brought forward by re-checking only what the changes since then can affect. Bounded: beyond
 * `max` changes the older half is dropped and `floor` moves up; a bitmap older than `floor` cannot learn what
 * changed since it and is re-materialised instead.
 */
import type { Revision, StoredChange } from "../../tuples/types.js";

/** Changes delivered by the feed, in revision order, bounded; every change after `floor` is in it. */
export class ChangeLog {
  floor: Revision = 0;
  readonly #max: number;
  #changes: StoredChange[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#changes.length;
  }

  append(changes: readonly StoredChange[]): void {
    for (const c of changes) this.#changes.push(c);
    if (this.#changes.length > this.#max) {
      // Drop the older half; the floor moves to the newest dropped change's revision.
      const drop = this.#changes.length - (this.#max >>> 1);
      this.floor = Math.max(this.floor, this.#changes[drop - 1]!.revision);
      this.#changes = this.#changes.slice(drop);
    }
  }

  /** Forgets every change: from now on the log knows only changes after `revision`. */
  reset(revision: Revision): void {
    this.#changes = [];
    this.floor = revision;
  }

  /** Changes with low < revision ≤ high. */
  between(low: Revision, high: Revision): StoredChange[] {
    const changes = this.#changes;
    let lo = 0;
    let hi = changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (changes[mid]!.revision <= low) lo = mid + 1;
      else hi = mid;
    }
    const out: StoredChange[] = [];
    for (let i = lo; i < changes.length && changes[i]!.revision <= high; i++) out.push(changes[i]!);
    return out;
  }
}
