/**
 * The Warmer: owns an access tracker and a background loop. `observe()` is synchronous and O(1) (it copies the
 * access into a bounded ring; learning and predicting happen later, in the loop, off the request path); the loop
 * turns accesses into predicted questions and hands them in batches to `warm` (the chain's filter / checkMany,
 * see warm-through.ts), within a budget: questions per second (token bucket), batches in flight, a queue bound
 * (oldest dropped), and no question asked twice within `recentMs` unless a change made its answer stale.
 * Subscribed to the change feed, it also re-warms what the most recently active users will ask once a change
 * becomes visible (the next quantization window), so their next request does not pay for the invalidation; with the
 * model's influence map, only the questions the changed tuples can affect.
 *
 * Never a long task: the loop runs in steps of at most SLICE_MS (4 ms) of real time that yield to the event loop
 * between them; a backlog (a bulk check's thousand accesses) is predicted only as far as the queue can keep; warm
 * calls are sized to what fits a slice at the measured cost of a question; and none starts within afterChangeMs of
 * a change, so the writer's next read goes first. observe() writes a few slots of a ring (observations.ts) and
 * allocates nothing.
 *
 * Warming can only fill caches: every question goes through the chain's public entry points, which answer
 * exactly with or without it. Errors of warm requests are swallowed and counted.
 *
 * Runtime-neutral (no `node:` import): only setTimeout/clearTimeout, unref'd where the runtime has it, so an idle
 * warmer never keeps a process alive. Owner: whoever creates the Warmer closes it; close() stops the loop, clears
 * its timer, aborts and awaits the warm requests in flight.
 */

import type { ChangeListener } from "../../changes/feed.js";
import type { InfluenceMap } from "../../changes/influence.js";
import type { Revision, StoredChange } from "../../tuples/types.js";
import { NexusError } from "../../util/errors.js";
import { Observations } from "./observations.js";
import { functionOption, nonNegativeNumber, optionsObject, positiveInteger } from "./options.js";
import { QuestionHash } from "./question-table.js";
import {
  type Access,
  isAccessLike,
  type Listing,
  SEP,
  type TrackedVisit,
  type WarmQuestion,
} from "./questions.js";
import { RecentQuestions, WarmQueue } from "./recent.js";
import { Ring } from "./ring.js";
import { AccessTracker, type AccessTrackerOptions, type AccessTrackerStats } from "./tracker.js";

/**
 * Runs warm questions (answers are discarded). `signal` aborts when the warmer closes. Rejecting counts as an
 * error; it never reaches the caller of observe().
 */
export type WarmFn = (questions: readonly WarmQuestion[], signal: AbortSignal) => Promise<unknown>;

export interface WarmerOptions {
  /** Where warm questions go: `warmThrough(chain)` (required). */
  readonly warm: WarmFn;
  /** The tracker to learn with, or options for a new one (default: a new tracker with default bounds). */
  readonly tracker?: AccessTracker | AccessTrackerOptions;
  /** Questions predicted per access (default 16). */
  readonly predictions?: number;
  /** Rate budget: warm questions per second, on average (default 1,000; Infinity: no rate limit). */
  readonly questionsPerSecond?: number;
  /** Token-bucket size: questions that may go at once after a quiet spell (default 128). */
  readonly burst?: number;
  /** Questions per warm call (default 32). */
  readonly batchSize?: number;
  /** Warm calls in flight at once (default 2). */
  readonly maxInFlight?: number;
  /** Questions waiting (default 1,024); beyond it the oldest is dropped. */
  readonly maxQueue?: number;
  /** Accesses waiting to be predicted from (default 1,024); beyond it the oldest is dropped. */
  readonly maxPendingAccesses?: number;
  /** A question warmed or asked within this many ms is not warmed again (default 5,000), unless a change since. */
  readonly recentMs?: number;
  /** Questions remembered as recent (default 20,000; least recent forgotten). */
  readonly maxRecent?: number;
  /**
   * The chain's quantization window (default 0): a change becomes visible to minimize_latency reads at the next
   * window boundary, which is when the refresh after a change runs.
   */
  readonly quantizationWindowMs?: number;
  /** After a change, re-warm the last access (and its predictions) of this many most recent users (default 16). */
  readonly refreshUsers?: number;
  /**
   * After a change, no warm call starts for this many ms (default 10; clock time): the requests that follow a
   * write (its writer's next read) are answered first, and they, not the warmer, pay for the first questions at
   * the new revision.
   */
  readonly afterChangeMs?: number;
  /**
   * Which check classes (`type#relation`) a changed tuple can affect: the chain's model analysis
   * (`influenceOf(program)`, src/changes/influence.ts). With it, a refresh re-warms only the visits whose question a
   * change can affect, and a change that can affect no class leaves the warm answers' recency alone. Without it,
   * every change counts as a change to everything.
   */
  readonly influence?: Pick<InfluenceMap, "affectedBy">;
  /** Epoch ms (default Date.now): the chain's clock, for the budget, recency and window boundaries. */
  readonly clock?: () => number;
}

