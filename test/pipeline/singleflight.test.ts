import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { SingleflightResolver } from "../../src/pipeline/singleflight.js";
import type {
  BatchOutcome,
  CheckResolver,
  LayerStats,
  Resolution,
  ResolvedCheck,
} from "../../src/pipeline/types.js";
import { NexusError } from "../../src/util/errors.js";

/** An evaluator whose answers the test releases by hand, counting evaluations and remembering their signals. */
class ManualResolver implements CheckResolver {
  readonly layer = "evaluator";
  evaluations = 0;
  readonly signals: (AbortSignal | undefined)[] = [];
  readonly pending: { resolve: (r: Resolution) => void; reject: (e: unknown) => void }[] = [];

  resolve(_check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    this.evaluations++;
    this.signals.push(signal);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return Promise.all(
      checks.map((c) => this.resolve(c, signal).catch((e: unknown) => e as Error)),
    ) as Promise<BatchOutcome[]>;
  }

  stats(): LayerStats[] {
    return [];
  }

  async close(): Promise<void> {}
}

function question(user = "user:anne", revision = 1, now = 0): ResolvedCheck {
  return {
    tenant: "default",
    subjectTenant: "default",
    object: "doc:1",
    objectType: "doc",
    relation: "viewer",
    subject: { kind: "object", type: "user", id: user.slice(5) },
    user,
    revision,
    now,
    context: undefined,
    contextualTuples: [],
    key: `default\u0000default\u0000doc:1\u0000viewer\u0000${user}\u0000`,
  };
}

const yes: Resolution = { allowed: true, revision: 1, validUntil: Number.POSITIVE_INFINITY };
const tick = () => new Promise<void>((r) => setTimeout(r, 0));

describe("SingleflightResolver", () => {
  it("100 concurrent identical checks run one evaluation, and the table empties", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const answers = Array.from({ length: 100 }, () => flight.resolve(question()));
    expect(inner.evaluations).toBe(1);
    expect(flight.inFlight).toBe(1);
    inner.pending[0]!.resolve(yes);
    expect((await Promise.all(answers)).every((a) => a.allowed)).toBe(true);
    expect(flight.inFlight).toBe(0);
    const [stats] = flight.stats();
    expect(stats).toMatchObject({ requests: 100, evaluations: 1, shared: 99, misses: 1 });
  });

  it("does not share across revisions or questions", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const a = flight.resolve(question("user:anne", 1));
    const b = flight.resolve(question("user:anne", 2));
    const c = flight.resolve(question("user:bob", 1));
    expect(inner.evaluations).toBe(3);
    for (const p of inner.pending) p.resolve(yes);
    await Promise.all([a, b, c]);
    expect(flight.inFlight).toBe(0);
  });

  it("an error reaches every waiter", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const answers = Array.from({ length: 10 }, () =>
      flight.resolve(question()).then(
        () => "ok",
        (e) => e,
      ),
    );
    inner.pending[0]!.reject(new NexusError("resolution_too_complex", "too deep"));
    const errors = await Promise.all(answers);
    expect(errors.every((e) => e instanceof NexusError && e.code === "resolution_too_complex")).toBe(true);
    expect(flight.inFlight).toBe(0);
  });

  it("one waiter's AbortSignal cancels only that waiter and leaves no listener behind", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const mine = new AbortController();
    const theirs = new AbortController();
    const aborted = flight.resolve(question(), mine.signal);
    const kept = flight.resolve(question(), theirs.signal);
    const plain = flight.resolve(question());
    expect(getEventListeners(mine.signal, "abort")).toHaveLength(1);
    mine.abort();
    await expect(aborted).rejects.toMatchObject({ code: "aborted" });
    expect(getEventListeners(mine.signal, "abort")).toHaveLength(0);
    expect(inner.signals[0]!.aborted).toBe(false);
    inner.pending[0]!.resolve(yes);
    expect((await kept).allowed).toBe(true);
    expect((await plain).allowed).toBe(true);
    expect(getEventListeners(theirs.signal, "abort")).toHaveLength(0);
    expect(flight.inFlight).toBe(0);
  });

  it("when every waiter aborts, the evaluation is aborted and forgotten at once", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const controllers = Array.from({ length: 3 }, () => new AbortController());
    const answers = controllers.map((c) => flight.resolve(question(), c.signal).catch((e) => e));
    for (const c of controllers) c.abort();
    const errors = await Promise.all(answers);
    expect(errors.every((e) => e instanceof NexusError && e.code === "aborted")).toBe(true);
    expect(inner.signals[0]!.aborted).toBe(true);
    expect(flight.inFlight).toBe(0);
    // The evaluation settling later (even with an error) changes nothing and leaks nothing.
    inner.pending[0]!.reject(new NexusError("aborted", "stopped"));
    await tick();
    expect(flight.inFlight).toBe(0);
    // A new identical question starts a new evaluation.
    const again = flight.resolve(question());
    expect(inner.evaluations).toBe(2);
    inner.pending[1]!.resolve(yes);
    expect((await again).allowed).toBe(true);
  });

  it("an already aborted signal rejects at once without starting anything shared", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const first = flight.resolve(question());
    await expect(flight.resolve(question(), AbortSignal.abort())).rejects.toMatchObject({ code: "aborted" });
    inner.pending[0]!.resolve(yes);
    await first;
    expect(flight.inFlight).toBe(0);
  });

  it("a waiter whose instant is past the shared answer's validity evaluates on its own", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const leader = flight.resolve(question("user:anne", 1, 0));
    const late = flight.resolve(question("user:anne", 1, 200));
    expect(inner.evaluations).toBe(1);
    inner.pending[0]!.resolve({ allowed: true, revision: 1, validUntil: 100 });
    expect((await leader).allowed).toBe(true);
    await tick();
    expect(inner.evaluations).toBe(2);
    inner.pending[1]!.resolve({ allowed: false, revision: 1, validUntil: Number.POSITIVE_INFINITY });
    expect((await late).allowed).toBe(false);
  });

  it("batches share flights with single calls and with each other", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const single = flight.resolve(question("user:anne"));
    const batch = flight.resolveMany([question("user:anne"), question("user:bob"), question("user:bob")]);
    // anne joins the single call's flight; bob leads once, its duplicate joins.
    expect(inner.evaluations).toBe(2);
    for (const p of inner.pending) p.resolve(yes);
    const outcomes = await batch;
    expect(outcomes.every((o) => !(o instanceof Error) && o.allowed)).toBe(true);
    await single;
    expect(flight.inFlight).toBe(0);
    expect(flight.stats()[0]).toMatchObject({ requests: 4, evaluations: 2, shared: 2 });
  });

  it("aborting a batch rejects it, and a caller that joined one of its flights gets an error, not a hang", async () => {
    const inner = new ManualResolver();
    const flight = new SingleflightResolver(inner);
    const abort = new AbortController();
    const batch = flight.resolveMany([question("user:anne")], abort.signal);
    const joined = flight.resolve(question("user:anne")).catch((e) => e);
    abort.abort();
    inner.pending[0]!.reject(new NexusError("aborted", "stopped"));
    await expect(batch).rejects.toMatchObject({ code: "aborted" });
    expect(await joined).toBeInstanceOf(NexusError);
    expect(flight.inFlight).toBe(0);
  });
});

