/**
 * The Tiger layer's index of questions: user → the slots of the (tenant, subject tenant, relation, type)
 * questions asked about that user. It is looked up by the request's own strings, so the check path builds no
 * key: a concatenated key costs more to hash than everything else the layer does for a question it cannot answer
 * yet, which then costs two or three Map lookups before it goes on.
 *
 * Bounded: slots without a bitmap (only a demand count) are dropped once there are `maxSlots` slots.
 */
import type { Question, Slot } from "./bitmap.js";

export class SlotIndex {
  readonly #maxSlots: number;
  readonly #byUser = new Map<string, Slot[]>();
  #count = 0;

  constructor(maxSlots: number) {
    this.#maxSlots = maxSlots;
  }

  /** Slots held (with a bitmap or only a demand count). */
  get size(): number {
    return this.#count;
  }

  /** The slot of a question, if it was ever asked (and not dropped since). */
  find(q: Question): Slot | undefined {
    const slots = this.#byUser.get(q.user);
    if (slots === undefined) return undefined;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (
        s.relation === q.relation &&
        s.objectType === q.objectType &&
        s.tenant === q.tenant &&
        s.subjectTenant === q.subjectTenant
      ) {
        return s;
      }
    }
    return undefined;
  }

  /** The slot of a question, created when new (first dropping slots without a bitmap when the index is full). */
  slotFor(q: Question): Slot {
    const found = this.find(q);
    if (found !== undefined) return found;
    if (this.#count >= this.#maxSlots) this.#dropDemandOnly();
    const slot: Slot = {
      tenant: q.tenant,
      subjectTenant: q.subjectTenant,
      relation: q.relation,
      objectType: q.objectType,
      demand: 0,
      bitmap: undefined,
    };
    this.add(q.user, slot);
    return slot;
  }

  /** Puts a slot (back) under `user`: one dropped while its bitmap was being materialised. */
  add(user: string, slot: Slot): void {
    const slots = this.#byUser.get(user);
    if (slots === undefined) this.#byUser.set(user, [slot]);
    else slots.push(slot);
    this.#count++;
  }

  clear(): void {
    this.#byUser.clear();
    this.#count = 0;
  }

  /** Forgets every slot without a bitmap (their demand counts start over). */
  #dropDemandOnly(): void {
    this.#count = 0;
    for (const [user, slots] of this.#byUser) {
      const kept = slots.filter((s) => s.bitmap !== undefined);
      if (kept.length === 0) this.#byUser.delete(user);
      else this.#byUser.set(user, kept);
      this.#count += kept.length;
    }
  }
}
