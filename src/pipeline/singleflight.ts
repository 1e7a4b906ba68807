/**
 * Singleflight: identical questions at the same revision that are in flight together share one
 * evaluation. The first one leads (its question goes to the next layer); the others wait for its answer.
 *
 * - An error reaches every waiter.
 * - Each waiter may bring an AbortSignal: aborting it rejects only that waiter ("aborted"). When every waiter of
 *   an evaluation has aborted, the evaluation itself is aborted (its signal goes to the next layer).
 * - An evaluation leaves the in-flight table as soon as it settles or loses its last waiter, and a waiter removes
 *   its abort listener when it settles: nothing stays behind.
 * - A waiter that joined later than the leader's instant gets the shared answer only while that answer is still
 *   valid at its own instant (an expiry in between makes it evaluate on its own).
 *
 * Flights are found by object (one Map lookup of a string V8 has usually hashed already), then by revision, scope
 * and subject among the few flights on that object: no key text is built per question. A batch's leaders get a
 * promise only when someone joins them (most never are): the batch settles them itself when its answers come.
 */
import { abortedError } from "./reference.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
  scopeOf,
} from "./types.js";

interface Flight {
  readonly revision: number;
  readonly scope: string;
  readonly user: string;
  readonly object: string;
  /** The evaluation's answer; for a batch's leader, made only when a waiter joins (see #promiseOf). */
  promise: Promise<Resolution> | undefined;
  /** Settles a batch leader's promise once one was made. */
  settle: { resolve: (r: Resolution) => void; reject: (e: unknown) => void } | undefined;
  /** A batch leader's outcome once its batch answered (a waiter joining after that gets it at once). */
  outcome: BatchOutcome | undefined;
  /**
   * Aborts the evaluation once every waiter has given up. Absent when the leader brought no signal: the leader then
   * waits to the end, so the evaluation can never lose all its waiters (and creating a controller per check costs).
   */
  readonly abort: AbortController | undefined;
  waiters: number;
}

export class SingleflightResolver implements CheckResolver {
  readonly layer = "singleflight";
  readonly #inner: CheckResolver;
  /** object → its flight, or its flights when several are in flight on one object. */
  readonly #flights = new Map<string, Flight | Flight[]>();
  #inFlight = 0;
  readonly #counters = new LayerCounters();
  #maxInFlight = 0;

  constructor(inner: CheckResolver) {
    this.#inner = inner;
  }

