/**
 * What the Tiger layer keeps: per question (subject, permission, object type) a slot, and in it, once
 * materialised, a bitmap of the objects the subject may access, with the revision and the instants at which it
 * is exact. Also the small rules every part of the layer shares about them: which bitmap may be replaced, and how
 * a bitmap answers one object.
 */
import type { RoaringBitmap32 } from "roaring-wasm";
import type { Subject } from "../../tuples/tuple.js";
import type { Revision } from "../../tuples/types.js";
import type { Resolution, ResolvedCheck } from "../types.js";
import type { IdSpace } from "./id-space.js";
import type { Members } from "./members.js";

/**
 * Whether a bitmap answers a question as it is (VALID), once brought forward to the question's revision
 * (FORWARD: changes in between touched its classes, all of them known), or not at all (UNUSABLE).
 */
export const VALID = 0;
export const FORWARD = 1;
export const UNUSABLE = 2;
export type State = typeof VALID | typeof FORWARD | typeof UNUSABLE;

/** Separates the parts of the layer's composite string keys (no id or name contains it). */
export const SEP = "\u0000";

/** What a bitmap is about: a resolved question without its object, revision and instant. */
export interface Question {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly objectType: string;
  readonly relation: string;
  readonly subject: Subject;
  readonly user: string;
}

/**
 * One (subject, permission, type) in the layer's index: how often it was asked while it had no usable bitmap
 * (the materialisation threshold), and its bitmap.
 */
export interface Slot {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly relation: string;
  readonly objectType: string;
  demand: number;
  bitmap: Materialised | undefined;
}

export interface Materialised {
  readonly slot: Slot;
  readonly question: Question;
  readonly bitmap: RoaringBitmap32;
  /** The bitmap's members, JS-side, for tests (kept equal to `bitmap`). */
  readonly members: Members;
  /** The (tenant, type) id space its bits index. */
  readonly space: IdSpace;
  /** Revision it is exact at (moved forward by incremental updates). */
  revision: Revision;
  /** Earliest request instant it answers (an update re-checks at its instant). */
  computedAt: number;
  /** Instant from which it may be wrong (the earliest expiry among the tuples behind it). */
  validUntil: number;
  readonly relationClass: string;
  /** The incremental update in progress, if any (one at a time per bitmap). */
  updating: Promise<void> | undefined;
  /** Use tick, for least-recently-used eviction. */
  lastUsed: number;
}

/** The question part of `q` (a check, or a question read back from serialized bytes), as its own record. */
export function questionOf(q: Question): Question {
  return {
    tenant: q.tenant,
    subjectTenant: q.subjectTenant,
    objectType: q.objectType,
    relation: q.relation,
    subject: q.subject,
    user: q.user,
  };
}

/** One string per question: materialisations of the same question at the same revision and instant are shared. */
export function bitmapKey(q: Question): string {
  return q.tenant + SEP + q.subjectTenant + SEP + q.user + SEP + q.relation + SEP + q.objectType;
}

/**
 * Whether a new materialisation for `check` may replace the bitmap there is: not when that one is at a newer
 * revision, or answers only later instants (the question then passes through instead).
 */
export function replaceableFor(m: Materialised | undefined, check: ResolvedCheck): boolean {
  return m === undefined || (m.revision <= check.revision && check.now >= m.computedAt);
}

/** `m`'s answer for one object (an object without an id was never allowed, so it is not in the bitmap). */
export function answerOf(m: Materialised, object: string): Resolution {
  const id = m.space.ids.get(object);
  return { allowed: id !== undefined && m.members.has(id), revision: m.revision, validUntil: m.validUntil };
}
