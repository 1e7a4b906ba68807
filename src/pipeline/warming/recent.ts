/**
 * The warmer's two per-question records, kept by question hash (question-table.ts): when each question was last
 * asked or warmed (the least recent forgotten beyond a bound), and the questions waiting to be warmed (the oldest
 * dropped beyond a bound). Neither builds a key string or an object per question.
 */

import { QuestionTable } from "./question-table.js";
import { questionOf, type WarmQuestion } from "./questions.js";

/** Question → when it was last asked or warmed; at most `max`, the least recently marked forgotten. */
export class RecentQuestions {
  readonly #table: QuestionTable;
  #at: Float64Array;

  constructor(max: number) {
    this.#table = new QuestionTable(max);
    this.#at = new Float64Array(this.#table.capacity);
  }

  get size(): number {
    return this.#table.size;
  }

  /** Marks the question hashed (a, b) as asked or warmed at `at` (the most recent). */
  mark(a: number, b: number, at: number): void {
    const table = this.#table;
    let i = table.find(a, b);
    if (i >= 0) {
      table.touch(i);
    } else {
      if (table.size === table.max) table.remove(table.oldest());
      i = table.insert(a, b);
      if (i >= this.#at.length) this.#at = widen(this.#at, table.capacity);
    }
    this.#at[i] = at;
  }

  /** When the question was last marked (NaN when not remembered: every comparison with it is false). */
  lastAt(a: number, b: number): number {
    const i = this.#table.find(a, b);
    return i < 0 ? Number.NaN : this.#at[i]!;
  }

  delete(a: number, b: number): void {
    const i = this.#table.find(a, b);
    if (i >= 0) this.#table.remove(i);
  }

  clear(): void {
    this.#table.clear();
  }
}

/**
 * Questions waiting to be warmed, oldest first; one queued again moves to the back; at most `max`, the oldest
 * dropped. A question is kept as the visit's question it was predicted from and its object (shared strings), and
 * becomes a WarmQuestion only when it is taken for a warm call.
 */
export class WarmQueue {
  readonly #table: QuestionTable;
  #source: (WarmQuestion | undefined)[] = [];
  #object: (string | undefined)[] = [];

  constructor(max: number) {
    this.#table = new QuestionTable(max);
  }

  get size(): number {
    return this.#table.size;
  }

  /** Queues `source`'s question about `object` (hashed (a, b)) at the back; true when the oldest was dropped. */
  add(a: number, b: number, source: WarmQuestion, object: string): boolean {
    const table = this.#table;
    let i = table.find(a, b);
    let dropped = false;
    if (i >= 0) {
      table.touch(i);
    } else {
      if (table.size === table.max) {
        this.#release(table.oldest());
        dropped = true;
      }
      i = table.insert(a, b);
    }
    this.#source[i] = source;
    this.#object[i] = object;
    return dropped;
  }

  /** The oldest's hash halves (call only when not empty). */
  oldestA(): number {
    return this.#table.a(this.#table.oldest());
  }

  oldestB(): number {
    return this.#table.b(this.#table.oldest());
  }

  /** Removes the oldest and returns it as a question (call only when not empty). */
  shift(): WarmQuestion {
    const i = this.#table.oldest();
    const source = this.#source[i]!;
    const object = this.#object[i]!;
    this.#release(i);
    return object === source.object ? source : questionOf(source, object);
  }

  clear(): void {
    this.#table.clear();
    this.#source = [];
    this.#object = [];
  }

  #release(i: number): void {
    this.#table.remove(i);
    this.#source[i] = undefined; // let the strings go
    this.#object[i] = undefined;
  }
}

function widen(from: Float64Array, capacity: number): Float64Array {
  const to = new Float64Array(capacity);
  to.set(from);
  return to;
}