/**
 * An inner layer of the resolveNow contract: answers `sync` questions (by user) at once, the others by a promise
 * the test releases.
 */
class MixedResolver extends ManualResolver {
  constructor(readonly sync: ReadonlySet<string>) {
    super();
  }

  resolveNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    if (!this.sync.has(check.user)) return this.resolve(check, signal);
    this.evaluations++;
    return yes;
  }

  resolveManyNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    if (checks.every((c) => this.sync.has(c.user))) {
      this.evaluations += checks.length;
      return checks.map(() => yes);
    }
    return this.resolveMany(checks, signal);
  }
}

describe("SingleflightResolver over a layer that answers without waiting", () => {
  it("a synchronous answer comes back as it is and leaves nothing in the table", async () => {
    const inner = new MixedResolver(new Set(["user:anne"]));
    const flight = new SingleflightResolver(inner);
    expect(flight.resolveNow(question("user:anne"))).toBe(yes);
    expect(flight.inFlight).toBe(0);
    const batch = flight.resolveManyNow([question("user:anne"), question("user:anne", 2)]);
    expect(Array.isArray(batch)).toBe(true);
    expect(flight.inFlight).toBe(0);
    expect(await flight.resolve(question("user:anne"))).toBe(yes);
    expect(flight.stats()[0]).toMatchObject({ requests: 4, evaluations: 4, shared: 0 });
  });

  it("an evaluation that waits is shared with single calls and batches arriving meanwhile, as before", async () => {
    const inner = new MixedResolver(new Set(["user:anne"]));
    const flight = new SingleflightResolver(inner);
    const leader = flight.resolveNow(question("user:bob"));
    expect(leader).toBeInstanceOf(Promise);
    expect(flight.inFlight).toBe(1);
    const single = flight.resolve(question("user:bob"));
    // bob joins the flight; anne is answered at once by the inner layer, inside the same batch.
    const batch = flight.resolveManyNow([question("user:anne"), question("user:bob")]);
    expect(batch).toBeInstanceOf(Promise);
    expect(inner.evaluations).toBe(2);
    inner.pending[0]!.resolve(yes);
    expect((await leader).allowed).toBe(true);
    expect((await single).allowed).toBe(true);
    const outcomes = await batch;
    expect(outcomes.every((o) => !(o instanceof Error) && o.allowed)).toBe(true);
    expect(flight.inFlight).toBe(0);
    expect(flight.stats()[0]).toMatchObject({ requests: 4, evaluations: 2, shared: 2 });
  });

  it("a batch that waits registers its questions as flights while it waits, and later callers join them", async () => {
    const inner = new MixedResolver(new Set());
    const flight = new SingleflightResolver(inner);
    const batch = flight.resolveManyNow([question("user:bob"), question("user:carol"), question("user:bob")]);
    expect(batch).toBeInstanceOf(Promise);
    // bob's duplicate went down with the batch; bob and carol are in the table, once each.
    expect(flight.inFlight).toBe(2);
    const joined = flight.resolve(question("user:carol"));
    expect(inner.evaluations).toBe(3);
    for (const p of inner.pending) p.resolve(yes);
    expect((await batch).every((o) => !(o instanceof Error) && o.allowed)).toBe(true);
    expect((await joined).allowed).toBe(true);
    expect(flight.inFlight).toBe(0);
  });

  it("a batch that waits and fails passes its error to those who joined, and leaves the table empty", async () => {
    const inner = new MixedResolver(new Set());
    const flight = new SingleflightResolver(inner);
    const abort = new AbortController();
    const batch = flight.resolveMany([question("user:bob")], abort.signal);
    const joined = flight.resolve(question("user:bob")).catch((e) => e);
    abort.abort();
    inner.pending[0]!.reject(new NexusError("aborted", "stopped"));
    await expect(batch).rejects.toMatchObject({ code: "aborted" });
    expect(await joined).toBeInstanceOf(NexusError);
    expect(flight.inFlight).toBe(0);
  });
});
