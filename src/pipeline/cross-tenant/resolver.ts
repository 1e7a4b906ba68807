/**
 * The cross-tenant check layer: denies, without evaluation, cross-tenant questions no chain of grants can reach
 * (the walk is explained in grant-table.ts), and passes everything else to the next layer. Same-tenant questions
 * pass straight through (one comparison). It asks a CrossTenantIndex (grant-index.ts): its own, opened with the
 * layer, or one the caller owns and shares (`context.index`), so the grant queries need not depend on the layer.
 *
 * A denial is exact only where the reference evaluator would deny too, so these pass through: questions with
 * contextual tuples (which may be grants); questions whose (type, relation) may evaluate a condition (the reference
 * would report a missing parameter on a same-tenant tuple rather than deny); questions whose (type, relation) can
 * take as many steps as the depth limit (src/changes/influence.ts maxHops: recursive relations), where the
 * reference may fail with "resolution_too_complex" rather than deny; and questions the index cannot answer for
 * (pinned to a revision it does not cover, or reaching a tenant it does not cover or that changed since).
 *
 * Owner: the layer owns the index it opened; close() closes that index (not a shared one), then the next layer.
 */

import type { ChangeListener } from "../../changes/feed.js";
import { type InfluenceMap, influenceOf } from "../../changes/influence.js";
import type { TupleKey } from "../../tuples/tuple.js";
import type { Revision, StoredChange } from "../../tuples/types.js";
import {
  type BatchOutcome,
  type CheckResolver,
  type DepthGuard,
  LayerCounters,
  type LayerStats,
  promised,
  type Resolution,
  type ResolvedCheck,
  resolveManyNow,
  resolveRestNow,
} from "../types.js";
import { CrossTenantIndex, type CrossTenantIndexContext } from "./grant-index.js";
import type { CrossTenantOptions, GrantsOnQuery, GrantsToQuery } from "./queries.js";

export interface CrossTenantContext extends CrossTenantIndexContext {
  /** Default: influenceOf(program). */
  readonly influence?: InfluenceMap;
  /** The evaluator's depth limit (default 25): denials apply only where no check can reach it. */
  readonly maxResolutionDepth?: number;
  /** Where no check can reach that limit (default: the (type, relation) cannot recurse that far). */
  readonly depthGuard?: DepthGuard;
  /**
   * An index the caller owns (built over the same program and store): the layer asks it instead of opening its
   * own, ignores `source` and the options, and leaves it open on close().
   */
  readonly index?: CrossTenantIndex;
}

const DENIED_FOREVER = Number.POSITIVE_INFINITY;

export class CrossTenantResolver implements CheckResolver, ChangeListener, AsyncDisposable {
  readonly layer = "cross-tenant";
  /** The index the layer asks (its own, or the one shared with it). */
  readonly index: CrossTenantIndex;
  readonly #owned: boolean;
  readonly #inner: CheckResolver;
  readonly #influence: InfluenceMap;
  readonly #depthGuard: DepthGuard;
  readonly #counters = new LayerCounters();
  /** The index's update count when the layer opened (its invalidations count from there). */
  readonly #updatesAtOpen: number;
  #sameTenant = 0;
  #bypassed = 0;
  #mayGrant = 0;
  #closed = false;

  private constructor(
    inner: CheckResolver,
    context: CrossTenantContext,
    index: CrossTenantIndex,
    owned: boolean,
  ) {
    this.#inner = inner;
    this.index = index;
    this.#owned = owned;
    const influence = context.influence ?? influenceOf(context.program);
    this.#influence = influence;
    const maxDepth = context.maxResolutionDepth ?? 25;
    this.#depthGuard = context.depthGuard ?? ((c) => influence.maxHops(c.objectType, c.relation) < maxDepth);
    this.#updatesAtOpen = index.stats().updates;
  }

  /**
   * Opens the layer over `context.index`, or over an index of its own (built from the changelog, else a snapshot
   * of the named tenants, and following `context.source` when given). A store it cannot read leaves the layer
   * passing everything through (stats say why).
   * @throws NexusError "invalid_argument" for bad options.
   */
  static async open(
    inner: CheckResolver,
    context: CrossTenantContext,
    options: CrossTenantOptions = {},
  ): Promise<CrossTenantResolver> {
    const shared = context.index;
    const index = shared ?? (await CrossTenantIndex.open(context, options));
    return new CrossTenantResolver(inner, context, index, shared === undefined);
  }

  /** Every change up to this revision is in the index (grantsTo / grantsOn answer as of it). */
  get revision(): Revision {
    return this.index.revision;
  }

