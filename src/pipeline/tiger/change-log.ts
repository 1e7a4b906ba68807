/**
 * The changes the Tiger layer has been delivered by the change feed, kept so that a bitmap exact at an older
 * revision can be brought forward by re-checking only what the changes since then can affect. Bounded: beyond
 * `max` changes the older half is dropped and `floor` moves up; a bitmap older than `floor` cannot learn what
 * changed since it and is re-materialised instead.
 *
 * A change is kept as its tuple (which the store holds anyway), in runs of one revision and kind (a write's
 * changes are one run or a few), not as the feed's StoredChange object: those objects lived on here only
 * (16,384-32,768 of them, 48 bytes each beside the list's slot, about 15 bytes a tuple after a 100k-tuple load).
 * `between`, asked only when a bitmap is brought forward, makes them again.
 */
import type { RelationTuple } from "../../tuples/tuple.js";
import type { Revision, StoredChange } from "../../tuples/types.js";
import { lastAtOrBefore } from "../../util/sorted.js";

/** A run's kind, packed with its revision into one number (revision * OPS + kind). */
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
  /** Per run: where it starts in #tuples, and its revision * OPS + kind. */
  #runStarts: number[] = [];
  #runMarks: number[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#tuples.length;
  }

  append(changes: readonly StoredChange[]): void {
    const held = this.#tuples.length;
    const total = held + changes.length;
    if (total <= this.#max) {
      pushRuns(this.#tuples, this.#runStarts, this.#runMarks, changes, 0);
      return;
    }
    // Past the bound: keep the newer half of held + changes, copying only what is kept (a load's pages of 10,000
    // were pushed one by one and then mostly sliced away again). The floor moves to the newest dropped change's
    // revision.
    const drop = total - (this.#max >>> 1);
    const newestDropped =
      drop <= held
        ? Math.floor(this.#runMarks[this.#runOf(drop - 1)]! / OPS)
        : changes[drop - held - 1]!.revision;
    this.floor = Math.max(this.floor, newestDropped);
    // Copied by push into new arrays, never sliced or concatenated: the log then always has one kind of array
    // (a holey one made the optimised append and record deoptimise on the next page).
    const tuples: RelationTuple[] = [];
    const starts: number[] = [];
    const marks: number[] = [];
    if (drop < held) {
      const first = this.#runOf(drop);
      starts.push(0);
      marks.push(this.#runMarks[first]!);
      for (let r = first + 1; r < this.#runMarks.length; r++) {
        starts.push(this.#runStarts[r]! - drop);
        marks.push(this.#runMarks[r]!);
      }
      for (let i = drop; i < held; i++) tuples.push(this.#tuples[i]!);
    }
    pushRuns(tuples, starts, marks, changes, Math.max(0, drop - held));
    this.#tuples = tuples;
    this.#runStarts = starts;
    this.#runMarks = marks;
  }

  /** Forgets every change: from now on the log knows only changes after `revision`. */
  reset(revision: Revision): void {
    this.#tuples = [];
    this.#runStarts = [];
    this.#runMarks = [];
    this.floor = revision;
  }

  /**
   * Changes through `revision` were delivered and not kept: the log forgets what it held and knows only changes
   * after `revision` (its floor never moves down).
   */
  skip(revision: Revision): void {
    if (this.#tuples.length > 0) this.reset(Math.max(this.floor, revision));
    else if (revision > this.floor) this.floor = revision;
  }

  /** Changes with low < revision ≤ high. */
  between(low: Revision, high: Revision): StoredChange[] {
    const marks = this.#runMarks;
    const starts = this.#runStarts;
    const tuples = this.#tuples;
    // A mark below (low + 1) * OPS is a run at a revision ≤ low.
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
    for (let run = lo; run < marks.length && marks[run]! < through; run++) {
      const mark = marks[run]!;
      const kind = mark % OPS;
      const revision = (mark - kind) / OPS;
      const end = run + 1 < starts.length ? starts[run + 1]! : tuples.length;
      for (let i = starts[run]!; i < end; i++) {
        const tuple = tuples[i]!;
        out.push(
          kind === WRITE
            ? { revision, op: "write", tuple }
            : kind === EXPIRED
              ? { revision, op: "delete", tuple, expired: true }
              : { revision, op: "delete", tuple },
        );
      }
    }
    return out;
  }

  /** The run change `i` is in (the last run starting at or before it). */
  #runOf(i: number): number {
    return lastAtOrBefore(this.#runStarts, i);
  }
}

/** Appends changes[from..] to the log's lists, a run starting wherever the revision or kind changes. */
function pushRuns(
  tuples: RelationTuple[],
  starts: number[],
  marks: number[],
  changes: readonly StoredChange[],
  from: number,
): void {
  let last = marks.length > 0 ? marks[marks.length - 1]! : -1;
  for (let i = from; i < changes.length; i++) {
    const change = changes[i]!;
    const mark = markOf(change);
    if (mark !== last) {
      starts.push(tuples.length);
      marks.push(mark);
      last = mark;
    }
    tuples.push(change.tuple);
  }
}
