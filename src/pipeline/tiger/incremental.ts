/**
 * Bringing a Tiger bitmap forward instead of re-materialising it: when changes touched the tuple classes a
 * bitmap's (type, permission) reads, only the objects those changes can affect (./affected-objects.ts, walked at
 * the new revision) are re-checked, and their bits set or cleared. When that set cannot be known or bounded the
 * update gives up with a reason (`Fallback`) and the layer re-materialises or passes the question through: the
 * changes could not be read (`unknownChanges`), the walk exceeds its budget (`tooBroad`: `maxRechecks` objects or
 * 16× that many nodes, e.g. a change near the root of a deep tree), a re-check failed (`recheckFailed`), or the
 * answers expire before the request's instant (`expired`).
 */
import type { InfluenceMap } from "../../changes/influence.js";
import type { DependentIndex } from "../../model/analysis.js";
import type { Program } from "../../model/program.js";
import { TupleReader } from "../../reference/reader.js";
import { questionKey } from "../../request/key.js";
import type { Revision, TupleSnapshot, TupleStore } from "../../tuples/types.js";
import type { CheckResolver, Resolution, ResolvedCheck } from "../types.js";
import { affectedObjects, type ChangedList } from "./affected-objects.js";
import { type Materialised, SEP, type State, UNUSABLE, VALID } from "./bitmap.js";
import type { ChangeLog } from "./change-log.js";

/** Why a bitmap could not answer a question as it was, counted in the layer's stats as `fallback.<reason>`. */
export type Fallback =
  | "unknownChanges"
  | "olderRevision"
  | "tooBroad"
  | "recheckFailed"
  | "expired"
  | "disabled";

export interface RecheckContext {
  readonly program: Program;
  readonly store: TupleStore;
  readonly influence: InfluenceMap;
  /** The model's reverse dependency index (src/model/analysis.ts). */
  readonly dependents: DependentIndex;
  readonly log: ChangeLog;
  /** Re-checks the affected objects (the layer's inner resolver). */
  readonly inner: CheckResolver;
  readonly maxRechecks: number;
}

/** The re-checked objects and their answers at `revision`, not yet applied to the bitmap. */
export interface Recheck {
  readonly revision: Revision;
  /** Whether any logged change touched a class the bitmap reads. */
  readonly changedLists: boolean;
  readonly objects: readonly string[];
  readonly answers: readonly Resolution[];
  /** The bitmap's new end of validity: the earliest expiry among its own and the answers'. */
  readonly validUntil: number;
}

/**
 * Re-checks, at `check.revision` and `check.now`, the objects the logged changes since `m.revision` can affect;
 * a `Fallback` reason when it cannot. Rejects when the inner resolver does (the caller counts `recheckFailed`).
 */
export async function recheckChanged(
  m: Materialised,
  check: ResolvedCheck,
  context: RecheckContext,
): Promise<Recheck | Fallback> {
  const to = check.revision;
  const reads = context.influence.readsOf(m.question.objectType, m.question.relation);
  const lists = new Map<string, ChangedList>();
  for (const change of context.log.between(m.revision, to)) {
    const t = change.tuple;
    if (!reads.has(`${t.objectType}#${t.relation}`)) continue;
    lists.set(t.tenant + SEP + t.object + SEP + t.relation, t);
  }
  let candidates: string[] | undefined = [];
  if (lists.size > 0) {
    let snapshot: TupleSnapshot;
    try {
      snapshot = await context.store.snapshot(to);
    } catch {
      return "unknownChanges";
    }
    try {
      const reader = new TupleReader(snapshot, context.program, [], check.now);
      candidates = await affectedObjects(reader, context.dependents, [...lists.values()], m.question, {
        objects: context.maxRechecks,
        nodes: 16 * context.maxRechecks + 64,
      });
    } catch {
      return "recheckFailed";
    } finally {
      snapshot.release();
    }
    if (candidates === undefined) return "tooBroad";
  }
  let validUntil = m.validUntil;
  const answers: Resolution[] = [];
  if (candidates.length > 0) {
    const q = m.question;
    const outcomes = await context.inner.resolveMany(
      candidates.map((object) => ({
        ...q,
        object,
        revision: to,
        now: check.now,
        context: undefined,
        contextualTuples: [],
        // Eligible questions have no context: its text is "".
        key: questionKey(q.tenant, q.subjectTenant, object, q.relation, q.user, ""),
      })),
    );
    for (const a of outcomes) {
      if (a instanceof Error || a.revision !== to) return "recheckFailed";
      if (a.validUntil < validUntil) validUntil = a.validUntil;
      answers.push(a);
    }
  }
  return { revision: to, changedLists: lists.size > 0, objects: candidates, answers, validUntil };
}