  /** Whether the index covers every tenant (false when it was seeded from a snapshot of named tenants). */
  get complete(): boolean {
    return this.index.complete;
  }

  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    return promised(() => this.resolveNow(check, signal));
  }

  /** resolve, the answer itself when it (or the layers inside) had it without waiting. */
  resolveNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    if (check.subjectTenant === check.tenant) {
      this.#sameTenant++;
      return this.#innerNow(check, signal);
    }
    this.#counters.requests++;
    if (this.#denies(check)) {
      this.#counters.hits++;
      return denial(check);
    }
    this.#counters.misses++;
    return this.#innerNow(check, signal);
  }

  /**
   * The inner layer's resolveNow (its resolve when it has none). A method of this class rather than the shared
   * helper: the call site then sees one kind of inner layer, not every layer's (a megamorphic site cost about a
   * third of a microsecond per check).
   */
  #innerNow(check: ResolvedCheck, signal: AbortSignal | undefined): Resolution | Promise<Resolution> {
    const inner = this.#inner;
    return inner.resolveNow !== undefined ? inner.resolveNow(check, signal) : inner.resolve(check, signal);
  }

  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return promised(() => this.resolveManyNow(checks, signal));
  }

  /** resolveMany, the outcomes themselves when no layer had to wait. */
  resolveManyNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    let cross = false;
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      if (c.subjectTenant !== c.tenant) {
        cross = true;
        break;
      }
    }
    if (!cross) {
      this.#sameTenant += checks.length;
      return resolveManyNow(this.#inner, checks, signal);
    }
    return this.#resolveMixed(checks, signal);
  }

  /** The index's grantsTo (see CrossTenantIndex). */
  grantsTo(query: GrantsToQuery): TupleKey[] {
    return this.index.grantsTo(query);
  }

  /** The index's grantsOn (see CrossTenantIndex). */
  grantsOn(query: GrantsOnQuery): TupleKey[] {
    return this.index.grantsOn(query);
  }

  /** Passed to the index (which follows a feed it was subscribed to when opened without a source). */
  onChanges(changes: readonly StoredChange[], watermark: Revision): void {
    this.index.onChanges(changes, watermark);
  }

  /** Passed to the index: it rebuilds. */
  onReset(): void {
    this.index.onReset();
  }

  stats(): LayerStats[] {
    const index = this.index.stats();
    const closed = this.#closed;
    this.#counters.invalidations = index.updates - this.#updatesAtOpen;
    const base = this.#counters.snapshot(this.layer, !closed && index.enabled, {
      grants: closed ? 0 : index.grants,
      tenantPairs: closed ? 0 : index.tenantPairs,
      hops: closed ? 0 : index.hops,
      sameTenant: this.#sameTenant,
      mayGrant: this.#mayGrant,
      bypassed: this.#bypassed,
      rebuilds: index.rebuilds,
      catchUps: index.catchUps,
      revision: index.revision,
      answersFrom: index.answersFrom,
      coverage: index.coverage,
      ...(index.note !== undefined ? { note: index.note } : {}),
    });
    return [
      {
        ...base,
        requests: base.requests + this.#sameTenant,
        misses: base.misses + this.#sameTenant,
      },
      ...this.#inner.stats(),
    ];
  }

  /** Closes the layer's own index (a shared one stays open), then the next layer. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      if (this.#owned) await this.index.close();
    }
    await this.#inner.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #resolveMixed(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const passed: number[] = [];
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      if (check.subjectTenant === check.tenant) {
        this.#sameTenant++;
        passed.push(i);
        continue;
      }
      this.#counters.requests++;
      if (this.#denies(check)) {
        this.#counters.hits++;
        outcomes[i] = denial(check);
      } else {
        this.#counters.misses++;
        passed.push(i);
      }
    }
    return resolveRestNow(this.#inner, checks, passed, outcomes, signal);
  }

  /** Whether no chain of live grants can take a cross-tenant question to a grant (see the header). */
  #denies(check: ResolvedCheck): boolean {
    if (
      this.#closed ||
      !this.index.answersAt(check.revision) ||
      check.contextualTuples.length > 0 ||
      this.#influence.mayEvaluateConditions(check.objectType, check.relation) ||
      !this.#depthGuard(check)
    ) {
      this.#bypassed++;
      return false;
    }
    const reach = this.index.reach(check, this.#influence.readsOf(check.objectType, check.relation));
    if (reach === "none") return true;
    if (reach === "may-grant") this.#mayGrant++;
    else this.#bypassed++;
    return false;
  }
}

/** A denial holds until a change: expiry only ever removes grants. */
function denial(check: ResolvedCheck): Resolution {
  return { allowed: false, revision: check.revision, validUntil: DENIED_FOREVER };
}