export interface WarmerStats {
  /** Accesses and listings observed. */
  readonly observed: number;
  /** Observed inputs ignored (not an access, or after close). */
  readonly ignored: number;
  /** Questions predicted (before dedup and recency). */
  readonly predicted: number;
  /** Predicted questions skipped as asked or warmed recently. */
  readonly skippedRecent: number;
  /** Questions handed to `warm` that completed. */
  readonly warmed: number;
  /** Warm calls made. */
  readonly batches: number;
  /** Questions and accesses dropped by the queue bounds (oldest first). */
  readonly dropped: number;
  /** Warm calls that failed (their questions are not marked warm). */
  readonly errors: number;
  readonly lastError?: string;
  /** Questions of warm calls cut short by close(). */
  readonly aborted: number;
  /** Refreshes run after changes. */
  readonly refreshes: number;
  /** Steps of the loop cut short to let the event loop turn (each ran SLICE_MS, 4 ms, of real time). */
  readonly slices: number;
  /**
   * The longest step of the loop so far, in ms of real time: one task's synchronous part, the warm calls it
   * started included (their own first steps: validation, cache lookups, a kernel check).
   */
  readonly longestStepMs: number;
  readonly queueLength: number;
  readonly pendingAccesses: number;
  readonly inFlight: number;
  readonly tracker: AccessTrackerStats;
}

/** Objects of a listing kept for learning: a copy bounded on the request path (trackers read 64 by default). */
const LISTING_PREFIX = 256;

type Timer = ReturnType<typeof setTimeout>;

/** Lets the process exit while only this timer is pending (Node, Bun, Deno); a no-op where timers are numbers. */
function setKeepAlive(timer: Timer, keepAlive: boolean): void {
  const t = timer as unknown as { ref?: () => void; unref?: () => void };
  if (keepAlive) t.ref?.();
  else t.unref?.();
}

const MAX_BACKOFF_MS = 1000;

/** A page of more changes than this (a bulk load) counts as a change to everything, unclassified. */
const MAX_CLASSIFIED_CHANGES = 4096;

/** The check class of a question, as the model analysis names classes: `type#relation`. */
function classOf(q: WarmQuestion): string {
  const colon = q.object.indexOf(":");
  return `${colon < 0 ? q.object : q.object.slice(0, colon)}#${q.relation}`;
}

/**
 * The longest one step of the loop runs (ms of real time) before it yields to the event loop: learning and
 * predicting cost microseconds each, so a slice takes hundreds of them, and a request or a write waits at most this.
 */
const SLICE_MS = 4;
/** Accesses learned, and visits predicted, between two looks at the clock (~0.5 µs and ~5 µs each; a listing,
 * up to 256 objects, is looked after alone). */
const LEARN_CHECK = 8;
const PREDICT_CHECK = 2;
/** Questions in a warm call before their cost is known (a first check at a new revision may take a millisecond). */
const FIRST_BATCH = 8;

