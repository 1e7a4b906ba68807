/**
 * The changes the Tiger layer has been delivered by the change feed, kept so that a bitmap exact at an older
 * revision can be brought forward by re-checking only what the changes since then can affect. Bounded: beyond
 * `max` changes the older half is dropped and `floor` moves up; a bitmap older than `floor` cannot learn what
 * changed since it and is re-materialised instead.
 *
 * A change is kept as its tuple (which the store holds anyway) and one number, its revision and kind, not as the
 * feed's StoredChange object: those objects lived on here only (16,384-32,768 of them, 48 bytes each beside the
 * list's slot, about 15 bytes a tuple after a 100k-tuple load), and `between`, asked only when a bitmap is brought
 * forward, makes them again.
 */
import type { RelationTuple } from "../../tuples/tuple.js";
import type { Revision, StoredChange } from "../../tuples/types.js";

/** A change's kind, packed with its revision into one number (revision * OPS + kind). */
const WRITE = 0;
const DELETE = 1;
const EXPIRED = 2;
const OPS = 4;

const markOf = (c: StoredChange): number =>
  c.revision * OPS + (c.op === "write" ? WRITE : c.expired === true ? EXPIRED : DELETE);

/** Changes delivered by the feed, in revision order, bounded; every change after `floor` is in it. */
export class ChangeLog {
  floor: Revision = 0;
  readonly #max: number;
  #tuples: RelationTuple[] = [];
  /** Per change: its revision * OPS + its kind. */
  #marks: number[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#tuples.length;
  }

  append(changes: readonly StoredChange[]): void {
    const tuples = this.#tuples;
    const marks = this.#marks;
    const total = tuples.length + changes.length;
    if (total <= this.#max) {
      for (let i = 0; i < changes.length; i++) {
        const change = changes[i]!;
        tuples.push(change.tuple);
        marks.push(markOf(change));
      }
      return;
    }
    // Past the bound: keep the newer half of held + changes, copying only what is kept (a load's pages of 10,000
    // were pushed one by one and then mostly sliced away again). The floor moves to the newest dropped change's
    // revision.
    const drop = total - (this.#max >>> 1);
    const newestDropped =
      drop <= tuples.length
        ? Math.floor(marks[drop - 1]! / OPS)
        : changes[drop - tuples.length - 1]!.revision;
    this.floor = Math.max(this.floor, newestDropped);
    // Copied by push into new arrays, never sliced or concatenated: the log then always has one kind of array
    // (a holey one made the optimised append and record deoptimise on the next page).
    const keptTuples: RelationTuple[] = [];
    const keptMarks: number[] = [];
    for (let i = drop; i < tuples.length; i++) {
      keptTuples.push(tuples[i]!);
      keptMarks.push(marks[i]!);
    }
    for (let i = Math.max(0, drop - tuples.length); i < changes.length; i++) {
      const change = changes[i]!;
      keptTuples.push(change.tuple);
      keptMarks.push(markOf(change));
    }
    this.#tuples = keptTuples;
    this.#marks = keptMarks;
  }

  /** Forgets every change: from now on the log knows only changes after `revision`. */
  reset(revision: Revision): void {
    this.#tuples = [];
    this.#marks = [];
    this.floor = revision;
  }

  /** Changes with low < revision ≤ high. */
  between(low: Revision, high: Revision): StoredChange[] {
    const tuples = this.#tuples;
    const marks = this.#marks;
    // A mark below (low + 1) * OPS is a change at a revision ≤ low.
    const after = (low + 1) * OPS;
    const through = (high + 1) * OPS;
    let lo = 0;
    let hi = marks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (marks[mid]! < after) lo = mid + 1;
      else hi = mid;
    }
    const out: StoredChange[] = [];
    for (let i = lo; i < marks.length && marks[i]! < through; i++) {
      const mark = marks[i]!;
      const kind = mark % OPS;
      const revision = (mark - kind) / OPS;
      const tuple = tuples[i]!;
      out.push(
        kind === WRITE
          ? { revision, op: "write", tuple }
          : kind === EXPIRED
            ? { revision, op: "delete", tuple, expired: true }
            : { revision, op: "delete", tuple },
      );
    }
    return out;
  }
}
