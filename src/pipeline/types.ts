/**
 * The check path as a chain of small resolvers (src/pipeline/DESIGN.md): each layer is one
 * idea (a result cache, a Bloom negative cache, singleflight, an evaluator) and wraps the next one, as OpenFGA's
 * `internal/graph` wraps its local checker in a CachedCheckResolver. Every layer takes an already validated
 * question pinned to a snapshot revision, so any layer can be switched off and the answers stay the same: the
 * plain evaluator is the oracle for all of them.
 */
import type { ConditionContext } from "../conditions/cel.js";
import type { RelationTuple, Subject } from "../tuples/tuple.js";
import type { Revision } from "../tuples/types.js";

/** A validated check, pinned to the snapshot revision its answer must hold at. */
export interface ResolvedCheck {
  readonly tenant: string;
  readonly subjectTenant: string;
  /** `type:id`. */
  readonly object: string;
  readonly objectType: string;
  readonly relation: string;
  readonly subject: Subject;
  /** The subject's string form. */
  readonly user: string;
  /** The snapshot revision chosen by consistency (and quantization). */
  readonly revision: Revision;
  /** The request's instant (epoch ms): tuples expired by then do not count. */
  readonly now: number;
  readonly context: ConditionContext | undefined;
  /** Normalized contextual tuples (a check with any is never cached or shared). */
  readonly contextualTuples: readonly RelationTuple[];
  /**
   * What identifies the question apart from its object, its subject (`user`), revision and time: the relation
   * alone for a question in the default tenant, from it, without a context; else tenants, relation and context
   * text NUL-separated (questionScope). Undefined when the question must not be cached or shared (contextual
   * tuples, a context that has no stable text). Caches and singleflight key on (scope, user, object) with nested
   * maps of the request's own strings: no key text is built or hashed per question.
   */
  readonly scope?: string | undefined;
  /**
   * The older form of the identity: the whole question as one text (questionKey). A check made by hand may give it
   * instead of `scope`; the pipeline sets `scope` only. See scopeOf.
   */
  readonly key?: string | undefined;
}

/**
 * The identity of `check` apart from object and user, undefined when it must not be cached or shared: its scope,
 * else its whole key (a key names object and user too, so (key, user, object) still identifies the question).
 */
export function scopeOf(check: ResolvedCheck): string | undefined {
  const scope = check.scope;
  return scope !== undefined ? scope : check.key;
}

/** An answer and the range over which it holds. */
export interface Resolution {
  readonly allowed: boolean;
  /** The revision it was computed at: the requested one, or a newer one when the store no longer kept that. */
  readonly revision: Revision;
  /** Epoch ms from which it may change without a new revision (the earliest expiry it read); Infinity if never. */
  readonly validUntil: number;
  /**
   * Every tuple list the evaluation read, as `tenant NUL object NUL relation` (`readKey`), when the evaluator
   * can tell: the answer is a function of those lists alone, so it holds at any revision where none of them
   * changed. Undefined when unknown (caches then fall back to the Program's class-level influence).
   */
  readonly reads?: readonly string[];
}

/** The key of one (tenant, object, relation) tuple list, as in `Resolution.reads`. */
export function readKey(tenant: string, object: string, relation: string): string {
  return tenant + "\u0000" + object + "\u0000" + relation;
}

/**
 * Whether no evaluation of `check` can reach the depth limit, so that a shortcut's denial cannot hide the
 * reference's "resolution_too_complex": the (type, relation) cannot recurse that far (InfluenceMap.maxHops), or
 * the tuples themselves hold no chain that long at the question's revision (src/changes/depth.ts).
 */
export type DepthGuard = (check: ResolvedCheck) => boolean;

/** One answer of a batch: a resolution, or the error that question alone ran into. */
export type BatchOutcome = Resolution | Error;

/** What one layer did since it was created. */
export interface LayerStats {
  readonly layer: string;
  /** False when switched off by option (or unable to work: see `note`); the layer then only passes through. */
  readonly enabled: boolean;
  /** Questions that reached the layer. */
  readonly requests: number;
  /** Questions the layer answered itself (a cache hit, a Bloom denial). */
  readonly hits: number;
  /** Questions it passed to the next layer. */
  readonly misses: number;
  /** Questions that joined an evaluation already in flight. */
  readonly shared: number;
  /** Evaluations the layer started (the evaluator: checks run; singleflight: leaders). */
  readonly evaluations: number;
  /** Changes that made cached facts unusable (the result cache: tuple lists changed under its answers). */
  readonly invalidations: number;
  /** Layer-specific facts (sizes, memory, rebuilds). */
  readonly extra?: Readonly<Record<string, number | string>>;
}

