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
 */
import { abortedError } from "./reference.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
} from "./types.js";

interface Flight {
  readonly promise: Promise<Resolution>;
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
  readonly #flights = new Map<string, Flight>();
  readonly #counters = new LayerCounters();
  #maxInFlight = 0;

  constructor(inner: CheckResolver) {
    this.#inner = inner;
  }

  /** Evaluations in flight now. */
  get inFlight(): number {
    return this.#flights.size;
  }

  async resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    this.#counters.requests++;
    if (check.key === undefined) {
      this.#counters.misses++;
      return this.#inner.resolve(check, signal);
    }
    const flightKey = `${check.revision}\u0000${check.key}`;
    let flight = this.#flights.get(flightKey);
    if (flight === undefined) {
      this.#counters.misses++;
      this.#counters.evaluations++;
      flight = this.#start(flightKey, check, signal);
    } else {
      this.#counters.shared++;
    }
    const resolution = await this.#wait(flightKey, flight, signal);
    if (check.now >= resolution.validUntil) {
      // The shared answer expired between the leader's instant and this waiter's: evaluate again.
      return this.#inner.resolve(check, signal);
    }
    return resolution;
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    // Batches share flights question by question; the questions that lead go down together as one batch.
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const waits: Promise<void>[] = [];
    const leaders: number[] = [];
    const settle = new Map<number, { resolve: (r: Resolution) => void; reject: (e: unknown) => void }>();
    const shared = new AbortController();
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      this.#counters.requests++;
      if (check.key === undefined) {
        leaders.push(i);
        this.#counters.misses++;
        continue;
      }
      const flightKey = `${check.revision}\u0000${check.key}`;
      let flight = this.#flights.get(flightKey);
      if (flight === undefined) {
        this.#counters.misses++;
        this.#counters.evaluations++;
        let resolve!: (r: Resolution) => void;
        let reject!: (e: unknown) => void;
        const promise = new Promise<Resolution>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        // The batch's leaders share one abort (the batch evaluates them in one call), and the batch counts as a
        // waiter of each, so another caller giving up never aborts the batch.
        flight = { promise, abort: shared, waiters: 1 };
        this.#track(flightKey, flight);
        settle.set(i, { resolve, reject });
        leaders.push(i);
      } else {
        this.#counters.shared++;
        waits.push(
          this.#wait(flightKey, flight, signal).then(
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
    if (leaders.length > 0) {
      const onAbort = (): void => shared.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const answers = await this.#inner.resolveMany(
          leaders.map((i) => checks[i]!),
          shared.signal,
        );
        leaders.forEach((i, j) => {
          const answer = answers[j]!;
          outcomes[i] = answer;
          const pending = settle.get(i);
          if (pending === undefined) return;
          if (answer instanceof Error) pending.reject(answer);
          else pending.resolve(answer);
        });
      } catch (error) {
        for (const pending of settle.values()) pending.reject(error);
        throw signal?.aborted ? abortedError(signal) : error;
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    }
    await Promise.all(waits);
    if (signal?.aborted) throw abortedError(signal);
    return outcomes;
  }

  stats(): LayerStats[] {
    return [
      this.#counters.snapshot(this.layer, true, {
        inFlight: this.#flights.size,
        maxInFlight: this.#maxInFlight,
      }),
      ...this.#inner.stats(),
    ];
  }

  async close(): Promise<void> {
    await this.#inner.close();
  }

  #start(flightKey: string, check: ResolvedCheck, signal: AbortSignal | undefined): Flight {
    const abort = signal === undefined ? undefined : new AbortController();
    const promise = this.#inner.resolve(check, abort?.signal);
    const flight: Flight = { promise, abort, waiters: 0 };
    this.#track(flightKey, flight);
    return flight;
  }

  /** Registers a flight and removes it once it settles (whoever waits). */
  #track(flightKey: string, flight: Flight): void {
    this.#flights.set(flightKey, flight);
    if (this.#flights.size > this.#maxInFlight) this.#maxInFlight = this.#flights.size;
    const leave = (): void => {
      if (this.#flights.get(flightKey) === flight) this.#flights.delete(flightKey);
    };
    // The table entry goes whatever the outcome; rejections are observed by the waiters (this handler too).
    flight.promise.then(leave, leave);
  }

  /** Waits for a flight on behalf of one caller, whose signal cancels only its own wait. */
  #wait(flightKey: string, flight: Flight, signal: AbortSignal | undefined): Promise<Resolution> {
    if (signal === undefined) {
      flight.waiters++;
      return flight.promise.finally(() => {
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
          if (this.#flights.get(flightKey) === flight) this.#flights.delete(flightKey);
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      flight.promise.then(
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