/** Real time for slicing (the warmer's own clock may be simulated). */
const monotonicNow: () => number =
  typeof performance !== "undefined" && typeof performance.now === "function"
    ? () => performance.now()
    : Date.now;

export class Warmer implements ChangeListener, AsyncDisposable {
  readonly tracker: AccessTracker;
  readonly #warm: WarmFn;
  readonly #clock: () => number;
  readonly #predictions: number;
  readonly #rate: number;
  readonly #burst: number;
  readonly #batchSize: number;
  readonly #maxInFlight: number;
  readonly #maxQueue: number;
  readonly #recentMs: number;
  readonly #window: number;
  readonly #refreshUsers: number;
  readonly #afterChangeMs: number;
  readonly #influence: Pick<InfluenceMap, "affectedBy"> | undefined;
  /** Observed accesses and listings, not learned yet (learning happens in the loop, off the request path). */
  readonly #observations: Observations;
  /** Learned visits waiting to be predicted from. */
  readonly #pending: Ring<TrackedVisit>;
  /** Questions waiting, oldest first (a re-predicted one moves to the back). */
  readonly #queue: WarmQueue;
  /** Question → when it was last warmed or asked. */
  readonly #recent: RecentQuestions;
  /** Scratch: the hash of the question at hand (recent and queue are keyed by it; no key strings). */
  readonly #hash = new QuestionHash();
  /** Scratch: a visit's predicted objects. */
  readonly #predictedObjects: string[] = [];
  /** The latest visits (4 × refreshUsers), for the refresh after a change. */
  readonly #latest: Ring<TrackedVisit>;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  #idleWaiters: (() => void)[] = [];
  /** Times (clock) at which a change becomes visible and a refresh is due, ascending. */
  #refreshDue: number[] = [];
  /** The classes the changes since the last refresh can affect (all of them when #refreshAll). */
  #refreshClasses = new Set<string>();
  #refreshAll = false;
  /** Warm results and asks from before this instant predate a visible change: not "recent" any more. */
  #freshSince = Number.NEGATIVE_INFINITY;
  /** No warm call starts before this instant (clock): the requests right after a change go first. */
  #holdUntil = Number.NEGATIVE_INFINITY;
  #tokens: number;
  #tokensAt: number;
  #timer: Timer | undefined;
  #timerDue = Number.POSITIVE_INFINITY;
  /** Consecutive timer wake-ups that found the clock not moved (a simulated clock): the wait doubles. */
  #stalls = 0;
  #stallClock = Number.NaN;
  #closing: Promise<void> | undefined;
  #observed = 0;
  #ignored = 0;
  #predicted = 0;
  #skippedRecent = 0;
  #warmed = 0;
  #batches = 0;
  #dropped = 0;
  #errors = 0;
  #lastError: string | undefined;
  #aborted = 0;
  #refreshes = 0;
  /** Measured real time one warm question costs (ms, smoothed; 0 before the first call): sizes batches. */
  #questionMs = 0;
  #slices = 0;
  #longestStepMs = 0;