export interface CheckResolver {
  /** The layer's name in stats. */
  readonly layer: string;
  /** Answers one question. @throws the evaluation's NexusError, or NexusError "aborted" when `signal` aborts. */
  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution>;
  /**
   * Answers many questions as one batch (subproblems shared where the layer can); one outcome per question, in
   * order, an error standing only for its own question. Rejects only when `signal` aborts.
   */
  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]>;
  /**
   * resolve without a promise where nothing has to be waited for: the resolution itself when this layer, and every
   * layer inside it that it asked, answered synchronously (a cache hit, a kernel answer on a current graph), else
   * the promise resolve would return. Fails by throwing or by rejecting, as resolve fails. Optional: a layer
   * without it is asked through resolve (see resolveNow below). A first-pass check answered by the kernel thus
   * costs no promise and no microtask turn per layer.
   */
  resolveNow?(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution>;
  /** resolveMany as resolveNow is to resolve: the outcomes themselves when no layer had to wait. */
  resolveManyNow?(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]>;
  /** This layer's stats, then those of every layer inside it. */
  stats(): LayerStats[];
  /** Releases what the layer owns, then closes the layer inside it. Idempotent. */
  close(): Promise<void>;
}

/** `layer.resolveNow` where the layer has it, else its `resolve` (a layer written against the promise contract). */
export function resolveNow(
  layer: CheckResolver,
  check: ResolvedCheck,
  signal: AbortSignal | undefined,
): Resolution | Promise<Resolution> {
  return layer.resolveNow !== undefined ? layer.resolveNow(check, signal) : layer.resolve(check, signal);
}

/** `layer.resolveManyNow` where the layer has it, else its `resolveMany`. */
export function resolveManyNow(
  layer: CheckResolver,
  checks: readonly ResolvedCheck[],
  signal: AbortSignal | undefined,
): BatchOutcome[] | Promise<BatchOutcome[]> {
  return layer.resolveManyNow !== undefined
    ? layer.resolveManyNow(checks, signal)
    : layer.resolveMany(checks, signal);
}

/** A resolveNow-style value (or synchronous failure) as the promise resolve returns. */
export function promised<T>(run: () => T | Promise<T>): Promise<T> {
  try {
    const value = run();
    return value instanceof Promise ? value : Promise.resolve(value);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Validates a filter's object that has no interned id (throws for a malformed one); see FilterLayer. */
export type ObjectValidator = (object: unknown, index: number) => void;

/**
 * A layer that answers a whole filter (which of these objects may the user see?) at once, from one structure per
 * question, instead of one check per object. The pipeline's filter asks it first and checks object by object
 * through the layers only when it declines (undefined: the question is not one it holds). Tiger is one.
 */
export interface FilterLayer {
  /**
   * The allowed objects in input order, or undefined when this layer cannot answer the question. Calls `validate`
   * for each object it does not know; the first malformed object's error is the filter's.
   */
  filterObjects(
    check: ResolvedCheck,
    objects: readonly unknown[],
    validate?: ObjectValidator,
  ): Promise<string[] | undefined>;
}

/**
 * Sends the questions at `indexes` (ascending) to `inner` as one batch and writes its outcomes into `outcomes` at
 * those positions: how a layer passes on what it did not answer itself.
 */
export async function resolveRest(
  inner: CheckResolver,
  checks: readonly ResolvedCheck[],
  indexes: readonly number[],
  outcomes: BatchOutcome[],
  signal: AbortSignal | undefined,
): Promise<void> {
  if (indexes.length === 0) return;
  const answers = await inner.resolveMany(
    indexes.map((i) => checks[i]!),
    signal,
  );
  for (let k = 0; k < indexes.length; k++) outcomes[indexes[k]!] = answers[k]!;
}

/**
 * resolveRest through resolveManyNow: `outcomes` itself, filled, when `inner` answered without waiting, else a
 * promise of it.
 */
export function resolveRestNow(
  inner: CheckResolver,
  checks: readonly ResolvedCheck[],
  indexes: readonly number[],
  outcomes: BatchOutcome[],
  signal: AbortSignal | undefined,
): BatchOutcome[] | Promise<BatchOutcome[]> {
  if (indexes.length === 0) return outcomes;
  const fill = (answers: BatchOutcome[]): BatchOutcome[] => {
    for (let k = 0; k < indexes.length; k++) outcomes[indexes[k]!] = answers[k]!;
    return outcomes;
  };
  const answers = resolveManyNow(
    inner,
    indexes.length === checks.length ? checks : indexes.map((i) => checks[i]!),
    signal,
  );
  return answers instanceof Promise ? answers.then(fill) : fill(answers);
}

/** Counters every layer keeps. */
export class LayerCounters {
  requests = 0;
  hits = 0;
  misses = 0;
  shared = 0;
  evaluations = 0;
  invalidations = 0;

  snapshot(layer: string, enabled: boolean, extra?: Readonly<Record<string, number | string>>): LayerStats {
    return {
      layer,
      enabled,
      requests: this.requests,
      hits: this.hits,
      misses: this.misses,
      shared: this.shared,
      evaluations: this.evaluations,
      invalidations: this.invalidations,
      ...(extra !== undefined ? { extra } : {}),
    };
  }
}
