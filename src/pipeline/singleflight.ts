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
 *
 * An evaluation the inner layers answer synchronously (resolveNow: a kernel answer on a current graph) is never in
 * the table at all: JavaScript runs nothing else between its start and its answer, so nobody could have joined it.
 * The table (and its Map traffic, and a flight object per question) is for evaluations that wait.
 */
import { abortedError } from "./reference.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  promised,
  type Resolution,
  type ResolvedCheck,
  resolveManyNow,
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

  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    return promised(() => this.resolveNow(check, signal));
  }

  /**
   * resolve, the answer itself when the layers inside answered without waiting. Such an evaluation is never put in
   * the table: nothing can run, so nothing can join it, between its start and its answer. Only an evaluation that
   * has to wait (the inner layers gave a promise) becomes a flight others join, registered before anything else
   * runs.
   */
  resolveNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    this.#counters.requests++;
    const scope = scopeOf(check);
    if (scope === undefined) {
      this.#counters.misses++;
      return this.#innerNow(check, signal);
    }
    // No flight in the table (the common case once evaluations answer synchronously): no lookup.
    const found =
      this.#inFlight === 0 ? undefined : this.#find(check.object, check.revision, scope, check.user);
    if (found !== undefined) {
      this.#counters.shared++;
      return this.#joined(found, check, signal);
    }
    this.#counters.misses++;
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    this.#counters.evaluations++;
    const abort = signal === undefined ? undefined : new AbortController();
    const answer = this.#innerNow(check, abort?.signal);
    if (!(answer instanceof Promise)) {
      // (An evaluator may answer for its own instant only; then it is asked again, as a leader would be.)
      return check.now >= answer.validUntil ? this.#innerNow(check, signal) : answer;
    }
    const flight = this.#flight(check, scope, answer, abort, 0);
    this.#add(flight);
    if (signal === undefined) return this.#led(flight, answer, check);
    const leave = (): void => this.#remove(flight);
    answer.then(leave, leave);
    return this.#joined(flight, check, signal);
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

  /** A leader without a signal waits to the end: it takes the flight out of the table itself. */
  async #led(flight: Flight, promise: Promise<Resolution>, check: ResolvedCheck): Promise<Resolution> {
    flight.waiters++;
    let resolution: Resolution;
    try {
      resolution = await promise;
    } finally {
      flight.waiters--;
      this.#remove(flight);
    }
    // (An evaluator may answer for its own instant only; then even the leader evaluates again, as before.)
    return check.now >= resolution.validUntil ? this.#inner.resolve(check) : resolution;
  }

  /** A caller waiting for a flight (its own, with a signal, or another's). */
  async #joined(flight: Flight, check: ResolvedCheck, signal: AbortSignal | undefined): Promise<Resolution> {
    const resolution = await this.#wait(flight, signal);
    if (check.now >= resolution.validUntil) {
      // The shared answer expired between the leader's instant and this waiter's: evaluate again.
      return this.#inner.resolve(check, signal);
    }
    return resolution;
  }

  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return promised(() => this.resolveManyNow(checks, signal));
  }

  /**
   * resolveMany, the outcomes themselves when no question joined a flight and the layers inside answered without
   * waiting. As for resolveNow, the batch's questions become flights only when the inner batch has to wait; then
   * an identical question later in the same batch is evaluated with it (the evaluator shares identical questions
   * of a batch itself) rather than joining it. Against an inner layer written to the promise contract alone, every
   * leader is registered before it goes down, as ever (#resolveManyShared).
   */
  resolveManyNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    if (this.#inner.resolveManyNow === undefined) return this.#resolveManyShared(checks, signal);
    const count = checks.length;
    this.#counters.requests += count;
    // Leaders' positions, made only once a question joins a flight (until then every question leads).
    let leaders: number[] | undefined;
    let joined: number[] | undefined;
    let joinedFlights: Flight[] | undefined;
    const anyInFlight = this.#inFlight > 0;
    for (let i = 0; i < count; i++) {
      const check = checks[i]!;
      const scope = scopeOf(check);
      const flight =
        anyInFlight && scope !== undefined
          ? this.#find(check.object, check.revision, scope, check.user)
          : undefined;
      if (flight === undefined) {
        this.#counters.misses++;
        if (scope !== undefined) this.#counters.evaluations++;
        leaders?.push(i);
        continue;
      }
      this.#counters.shared++;
      if (leaders === undefined) {
        leaders = [];
        for (let k = 0; k < i; k++) leaders.push(k);
        joined = [];
        joinedFlights = [];
      }
      joined!.push(i);
      joinedFlights!.push(flight);
    }
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    const leading = leaders === undefined ? checks : leaders.map((i) => checks[i]!);
    const answers = leading.length === 0 ? [] : resolveManyNow(this.#inner, leading, signal);
    if (!(answers instanceof Promise) && joined === undefined) return answers;
    return this.#settleBatch(checks, leaders, leading, answers, joined, joinedFlights, signal);
  }

  /**
   * The rest of resolveManyNow once something waits: the leaders become flights while their batch is evaluated
   * (registered now, before anything else runs), the joined questions wait for theirs.
   */
  async #settleBatch(
    checks: readonly ResolvedCheck[],
    leaders: readonly number[] | undefined,
    leading: readonly ResolvedCheck[],
    answers: BatchOutcome[] | Promise<BatchOutcome[]>,
    joined: readonly number[] | undefined,
    joinedFlights: readonly Flight[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const waits: Promise<void>[] = [];
    if (joined !== undefined) {
      for (let k = 0; k < joined.length; k++) {
        const i = joined[k]!;
        waits.push(
          this.#wait(joinedFlights![k]!, signal).then(
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
    if (answers instanceof Promise) {
      // The batch counts as a waiter of each of its flights (so others giving up never abort it: only its own
      // signal, which the inner batch has, does).
      const led: (Flight | undefined)[] = new Array(leading.length);
      for (let j = 0; j < leading.length; j++) {
        const check = leading[j]!;
        const scope = scopeOf(check);
        // An identical question earlier in this batch leads already.
        if (
          scope === undefined ||
          this.#find(check.object, check.revision, scope, check.user) !== undefined
        ) {
          continue;
        }
        const flight = this.#flight(check, scope, undefined, undefined, 1);
        this.#add(flight);
        led[j] = flight;
      }
      let settled: BatchOutcome[];
      try {
        settled = await answers;
      } catch (error) {
        for (const flight of led) {
          if (flight === undefined || flight.outcome !== undefined) continue;
          flight.outcome = error instanceof Error ? error : new Error(String(error));
          this.#remove(flight);
          flight.settle?.reject(error);
        }
        throw signal?.aborted ? abortedError(signal) : error;
      }
      for (let j = 0; j < leading.length; j++) {
        const answer = settled[j]!;
        const flight = led[j];
        if (flight === undefined) continue;
        flight.outcome = answer;
        this.#remove(flight);
        const settle = flight.settle;
        if (settle === undefined) continue;
        if (answer instanceof Error) settle.reject(answer);
        else settle.resolve(answer);
      }
      answers = settled;
    }
    for (let j = 0; j < leading.length; j++) outcomes[leaders === undefined ? j : leaders[j]!] = answers[j]!;
    if (waits.length > 0) await Promise.all(waits);
    if (signal?.aborted) throw abortedError(signal);
    return outcomes;
  }

  /** resolveMany over an inner layer of the promise contract alone: every leader registered before it goes down. */
  async #resolveManyShared(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
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