  constructor(options: WarmerOptions) {
    const o = optionsObject(options, "warmer options");
    const warm = functionOption<WarmFn>("warm", o.warm);
    if (warm === undefined)
      throw new NexusError("invalid_argument", "warm must be a function, got undefined");
    this.#warm = warm;
    this.tracker =
      o.tracker instanceof AccessTracker
        ? o.tracker
        : new AccessTracker(o.tracker as AccessTrackerOptions | undefined);
    this.#clock = functionOption<() => number>("clock", o.clock) ?? Date.now;
    this.#predictions = positiveInteger("predictions", o.predictions, 16, 0);
    this.#rate = nonNegativeNumber("questionsPerSecond", o.questionsPerSecond, 1000);
    if (this.#rate === 0) {
      throw new NexusError(
        "invalid_argument",
        "questionsPerSecond must be > 0 (close the warmer to stop it)",
      );
    }
    this.#batchSize = positiveInteger("batchSize", o.batchSize, 32);
    this.#burst = positiveInteger("burst", o.burst, Math.max(128, this.#batchSize));
    this.#maxInFlight = positiveInteger("maxInFlight", o.maxInFlight, 2);
    this.#maxQueue = positiveInteger("maxQueue", o.maxQueue, 1024);
    this.#queue = new WarmQueue(this.#maxQueue);
    const maxPending = positiveInteger("maxPendingAccesses", o.maxPendingAccesses, 1024);
    this.#observations = new Observations(maxPending);
    this.#pending = new Ring(maxPending);
    this.#recentMs = nonNegativeNumber("recentMs", o.recentMs, 5000);
    this.#recent = new RecentQuestions(positiveInteger("maxRecent", o.maxRecent, 20_000));
    this.#window = positiveInteger("quantizationWindowMs", o.quantizationWindowMs, 0, 0);
    this.#refreshUsers = positiveInteger("refreshUsers", o.refreshUsers, 16, 0);
    this.#latest = new Ring(Math.max(1, 4 * this.#refreshUsers));
    this.#afterChangeMs = nonNegativeNumber("afterChangeMs", o.afterChangeMs, 10);
    const influence = o.influence as Pick<InfluenceMap, "affectedBy"> | undefined;
    if (influence !== undefined && typeof influence?.affectedBy !== "function") {
      throw new NexusError("invalid_argument", "influence must have an affectedBy function");
    }
    this.#influence = influence;
    this.#tokens = this.#burst;
    this.#tokensAt = this.#clock();
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Takes note of an access just answered: a copy goes into a bounded ring, and the loop learns from it and
   * predicts what follows. Synchronous, O(1) (≈0.1 µs), never throws (a malformed access, or any after close(),
   * is ignored and counted): safe on the request path. `at`: the instant it was answered at, when the caller has
   * read this warmer's clock for it already (default: read now; the clock can cost a system call).
   */
  observe(access: Access, at?: number): void {
    if (this.#closing !== undefined || !isAccessLike(access)) {
      this.#ignored++;
      return;
    }
    // Its plain answer is now cached (unless the request carried context or contextual tuples).
    const a = access as { context?: unknown; contextualTuples?: unknown };
    const plain = a.context === undefined && a.contextualTuples === undefined;
    // Its fields are recorded (the caller may reuse the object), nothing allocated; learning happens in the loop.
    const when = at ?? this.#clock();
    this.#observed++;
    const { user, relation, object, tenant, subjectTenant } = access;
    // Counted without a branch: the ring first fills in a burst of checks that never yields to the warmer, and a
    // branch first taken then would throw away the compiled request path (see Observations#slot).
    const dropped = this.#observations.pushAccess(user, relation, object, tenant, subjectTenant, plain, when);
    this.#dropped += dropped ? 1 : 0;
    this.#wake(when);
  }

  /**
   * Takes note of a listing just answered (a filter over one directory's objects). Same guarantees as observe();
   * copies at most the first 256 objects.
   */
  observeListing(listing: Listing): void {
    if (
      this.#closing !== undefined ||
      typeof listing !== "object" ||
      listing === null ||
      !Array.isArray(listing.objects) ||
      !isAccessLike({ ...listing, object: listing.objects[0] })
    ) {
      this.#ignored++;
      return;
    }
    const copy: {
      user: string;
      relation: string;
      objects: string[];
      tenant?: string;
      subjectTenant?: string;
    } = {
      user: listing.user,
      relation: listing.relation,
      objects: listing.objects.slice(0, LISTING_PREFIX),
    };
    if (listing.tenant !== undefined) copy.tenant = listing.tenant;
    if (listing.subjectTenant !== undefined) copy.subjectTenant = listing.subjectTenant;
    const at = this.#clock();
    this.#observed++;
    if (this.#observations.pushListing(copy, at)) this.#dropped++;
    this.#wake(at);
  }

  /**
   * Resolves when the warmer has nothing it may do now: every observed access predicted, no warm call in flight,
   * and the queue empty, the rate budget spent or warm calls held after a change (or the warmer closed). The
   * first slice of work runs at once, not at the next timer: with a simulated clock this makes warming
   * deterministic between steps.
   */
  idle(): Promise<void> {
    if (this.#closing !== undefined) return Promise.resolve();
    this.#pump();
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      // Someone waits on the loop: its timer keeps the process alive until they are answered.
      if (this.#timer !== undefined) setKeepAlive(this.#timer, true);
    });
  }

  /** A change was committed: once it is visible (the next window), refresh what active users will ask. */
  onChanges(changes: readonly StoredChange[], _watermark: Revision): void {
    if (this.#closing !== undefined) return;
    const influence = this.#influence;
    if (influence === undefined || changes.length > MAX_CLASSIFIED_CHANGES) {
      this.#refreshAll = true;
      this.#changed();
      return;
    }
    // Which classes these changes can affect (a page of changes shares a few (type, relation) pairs).
    const classes = this.#refreshClasses;
    let affects = false;
    let last = "";
    for (const { tuple } of changes) {
      const pair = tuple.objectType + SEP + tuple.relation;
      if (pair === last) continue;
      last = pair;
      for (const cls of influence.affectedBy(tuple.objectType, tuple.relation)) {
        classes.add(cls);
        affects = true;
      }
    }
    if (affects) this.#changed();
  }

  /** The feed lost track of changes: treat it as a change to everything. */
  onReset(_revision: Revision): void {
    this.#refreshAll = true;
    this.#changed();
  }

  stats(): WarmerStats {
    return {
      observed: this.#observed,
      ignored: this.#ignored,
      predicted: this.#predicted,
      skippedRecent: this.#skippedRecent,
      warmed: this.#warmed,
      batches: this.#batches,
      dropped: this.#dropped,
      errors: this.#errors,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      aborted: this.#aborted,
      refreshes: this.#refreshes,
      slices: this.#slices,
      longestStepMs: this.#longestStepMs,
      queueLength: this.#queue.size,
      pendingAccesses: this.#observations.length + this.#pending.length,
      inFlight: this.#inFlight.size,
      tracker: this.tracker.stats(),
    };
  }

  /** Stops the loop, clears its timer, aborts the warm calls in flight and waits for them. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) this.#closing = this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stop.abort(new NexusError("closed", "the warmer is closed"));
    const dropped = this.#queue.size;
    this.#queue.clear();
    this.#pending.clear();
    this.#observations.clear();
    this.#recent.clear();
    this.#latest.clear();
    this.#refreshDue = [];
    this.#aborted += dropped;
    await Promise.allSettled([...this.#inFlight]);
    this.#settle();
  }

  /**
   * Makes sure the loop runs soon after an observation. The common case (a loop step already due) is two field
   * reads: the request path pays no timer call.
   */
  #wake(at: number): void {
    if (this.#timer !== undefined && this.#timerDue <= at) return;
    this.#schedule(0, at);
  }

  /**
   * Learns the oldest observation (in the loop); queues it for prediction. True when it was a listing. What was
   * asked is noted as recent only once the tracker can predict at all (objects without a directory, as in a
   * workload of flat ids, teach it nothing): until then no prediction can repeat it, and the note was most of
   * the warmer's cost per check.
   */
  #learnNext(): boolean {
    const observations = this.#observations;
    const at = observations.oldestAt();
    const hash = this.#hash;
    const note = this.#recentMs > 0;
    let visit: TrackedVisit | undefined;
    if (observations.oldestIsListing() === true) {
      const listing = observations.shiftListing();
      try {
        visit = this.tracker.visitListing(listing);
      } catch {
        this.#ignored++; // a caller's directoryOf threw: learning is best effort
      }
      // A listing is a plain filter: every listed answer is now in the caches.
      if (note && this.tracker.canPredict()) {
        hash.begin(listing.user, listing.relation, listing.tenant, listing.subjectTenant);
        for (const object of listing.objects) {
          if (typeof object !== "string") continue;
          hash.object(object);
          this.#recent.mark(hash.a, hash.b, at);
        }
      }
      this.#learned(visit);
      return true;
    }
    // Read in place: an access the tracker cannot predict from (no directory) allocates nothing.
    const user = observations.oldestUser();
    const relation = observations.oldestRelation();
    const object = observations.oldestObject();
    const tenant = observations.oldestTenant();
    const subjectTenant = observations.oldestSubjectTenant();
    const plain = observations.oldestIsPlain();
    observations.dropOldest();
    try {
      visit = this.tracker.visitAccess(user, relation, object, tenant, subjectTenant);
    } catch {
      this.#ignored++;
    }
    if (plain && note && this.tracker.canPredict()) {
      hash.begin(user, relation, tenant, subjectTenant);
      hash.object(object);
      this.#recent.mark(hash.a, hash.b, at);
    }
    this.#learned(visit);
    return false;
  }

  /** Keeps a learned visit for the refresh after a change and for prediction. */
  #learned(visit: TrackedVisit | undefined): void {
    if (visit === undefined) return;
    if (this.#refreshUsers > 0) this.#latest.push(visit);
    if (this.#predictions > 0 && this.#pending.push(visit)) this.#dropped++;
  }

  #changed(): void {
    if (this.#closing !== undefined) return;
    const now = this.#clock();
    const window = this.#window;
    // Reads of the current window keep reading the old revision; the change shows from the next window on.
    const visible = window > 0 ? Math.floor(now / window) * window + window : now;
    const hold = now + this.#afterChangeMs;
    if (hold > this.#holdUntil) this.#holdUntil = hold;
    const due = Math.max(visible, hold);
    const list = this.#refreshDue;
    if (!list.includes(due)) {
      list.push(due);
      list.sort((a, b) => a - b);
      if (list.length > 16) list.shift(); // a later refresh covers the same users
    }
    this.#schedule(Math.max(0, due - now));
  }

  /**
   * One step of the loop: learn the observations, run due refreshes, predict, then start as many warm calls as the
   * budget allows. A step stops after SLICE_MS of real time and goes on in the next task (the same order, so a
   * step cut in slices does what one uncut step does), so a backlog (a bulk check's thousand accesses waiting
   * while the request path held the loop) never holds the event loop for long: requests and writes run between
   * slices.
   */
  #pump(): void {
    if (this.#closing !== undefined) return;
    const began = monotonicNow();
    this.#step(began);
    const took = monotonicNow() - began;
    if (took > this.#longestStepMs) this.#longestStepMs = took;
  }

  #step(began: number): void {
    const now = this.#clock();
    const observations = this.#observations;
    for (let n = 1; observations.length > 0; n++) {
      if (this.#learnNext()) n = 0; // a listing: look at the clock now
      if (n % LEARN_CHECK === 0 && monotonicNow() - began >= SLICE_MS) {
        this.#yieldSlice(now);
        return;
      }
    }
    this.#refresh(now);
    this.#dropUnqueueable();
    const objects = this.#predictedObjects;
    const hash = this.#hash;
    for (let n = 1; this.#pending.length > 0; n++) {
      const visit = this.#pending.shift()!;
      const q = visit.question;
      const predicted = this.tracker.predictObjects(visit, this.#predictions, objects);
      this.#predicted += predicted;
      if (predicted > 0) hash.begin(q.user, q.relation, q.tenant, q.subjectTenant);
      for (const object of objects) {
        hash.object(object);
        this.#enqueue(hash.a, hash.b, q, object, now);
      }
      objects.length = 0; // let the strings go
      if (n % PREDICT_CHECK === 0 && monotonicNow() - began >= SLICE_MS) {
        this.#yieldSlice(now);
        return;
      }
    }
    this.#refill(now);
    // Batches are sized to what fits in the rest of the slice at the measured cost of a question (a warm call's
    // work, synchronous or in the microtasks that follow it, runs in this task before the loop turns).
    let committed = 0;
    let started = 0;
    const held = now < this.#holdUntil;
    while (!held && this.#queue.size > 0 && this.#inFlight.size < this.#maxInFlight && this.#tokens >= 1) {
      const cost = this.#questionMs;
      const left = SLICE_MS - Math.max(monotonicNow() - began, committed);
      if (started > 0 && left < cost) {
        this.#yieldSlice(now);
        this.#settle();
        return;
      }
      const fit = cost > 0 ? Math.max(1, Math.floor(left / cost)) : FIRST_BATCH;
      const n = Math.min(this.#batchSize, fit, Math.floor(this.#tokens), this.#queue.size);
      const batch: WarmQuestion[] = [];
      const queue = this.#queue;
      while (batch.length < n && queue.size > 0) {
        const a = queue.oldestA();
        const b = queue.oldestB();
        const q = queue.shift();
        if (this.#isRecent(a, b, now)) {
          this.#skippedRecent++;
          continue;
        }
        if (this.#recentMs > 0) this.#recent.mark(a, b, now);
        batch.push(q);
      }
      if (batch.length === 0) continue;
      this.#tokens -= batch.length;
      this.#start(batch);
      started++;
      committed += batch.length * cost;
    }
    this.#scheduleNext(now);
    this.#settle();
  }

  /** A step ran out of its slice: the rest runs in the next task (no warm call starts before it). */
  #yieldSlice(now: number): void {
    this.#slices++;
    this.#schedule(0, now);
  }

  /**
   * Visits beyond the newest maxQueue / predictions are dropped unpredicted: the queue keeps the newest maxQueue
   * questions, so what older visits predict would be pushed out by the newer ones' anyway. This bounds the work
   * a backlog costs (a bulk check of 1,000 accesses predicted 16,000 questions to keep 1,024).
   */
  #dropUnqueueable(): void {
    const keep = Math.max(1, Math.ceil(this.#maxQueue / Math.max(1, this.#predictions)));
    while (this.#pending.length > keep) {
      this.#pending.shift();
      this.#dropped++;
    }
  }

  #refresh(now: number): void {
    const due = this.#refreshDue;
    if (due.length === 0 || due[0]! > now) return;
    let visibleFrom = due[0]!;
    while (due.length > 0 && due[0]! <= now) visibleFrom = due.shift()!;
    this.#refreshes++;
    if (visibleFrom > this.#freshSince) this.#freshSince = visibleFrom;
    const all = this.#refreshAll;
    const classes = this.#refreshClasses;
    this.#refreshAll = false;
    this.#refreshClasses = new Set();
    // The last visit of each of the most recently active users whose question the changes can affect, latest
    // first: their next request is the nearest.
    const users = new Set<string>();
    const visits: TrackedVisit[] = [];
    for (const visit of this.#latest.newestFirst()) {
      if (users.has(visit.userKey)) continue;
      users.add(visit.userKey);
      if (!all && !classes.has(classOf(visit.question))) continue;
      visits.push(visit);
      if (visits.length === this.#refreshUsers) break;
    }
    const hash = this.#hash;
    for (const visit of visits) {
      const q = visit.question;
      hash.of(q);
      this.#enqueue(hash.a, hash.b, q, q.object, now);
      // As a single access: a listing's directory contents are re-warmed as its siblings.
      if (this.#predictions > 0 && this.#pending.push({ ...visit, listing: false })) this.#dropped++;
    }
  }

  /** Queues `source`'s question about `object` (hashed (a, b)) unless it was asked or warmed recently. */
  #enqueue(a: number, b: number, source: WarmQuestion, object: string, now: number): void {
    if (this.#isRecent(a, b, now)) {
      this.#skippedRecent++;
      return;
    }
    if (this.#queue.add(a, b, source, object)) this.#dropped++;
  }

  #isRecent(a: number, b: number, now: number): boolean {
    const at = this.#recent.lastAt(a, b); // NaN when not remembered: not recent
    return at >= this.#freshSince && now - at < this.#recentMs;
  }

  #refill(now: number): void {
    if (this.#rate === Number.POSITIVE_INFINITY) {
      this.#tokens = this.#burst;
    } else if (now > this.#tokensAt) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#tokensAt) * this.#rate) / 1000);
    }
    this.#tokensAt = now;
  }

  #start(batch: WarmQuestion[]): void {
    const signal = this.#stop.signal;
    const run = async (): Promise<void> => {
      try {
        const began = monotonicNow();
        await this.#warm(batch, signal);
        if (signal.aborted) {
          this.#aborted += batch.length;
        } else {
          this.#warmed += batch.length;
          // Real time per question, smoothed. Waiting on I/O counts too: an estimate on the high side only makes
          // batches smaller.
          const sample = (monotonicNow() - began) / batch.length;
          this.#questionMs = this.#questionMs === 0 ? sample : 0.75 * this.#questionMs + 0.25 * sample;
        }
      } catch (error) {
        if (signal.aborted) {
          this.#aborted += batch.length;
        } else {
          this.#errors++;
          this.#lastError = error instanceof Error ? error.message : String(error);
          const hash = this.#hash;
          for (const q of batch) {
            hash.of(q);
            this.#recent.delete(hash.a, hash.b); // not warm: may be tried again
          }
        }
      }
    };
    this.#batches++;
    const done: Promise<void> = run().then(() => {
      this.#inFlight.delete(done);
      if (this.#closing !== undefined) return;
      // The next step in a task of its own (also while someone drains): warm calls that settle at once must not
      // chain steps into one long task.
      this.#schedule(0);
    });
    this.#inFlight.add(done);
  }

  /** Wakes the loop for what remains: a token for the queue, or the next refresh. */
  #scheduleNext(now: number): void {
    let delay = Number.POSITIVE_INFINITY;
    if (this.#pending.length > 0 || this.#observations.length > 0) delay = 0;
    else if (this.#queue.size > 0 && this.#inFlight.size < this.#maxInFlight) {
      delay = Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#rate), this.#holdUntil - now);
    }
    const due = this.#refreshDue[0];
    if (due !== undefined) delay = Math.min(delay, Math.max(0, due - now));
    if (delay !== Number.POSITIVE_INFINITY) this.#schedule(delay);
  }

  /** Arms the one timer to fire within `delay` ms (an earlier armed one stays). */
  #schedule(delay: number, now = this.#clock()): void {
    if (this.#closing !== undefined) return;
    // A clock that does not move between wake-ups (simulated time) would make a budget wait spin: back off.
    const wait = delay > 0 && this.#stalls > 0 ? Math.min(MAX_BACKOFF_MS, delay * 2 ** this.#stalls) : delay;
    const due = now + wait;
    if (this.#timer !== undefined) {
      if (this.#timerDue <= due) return;
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    this.#stallClock = now;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Number.POSITIVE_INFINITY;
      const at = this.#clock();
      this.#stalls = wait > 0 && at === this.#stallClock ? Math.min(this.#stalls + 1, 10) : 0;
      this.#pump();
    }, wait);
    setKeepAlive(this.#timer, this.#idleWaiters.length > 0);
  }

  #isIdle(): boolean {
    if (this.#closing !== undefined) return true;
    if (this.#pending.length > 0 || this.#observations.length > 0 || this.#inFlight.size > 0) return false;
    const due = this.#refreshDue[0];
    if (due !== undefined && due <= this.#clock()) return false;
    return this.#queue.size === 0 || this.#tokens < 1 || this.#clock() < this.#holdUntil;
  }

  #settle(): void {
    if (this.#idleWaiters.length === 0 || !this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
    if (this.#timer !== undefined) setKeepAlive(this.#timer, false);
  }
}
