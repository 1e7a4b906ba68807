/**
 * The request path's record of what was just answered, for the warmer's loop to learn from later: a fixed-capacity
 * FIFO (oldest dropped on overflow) kept as parallel arrays, so taking note of a check writes a few slots and
 * allocates nothing (the request's strings are shared, not copied: strings are immutable). A listing, one per
 * filter call, keeps its own small copy.
 */

import type { Listing, WarmQuestion } from "./questions.js";

/** What a slot holds: a plain check (no context, no contextual tuples: its answer is now in the result cache). */
const PLAIN = 0;
/** A check with context or contextual tuples: learned from, but its plain answer is not cached. */
const CONTEXTUAL = 1;
const LISTING = 2;

export class Observations {
  readonly #capacity: number;
  readonly #kind: Uint8Array;
  readonly #at: Float64Array;
  readonly #user: (string | undefined)[];
  readonly #relation: (string | undefined)[];
  readonly #object: (string | undefined)[];
  readonly #tenant: (string | undefined)[];
  readonly #subjectTenant: (string | undefined)[];
  readonly #listing: (Listing | undefined)[];
  #head = 0;
  #length = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#kind = new Uint8Array(capacity);
    this.#at = new Float64Array(capacity);
    this.#user = new Array<string | undefined>(capacity).fill(undefined);
    this.#relation = new Array<string | undefined>(capacity).fill(undefined);
    this.#object = new Array<string | undefined>(capacity).fill(undefined);
    this.#tenant = new Array<string | undefined>(capacity).fill(undefined);
    this.#subjectTenant = new Array<string | undefined>(capacity).fill(undefined);
    this.#listing = new Array<Listing | undefined>(capacity).fill(undefined);
  }

  get length(): number {
    return this.#length;
  }

  /** Records an access (its fields already checked to be strings); true when the oldest was dropped for it. */
  pushAccess(
    user: string,
    relation: string,
    object: string,
    tenant: string | undefined,
    subjectTenant: string | undefined,
    plain: boolean,
    at: number,
  ): boolean {
    const dropped = this.#length === this.#capacity;
    const i = this.#slot();
    this.#kind[i] = plain ? PLAIN : CONTEXTUAL;
    this.#at[i] = at;
    this.#user[i] = user;
    this.#relation[i] = relation;
    this.#object[i] = object;
    this.#tenant[i] = tenant;
    this.#subjectTenant[i] = subjectTenant;
    this.#listing[i] = undefined;
    return dropped;
  }

  /** Records a listing (a copy the caller made); true when the oldest was dropped for it. */
  pushListing(listing: Listing, at: number): boolean {
    const dropped = this.#length === this.#capacity;
    const i = this.#slot();
    this.#kind[i] = LISTING;
    this.#at[i] = at;
    this.#user[i] = undefined;
    this.#relation[i] = undefined;
    this.#object[i] = undefined;
    this.#tenant[i] = undefined;
    this.#subjectTenant[i] = undefined;
    this.#listing[i] = listing;
    return dropped;
  }

  /** Whether the oldest is a listing (undefined when empty). */
  oldestIsListing(): boolean | undefined {
    return this.#length === 0 ? undefined : this.#kind[this.#head] === LISTING;
  }

  /** The oldest's time (NaN when empty). */
  oldestAt(): number {
    return this.#length === 0 ? Number.NaN : this.#at[this.#head]!;
  }

  /** Whether the oldest is a plain access. */
  oldestIsPlain(): boolean {
    return this.#length > 0 && this.#kind[this.#head] === PLAIN;
  }

  /**
   * The oldest access's fields (call only when the oldest is an access): the loop learns from them in place, and
   * builds a question object only for an access the tracker can predict from.
   */
  oldestUser(): string {
    return this.#user[this.#head]!;
  }

  oldestRelation(): string {
    return this.#relation[this.#head]!;
  }

  oldestObject(): string {
    return this.#object[this.#head]!;
  }

  oldestTenant(): string | undefined {
    return this.#tenant[this.#head];
  }

  oldestSubjectTenant(): string | undefined {
    return this.#subjectTenant[this.#head];
  }

  /** Removes the oldest (read first with the oldest* methods). */
  dropOldest(): void {
    this.#release(this.#head);
  }

  /** Removes the oldest access and returns it as a question (call only when the oldest is an access). */
  shiftAccess(): WarmQuestion {
    const i = this.#head;
    const q: { user: string; relation: string; object: string; tenant?: string; subjectTenant?: string } = {
      user: this.#user[i]!,
      relation: this.#relation[i]!,
      object: this.#object[i]!,
    };
    const tenant = this.#tenant[i];
    const subjectTenant = this.#subjectTenant[i];
    if (tenant !== undefined) q.tenant = tenant;
    if (subjectTenant !== undefined) q.subjectTenant = subjectTenant;
    this.#release(i);
    return q;
  }

  /** Removes the oldest listing and returns it (call only when the oldest is a listing). */
  shiftListing(): Listing {
    const i = this.#head;
    const listing = this.#listing[i]!;
    this.#release(i);
    return listing;
  }

  clear(): void {
    for (let i = 0; i < this.#capacity; i++) this.#clearSlot(i);
    this.#head = 0;
    this.#length = 0;
  }

  /**
   * The slot for a new observation: past the newest, which is the oldest's when full (it is dropped, the head
   * moving past it). Without a branch on fullness: a request path that has only seen a ring with room (a first
   * pass, the warmer draining it between checks) compiles this code, and a branch first taken when the ring fills
   * (a burst of cache hits that never yields to the warmer) would throw that compiled code away.
   */
  #slot(): number {
    const capacity = this.#capacity;
    const length = this.#length;
    const full = length === capacity ? 1 : 0;
    const i = (this.#head + length) % capacity;
    this.#head = (this.#head + full) % capacity;
    this.#length = length + 1 - full;
    return i;
  }

  #release(i: number): void {
    this.#clearSlot(i); // let the strings go
    this.#head = (this.#head + 1) % this.#capacity;
    this.#length--;
  }

  #clearSlot(i: number): void {
    this.#user[i] = undefined;
    this.#relation[i] = undefined;
    this.#object[i] = undefined;
    this.#tenant[i] = undefined;
    this.#subjectTenant[i] = undefined;
    this.#listing[i] = undefined;
  }
}
