/**
 * Whether a Tiger bitmap, exact at its own revision, also answers a question at another revision. The layer
 * knows this from the change feed: `ChangeKnowledge` says up to which revision every change has been delivered
 * (and from which revision without a gap), the change log holds the changes themselves, and per check class the
 * latest revision at which a change touched a tuple class it reads (src/changes/influence.ts `affectedBy`). A
 * bitmap answers another revision as it is when nothing between the two touched its class, can be brought
 * forward when something did and every change in between is known, and is unusable otherwise.
 */
import type { InfluenceMap } from "../../changes/influence.js";
import type { Revision, StoredChange } from "../../tuples/types.js";
import type { ChangeKnowledge } from "../result-cache.js";
import type { ResolvedCheck } from "../types.js";
import { FORWARD, type Materialised, type State, UNUSABLE, VALID } from "./bitmap.js";
import { ChangeLog } from "./change-log.js";

export class Freshness {
  readonly #influence: InfluenceMap;
  /** The changes delivered since `follow` (bounded), for incremental updates. */
  readonly log: ChangeLog;
  /** Latest revision at which a change touched each check class (a fast "nothing changed" test). */
  readonly #changedAt = new Map<string, number>();
  /**
   * The class marks know every change after this revision (set by follow and reset). The log's own floor can be
   * higher (changes it dropped past its bound, or did not keep while no bitmap needed them): that limits bringing
   * a bitmap forward, not the "nothing changed" test, whose marks are raised for every change delivered.
   */
  #marksSince: Revision = 0;
  #knowledge: ChangeKnowledge | undefined;

  /** `maxLogged`: changes remembered (older bitmaps cannot be brought forward). */
  constructor(influence: InfluenceMap, maxLogged: number) {
    this.#influence = influence;
    this.log = new ChangeLog(maxLogged);
  }

  /** From now on changes are delivered (`record`) and `knowledge` says up to where; nothing before is known. */
  follow(knowledge: ChangeKnowledge): void {
    this.#knowledge = knowledge;
    this.#marksSince = knowledge.watermark;
    this.log.reset(knowledge.watermark);
  }

  /**
   * Takes delivered changes in; returns how many class marks moved (the layer's invalidations), a run of
   * consecutive changes of one (type, relation) moving each of its classes at most once. With `log` false (no
   * bitmap could be brought forward across them) the changes are not kept: the log forgets everything through
   * their newest revision, so a bitmap made later at an older revision is re-made rather than brought forward.
   */
  record(changes: readonly StoredChange[], log = true): number {
    let moved = 0;
    let latest = 0;
    const count = changes.length;
    // A page holds long runs of one (type, relation) (a load writes many): the classes a run affects are marked
    // once, at its newest revision, not once per change.
    let start = 0;
    while (start < count) {
      const first = changes[start]!;
      const type = first.tuple.objectType;
      const relation = first.tuple.relation;
      let newest = first.revision;
      let end = start + 1;
      while (end < count) {
        const change = changes[end]!;
        const t = change.tuple;
        if (t.objectType !== type || t.relation !== relation) break;
        if (change.revision > newest) newest = change.revision;
        end++;
      }
      moved += this.#mark(type, relation, newest);
      if (newest > latest) latest = newest;
      start = end;
    }
    if (log) this.log.append(changes);
    else if (count > 0) this.log.skip(latest);
    return moved;
  }

  /** Raises the marks of the classes a change of (type, relation) affects to `revision`; how many moved. */
  #mark(type: string, relation: string, revision: Revision): number {
    let moved = 0;
    for (const cls of this.#influence.affectedBy(type, relation)) {
      const before = this.#changedAt.get(cls);
      if (before === undefined || before < revision) {
        this.#changedAt.set(cls, revision);
        moved++;
      }
    }
    return moved;
  }

  /** Forgets the logged changes: from now on only changes after `revision` are known. */
  reset(revision: Revision): void {
    this.#marksSince = revision;
    this.log.reset(revision);
  }

  /**
   * Whether `m` answers `check` as it is (VALID), once brought forward to `check.revision` (FORWARD: changes in
   * between touched its classes, all of them known), or not at all (UNUSABLE).
   */
  state(m: Materialised, check: ResolvedCheck): State {
    if (check.now >= m.validUntil || check.now < m.computedAt) return UNUSABLE;
    if (m.revision === check.revision) return VALID;
    const knowledge = this.#knowledge;
    if (knowledge === undefined) return UNUSABLE;
    const low = m.revision < check.revision ? m.revision : check.revision;
    const high = m.revision < check.revision ? check.revision : m.revision;
    if (high > knowledge.watermark || low < knowledge.complete || low < this.#marksSince) return UNUSABLE;
    if ((this.#changedAt.get(m.relationClass) ?? -1) <= low) return VALID;
    // Brought forward by the changes in between: only when the log holds every one of them.
    if (m.revision > check.revision || low < this.log.floor) return UNUSABLE;
    return FORWARD;
  }
}