  /** Evaluations in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  async resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    this.#counters.requests++;
    const scope = scopeOf(check);
    if (scope === undefined) {
      this.#counters.misses++;
      return this.#inner.resolve(check, signal);
    }
    let flight = this.#find(check.object, check.revision, scope, check.user);
    let resolution: Resolution;
    if (flight === undefined) {
      this.#counters.misses++;
      this.#counters.evaluations++;
      const abort = signal === undefined ? undefined : new AbortController();
      const promise = this.#inner.resolve(check, abort?.signal);
      flight = this.#flight(check, scope, promise, abort, 0);
      this.#add(flight);
      if (signal === undefined) {
        // The leader waits to the end: it takes the flight out of the table itself, with no handler of its own.
        flight.waiters++;
        try {
          resolution = await promise;
        } finally {
          flight.waiters--;
          this.#remove(flight);
        }
        // (An evaluator may answer for its own instant only; then even the leader evaluates again, as before.)
        return check.now >= resolution.validUntil ? this.#inner.resolve(check, signal) : resolution;
      }
      const leave = (): void => this.#remove(flight!);
      promise.then(leave, leave);
    } else {
      this.#counters.shared++;
    }
    resolution = await this.#wait(flight, signal);
    if (check.now >= resolution.validUntil) {
      // The shared answer expired between the leader's instant and this waiter's: evaluate again.
      return this.#inner.resolve(check, signal);
    }
    return resolution;
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    // Batches share flights question by question; the questions that lead go down together as one batch.
    const count = checks.length;
    const outcomes: BatchOutcome[] = new Array(count);
    const waits: Promise<void>[] = [];
    const leaders: number[] = [];
    /** The flight each leader registered (undefined for a question that is never shared). */
    const led: (Flight | undefined)[] = [];
    // The batch's leaders share one abort (the batch evaluates them in one call), made when someone may need it.
    let shared: AbortController | undefined;
    for (let i = 0; i < count; i++) {
      const check = checks[i]!;
      const scope = scopeOf(check);
      if (scope === undefined) {
        leaders.push(i);
        led.push(undefined);
        this.#counters.misses++;
        continue;
      }
      const onObject = this.#flights.get(check.object);
      const flight = onObject === undefined ? undefined : match(onObject, check.revision, scope, check.user);
      if (flight === undefined) {
        this.#counters.misses++;
        this.#counters.evaluations++;
        // The batch counts as a waiter of each of its flights, so another caller giving up never aborts the batch:
        // only the batch's own signal does (without one, no controller is needed).
        if (signal !== undefined) shared ??= new AbortController();
        const mine = this.#flight(check, scope, undefined, shared, 1);
        this.#add(mine, onObject);
        leaders.push(i);
        led.push(mine);
      } else {
        this.#counters.shared++;
        waits.push(
          this.#wait(flight, signal).then(
            (r) => {
              outcomes[i] = r;
            },
            (e: unknown) => {
              outcomes[i] = e instanceof Error ? e : new Error(String(e));
            },
          ),
        );
      }
    }
    this.#counters.requests += count;
    if (leaders.length > 0) {
      const onAbort = (): void => shared?.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const all = leaders.length === count;
        const answers = await this.#inner.resolveMany(
          all ? checks : leaders.map((i) => checks[i]!),
          shared?.signal ?? signal,
        );
        for (let j = 0; j < leaders.length; j++) {
          const answer = answers[j]!;
          outcomes[leaders[j]!] = answer;
          const flight = led[j];
          if (flight === undefined) continue;
          flight.outcome = answer;
          this.#remove(flight);
          const settle = flight.settle;
          if (settle === undefined) continue;
          if (answer instanceof Error) settle.reject(answer);
          else settle.resolve(answer);
        }
      } catch (error) {
        for (const flight of led) {
          if (flight === undefined || flight.outcome !== undefined) continue;
          flight.outcome = error instanceof Error ? error : new Error(String(error));
          this.#remove(flight);
          flight.settle?.reject(error);
        }
        throw signal?.aborted ? abortedError(signal) : error;
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    }
    if (waits.length > 0) await Promise.all(waits);
    if (signal?.aborted) throw abortedError(signal);
    return outcomes;
  }

  stats(): LayerStats[] {
    return [
      this.#counters.snapshot(this.layer, true, {
        inFlight: this.#inFlight,
        maxInFlight: this.#maxInFlight,
      }),
      ...this.#inner.stats(),
    ];
  }

  async close(): Promise<void> {
    await this.#inner.close();
  }

  #flight(
    check: ResolvedCheck,
    scope: string,
    promise: Promise<Resolution> | undefined,
    abort: AbortController | undefined,
    waiters: number,
  ): Flight {
    return {
      revision: check.revision,
      scope,
      user: check.user,
      object: check.object,
      promise,
      settle: undefined,
      outcome: undefined,
      abort,
      waiters,
    };
  }

  /** The flight in the table for this question, if any. */
  #find(object: string, revision: number, scope: string, user: string): Flight | undefined {
    const found = this.#flights.get(object);
    return found === undefined ? undefined : match(found, revision, scope, user);
  }

  /** Adds a flight; `found` is what the table holds on its object now, when the caller just read it. */
  #add(flight: Flight, found: Flight | Flight[] | undefined = this.#flights.get(flight.object)): void {
    const object = flight.object;
    if (found === undefined) this.#flights.set(object, flight);
    else if (Array.isArray(found)) found.push(flight);
    else this.#flights.set(object, [found, flight]);
    if (++this.#inFlight > this.#maxInFlight) this.#maxInFlight = this.#inFlight;
  }

  /** Takes a flight out of the table (if it is still there). */
  #remove(flight: Flight): void {
    const object = flight.object;
    const found = this.#flights.get(object);
    if (found === flight) {
      this.#flights.delete(object);
      this.#inFlight--;
    } else if (Array.isArray(found)) {
      const i = found.indexOf(flight);
      if (i < 0) return;
      found.splice(i, 1);
      if (found.length === 1) this.#flights.set(object, found[0]!);
      this.#inFlight--;
    }
  }

  /** The flight's answer as a promise, made on first need for a batch's leader. */
  #promiseOf(flight: Flight): Promise<Resolution> {
    if (flight.promise !== undefined) return flight.promise;
    const outcome = flight.outcome;
    if (outcome !== undefined) {
      flight.promise = outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome);
    } else {
      flight.promise = new Promise<Resolution>((resolve, reject) => {
        flight.settle = { resolve, reject };
      });
    }
    // Its rejection is observed by the waiters; this keeps an unwaited one from being reported as unhandled.
    flight.promise.catch(() => {});
    return flight.promise;
  }

  /** Waits for a flight on behalf of one caller, whose signal cancels only its own wait. */
  #wait(flight: Flight, signal: AbortSignal | undefined): Promise<Resolution> {
    const promise = this.#promiseOf(flight);
    if (signal === undefined) {
      flight.waiters++;
      return promise.finally(() => {
        flight.waiters--;
      });
    }
    if (signal.aborted) return Promise.reject(abortedError(signal));
    flight.waiters++;
    return new Promise<Resolution>((resolve, reject) => {
      let done = false;
      const finish = (): void => {
        done = true;
        flight.waiters--;
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = (): void => {
        if (done) return;
        finish();
        reject(abortedError(signal));
        if (flight.waiters === 0) {
          // Nobody wants this answer any more: stop the evaluation and forget it now.
          flight.abort?.abort(signal.reason);
          this.#remove(flight);
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (r) => {
          if (done) return;
          finish();
          resolve(r);
        },
        (e: unknown) => {
          if (done) return;
          finish();
          reject(e);
        },
      );
    });
  }
}

/** The flight among those on one object that answers (revision, scope, user), if any. */
function match(found: Flight | Flight[], revision: number, scope: string, user: string): Flight | undefined {
  if (!Array.isArray(found)) {
    return found.revision === revision && found.scope === scope && found.user === user ? found : undefined;
  }
  for (const f of found) if (f.revision === revision && f.scope === scope && f.user === user) return f;
  return undefined;
}
