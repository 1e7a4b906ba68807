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
    const held = this.#changes;
    const total = held.length + changes.length;
    if (total <= this.#max) {
      for (let i = 0; i < changes.length; i++) held.push(changes[i]!);
      return;
    }
    // Past the bound: keep the newer half of held + changes, copying only what is kept (a load's pages of 10,000
    // were pushed one by one and then mostly sliced away again). The floor moves to the newest dropped change's
    // revision.
    const drop = total - (this.#max >>> 1);
    const newestDropped = drop <= held.length ? held[drop - 1]! : changes[drop - held.length - 1]!;
    this.floor = Math.max(this.floor, newestDropped.revision);
    // Copied by push into a new array, never sliced or concatenated from a page: the log then always has one
    // kind of array (a page's, holey, made the optimised append and record deoptimise on the next page).
    const kept: StoredChange[] = [];
    for (let i = drop; i < held.length; i++) kept.push(held[i]!);
    for (let i = Math.max(0, drop - held.length); i < changes.length; i++) kept.push(changes[i]!);
    this.#changes = kept;
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