/**
 * Applies a re-check to `m` at once (nothing awaited: readers see the bitmap at its old revision or at the new
 * one) and moves its revision and validity; returns how many bits changed.
 */
export function applyRecheck(m: Materialised, recheck: Recheck, now: number): number {
  let changed = 0;
  for (let i = 0; i < recheck.objects.length; i++) {
    const object = recheck.objects[i]!;
    if (recheck.answers[i]!.allowed) {
      const id = m.space.intern(object);
      if (m.bitmap.tryAdd(id)) {
        m.members.add(id);
        changed++;
      }
    } else {
      const id = m.space.ids.get(object);
      if (id !== undefined && m.bitmap.delete(id)) {
        m.members.delete(id);
        changed++;
      }
    }
  }
  m.revision = recheck.revision;
  // Candidates were found, and re-checked, at this instant (a tuple expired before it may have hidden some).
  if (recheck.changedLists && now > m.computedAt) m.computedAt = now;
  m.validUntil = recheck.validUntil;
  return changed;
}

/** What an update needs from the layer it works for. */
export interface UpdateHooks {
  /** false: every update gives up at once (`fallback.disabled`), and the layer re-materialises. */
  readonly enabled: boolean;
  /** The layer's fallback counts, incremented here with the reason an update gave up. */
  readonly fallbacks: Record<Fallback, number>;
  /** Whether a bitmap answers a check as it is (the layer's rule). */
  readonly state: (m: Materialised, check: ResolvedCheck) => State;
  /** Whether the layer closed (an update finishing after that changes nothing). */
  readonly closed: () => boolean;
}

/** The layer's incremental updates: one at a time per bitmap, counted, and awaitable when the layer closes. */
export class IncrementalUpdates {
  readonly #context: RecheckContext;
  readonly #hooks: UpdateHooks;
  /** Updates in flight (close() waits for them, evicted bitmaps' included). */
  readonly #inFlight = new Set<Promise<void>>();
  /** Updates applied, objects re-checked by them, and bits they changed. */
  count = 0;
  rechecked = 0;
  bitsChanged = 0;

  constructor(context: RecheckContext, hooks: UpdateHooks) {
    this.#context = context;
    this.#hooks = hooks;
  }

  inFlight(): IterableIterator<Promise<void>> {
    return this.#inFlight.values();
  }

  /** Whether any update is under way. */
  get busy(): boolean {
    return this.#inFlight.size > 0;
  }

  /**
   * Brings `m` to `check.revision` by re-checking the objects the changes in between can affect; undefined when
   * it cannot (the caller then re-materialises or passes through). One update per bitmap at a time: a second
   * caller waits for the first and looks again.
   */
  async bringForward(m: Materialised, check: ResolvedCheck): Promise<Materialised | undefined> {
    const hooks = this.#hooks;
    for (;;) {
      if (m.slot.bitmap !== m) return undefined;
      const state = hooks.state(m, check);
      if (state === VALID) return m;
      if (state === UNUSABLE) return undefined;
      if (m.updating === undefined) break;
      await m.updating;
    }
    if (!hooks.enabled) {
      hooks.fallbacks.disabled++;
      return undefined;
    }
    let advanced = false;
    const update = this.#advance(m, check)
      .then(
        (ok) => {
          advanced = ok;
        },
        () => {
          hooks.fallbacks.recheckFailed++; // e.g. the evaluator failed: re-materialise or pass through
        },
      )
      .finally(() => {
        m.updating = undefined;
        this.#inFlight.delete(update);
      });
    m.updating = update;
    this.#inFlight.add(update);
    await update;
    return advanced && m.slot.bitmap === m && hooks.state(m, check) === VALID ? m : undefined;
  }

  async #advance(m: Materialised, check: ResolvedCheck): Promise<boolean> {
    const from = m.revision;
    const recheck = await recheckChanged(m, check, this.#context);
    if (typeof recheck === "string") {
      this.#hooks.fallbacks[recheck]++;
      return false;
    }
    if (this.#hooks.closed() || m.slot.bitmap !== m || m.revision !== from) return false;
    if (check.now >= recheck.validUntil) {
      this.#hooks.fallbacks.expired++;
      return false;
    }
    const changed = applyRecheck(m, recheck, check.now);
    this.count++;
    this.rechecked += recheck.objects.length;
    this.bitsChanged += changed;
    return true;
  }
}
