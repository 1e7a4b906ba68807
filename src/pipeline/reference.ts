/**
 * The innermost resolver: the TypeScript reference evaluator (src/reference/check.ts), run at exactly the revision
 * the chain chose. It uses the evaluator's internal functions read-only (snapshot → TupleReader → Evaluation →
 * check) rather than Engine.check with `atLeastAsFresh`, because a token only bounds the revision from below:
 * the engine would read max(token, current window), so an answer cached under revision r could really be the
 * answer at a later revision. Opening the snapshot here pins it, and lets a batch share one snapshot, one tuple
 * reader (each (object, relation) read once per batch) and one condition memo per (revision, context).
 *
 * Each answer carries what it depends on, recorded by a tuple reader that watches the evaluation's reads: the
 * (tenant, object, relation) lists it read (a cache may reuse the answer at any revision where none changed) and
 * `validUntil`, the earliest expiry among the tuples it saw (a tuple expiring changes answers without a new
 * revision).
 *
 * A WASM evaluator plugs in at the same place: any CheckResolver whose answers equal this one's.
 */

import type { Program } from "../model/program.js";
import { check } from "../reference/check.js";
import { DEFAULT_MAX_DEPTH, Evaluation } from "../reference/evaluation.js";
import { TupleReader } from "../reference/reader.js";
import { snapshotAtLeast } from "../request/consistency.js";
import type { RelationTuple } from "../tuples/tuple.js";
import type { TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
  readKey,
  scopeOf,
} from "./types.js";

export interface ReferenceResolverOptions {
  readonly program: Program;
  readonly store: TupleStore;
  /** Nested lookups before "resolution_too_complex" (default 25). */
  readonly maxResolutionDepth?: number;
  /**
   * Record what each check read (its `reads`, and the earliest expiry among them as `validUntil`), which the caching
   * layers reuse answers by (default true). Off, an answer has no `reads` and `validUntil` is its own instant: it
   * holds only where it was computed, all a pipeline without layers uses, and the recording's cost is saved.
   */
  readonly recordReads?: boolean;
}

export class ReferenceResolver implements CheckResolver {
  readonly layer = "evaluator";
  readonly #program: Program;
  readonly #store: TupleStore;
  readonly #maxDepth: number;
  readonly #record: boolean;
  readonly #counters = new LayerCounters();
  #batches = 0;

  constructor(options: ReferenceResolverOptions) {
    this.#program = options.program;
    this.#store = options.store;
    this.#maxDepth = options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    this.#record = options.recordReads !== false;
  }

  async resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    const [outcome] = await this.resolveMany([check], signal);
    if (outcome instanceof Error) throw outcome;
    return outcome!;
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    throwIfAborted(signal);
    this.#batches++;
    const outcomes: BatchOutcome[] = new Array(checks.length);
    // One scope per (revision, instant, context); a check with contextual tuples gets its own.
    const groups = new Map<string, number[]>();
    checks.forEach((c, i) => {
      const identity = scopeOf(c);
      const scope =
        identity === undefined
          ? `#${i}`
          : `${c.revision}\u0000${c.now}\u0000${c.context === undefined ? "" : contextPart(identity)}`;
      const group = groups.get(scope);
      if (group === undefined) groups.set(scope, [i]);
      else group.push(i);
    });
    for (const indexes of groups.values()) {
      const first = checks[indexes[0]!]!;
      const snapshot = await snapshotAtLeast(this.#store, first.revision);
      try {
        const reader = this.#record
          ? new RecordingReader(snapshot, this.#program, first.contextualTuples, first.now)
          : new TupleReader(snapshot, this.#program, first.contextualTuples, first.now);
        const ev = new Evaluation(reader, {
          ...(first.context !== undefined ? { context: first.context } : {}),
          maxDepth: this.#maxDepth,
        });
        for (const i of indexes) {
          throwIfAborted(signal);
          const c = checks[i]!;
          this.#counters.requests++;
          this.#counters.evaluations++;
          const record = reader instanceof RecordingReader ? new ReadRecord(c.now) : undefined;
          if (record !== undefined) (reader as RecordingReader).current = record;
          try {
            const allowed = await check(ev, c);
            outcomes[i] =
              record === undefined
                ? { allowed, revision: snapshot.revision, validUntil: c.now }
                : {
                    allowed,
                    revision: snapshot.revision,
                    validUntil: record.validUntil,
                    ...(record.complete ? { reads: [...record.reads] } : {}),
                  };
          } catch (error) {
            outcomes[i] = error instanceof Error ? error : new Error(String(error));
          } finally {
            if (record !== undefined) (reader as RecordingReader).current = undefined;
          }
        }
      } finally {
        snapshot.release();
      }
    }
    return outcomes;
  }

  stats(): LayerStats[] {
    return [this.#counters.snapshot(this.layer, true, { batches: this.#batches })];
  }

  async close(): Promise<void> {}
}

/** The context part of a question's scope or key (its last NUL-separated field). */
function contextPart(key: string): string {
  return key.slice(key.lastIndexOf("\u0000") + 1);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(signal);
}

export function abortedError(signal: AbortSignal): NexusError {
  return new NexusError("aborted", "the check was aborted", undefined, { cause: signal.reason });
}

/** What one check read: its tuple lists and the earliest expiry (after its instant) among their tuples. */
class ReadRecord {
  readonly reads = new Set<string>();
  validUntil = Number.POSITIVE_INFINITY;
  /** False once the check read something other than object lists (its dependencies are then unknown). */
  complete = true;
  readonly #now: number;

  constructor(now: number) {
    this.#now = now;
  }

  see(tuples: readonly RelationTuple[]): void {
    for (const t of tuples) {
      const at = t.expiresAt;
      if (at !== undefined && at > this.#now && at < this.validUntil) this.validUntil = at;
    }
  }
}

/**
 * A tuple reader that records, for the check running now, every list it hands out (reads are still shared by the
 * checks of a batch: a list read once serves all, and is recorded for each check that asks for it).
 */
class RecordingReader extends TupleReader {
  current: ReadRecord | undefined;

  override byObject(tenant: string, object: string, relation: string): Promise<readonly RelationTuple[]> {
    const record = this.current;
    const result = super.byObject(tenant, object, relation);
    if (record === undefined) return result;
    record.reads.add(readKey(tenant, object, relation));
    return result.then((tuples) => {
      record.see(tuples);
      return tuples;
    });
  }

  override bySubject(subjectTenant: string, user: string): Promise<readonly RelationTuple[]> {
    if (this.current !== undefined) this.current.complete = false;
    return super.bySubject(subjectTenant, user);
  }
}
