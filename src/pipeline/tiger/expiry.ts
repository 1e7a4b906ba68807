/**
 * How long a materialised bitmap stays exact as time passes: tuples may carry an expiry (`expiresAt`), so an
 * evaluation's answer holds only between the latest expiry at or before its instant and the earliest one after
 * it, among the tuples it read. `ExpiryObserver` wraps the snapshot a materialisation reads and records both
 * bounds; the bitmap then answers only request instants in [validFrom, validUntil).
 */
import type { RelationTuple } from "../../tuples/tuple.js";
import type {
  ObjectRelationKey,
  ReadFilter,
  Revision,
  SubjectKey,
  TupleSnapshot,
  TypeRelationKey,
} from "../../tuples/types.js";

/**
 * A snapshot that remembers, among the tuples read through it, the earliest expiry after `now` and the latest at
 * or before it: an evaluation through it answers the same at every instant in [validFrom, validUntil).
 */
export class ExpiryObserver implements TupleSnapshot {
  readonly revision: Revision;
  validUntil = Number.POSITIVE_INFINITY;
  validFrom = Number.NEGATIVE_INFINITY;
  readonly #inner: TupleSnapshot;
  readonly #now: number;

  constructor(inner: TupleSnapshot, now: number) {
    this.#inner = inner;
    this.revision = inner.revision;
    this.#now = now;
  }

  async readByObject(keys: readonly ObjectRelationKey[]): Promise<RelationTuple[][]> {
    return this.#seeAll(await this.#inner.readByObject(keys));
  }

  async readBySubject(keys: readonly SubjectKey[]): Promise<RelationTuple[][]> {
    return this.#seeAll(await this.#inner.readBySubject(keys));
  }

  async readByTypeRelation(keys: readonly TypeRelationKey[]): Promise<RelationTuple[][]> {
    return this.#seeAll(await this.#inner.readByTypeRelation(keys));
  }

  async read(filter: ReadFilter): Promise<RelationTuple[]> {
    const tuples = await this.#inner.read(filter);
    this.#see(tuples);
    return tuples;
  }

  release(): void {
    // The owner releases the inner snapshot.
  }

  #seeAll(lists: RelationTuple[][]): RelationTuple[][] {
    for (const list of lists) this.#see(list);
    return lists;
  }

  #see(tuples: readonly RelationTuple[]): void {
    for (const t of tuples) {
      const at = t.expiresAt;
      if (at === undefined) continue;
      if (at > this.#now) {
        if (at < this.validUntil) this.validUntil = at;
      } else if (at > this.validFrom) {
        this.validFrom = at;
      }
    }
  }
}
