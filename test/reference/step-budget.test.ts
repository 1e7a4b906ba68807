/**
 * The per-check step budget (MAX_RESOLUTION_STEPS, src/kernels/abi/evaluate.ts): on a recursive union-only model
 * the path-dependent cycle check makes both evaluators enumerate paths up to the depth limit, seconds to minutes
 * for one check of 87 tuples (exponential in the depth). Past the budget the whole check answers
 * "resolution_too_complex", in the kernel (~16 ms) and in the reference (~1 s), and a deep but legal check still
 * answers as before.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { resetParallelThresholds, setParallelThreshold } from "../../src/parallel/thresholds.js";
import { DEFAULT_MAX_DEPTH, MAX_RESOLUTION_STEPS } from "../../src/reference/evaluation.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";
import { enableParallelBulkCheck } from "../../src/wasm-eval/parallel.js";

// A random model of the review's differential runs: every relation of t1 reaches t1#r3 again through usersets
// and parents, so a check for a subject no tuple grants explores every simple path up to depth 25.
const MODEL = `model
  schema 1.1
type user
type t0
  relations
    define p0: [t1]
    define r0: [user, user:*, t1#r3] or r5 from p0
    define r1: [t1#r0, t1, user:*] or r0
    define r2: [user] or r0 or r0 from p0
    define r6: r2 or r5 from p0
    define r8: r1 or r0 from p0
    define r3: r6
type t1
  relations
    define p0: [t0]
    define p1: [t0]
    define r3: [t0#r3, t0#r8, t1#r3] or r6 from p1
    define r7: r3 or r6 from p0
    define r5: r3 or r0 from p0
    define r0: [t1#r7] or r7 or r3 from p1
`;

/** object#relation@user */
const TUPLES = [
  "t1:f#p1@t0:d",
  "t1:a#p1@t0:a",
  "t1:c#r3@t1:c#r3",
  "t0:c#r0@t1:c#r3",
  "t1:b#p0@t0:a",
  "t0:e#r1@t1:f",
  "t1:a#r0@t1:b#r7",
  "t1:b#p1@t0:c",
  "t1:f#r3@t0:c#r8",
  "t0:b#r0@user:u0",
  "t0:b#r0@t1:c#r3",
  "t1:b#r3@t1:a#r3",
  "t0:d#r1@t1:c#r0",
  "t0:b#r0@user:*",
  "t0:f#p0@t1:a",
  "t1:a#p1@t0:b",
  "t1:a#r3@t0:b#r8",
  "t0:c#r0@user:u1",
  "t1:d#r3@t0:c#r8",
  "t0:d#r1@t1:a#r0",
  "t1:c#r3@t1:a#r3",
  "t1:e#r3@t1:c#r3",
  "t0:f#r0@t1:a#r3",
  "t1:f#r3@t0:b#r3",
  "t1:c#r3@t0:a#r8",
  "t1:f#r3@t1:a#r3",
  "t0:c#p0@t1:b",
  "t0:b#p0@t1:d",
  "t0:d#r0@user:u2",
  "t0:d#r0@user:u0",
  "t0:c#r1@t1:e",
  "t1:d#p0@t0:b",
  "t1:a#r3@t0:c#r8",
  "t0:a#r0@t1:c#r3",
  "t1:d#p0@t0:f",
  "t1:d#p0@t0:e",
  "t0:a#r1@t1:d",
  "t1:b#r3@t0:b#r8",
  "t1:c#p1@t0:a",
  "t1:c#p0@t0:a",
  "t1:e#r0@t1:b#r7",
  "t1:b#p1@t0:d",
  "t1:d#r3@t0:a#r8",
  "t1:d#r3@t1:b#r3",
  "t1:a#p1@t0:f",
  "t0:d#r1@t1:b#r0",
  "t0:e#r2@user:u1",
  "t0:d#p0@t1:a",
  "t0:a#r1@t1:b#r0",
  "t1:f#r0@t1:c#r7",
  "t0:e#r2@user:u2",
  "t0:b#r1@t1:b#r0",
  "t0:d#p0@t1:c",
  "t1:a#p1@t0:c",
  "t0:e#r1@t1:e",
  "t1:c#p0@t0:c",
  "t1:d#p1@t0:a",
  "t1:e#p1@t0:d",
  "t0:d#r1@t1:f",
  "t0:f#r1@user:*",
  "t0:c#p0@t1:c",
  "t0:e#r1@t1:c#r0",
  "t1:f#p0@t0:c",
  "t0:c#r2@user:u1",
  "t0:f#r0@user:*",
  "t0:b#p0@t1:a",
  "t0:e#r1@user:*",
  "t0:f#r2@user:u0",
  "t1:c#r3@t0:b#r3",
  "t0:d#p0@t1:f",
  "t0:c#r1@t1:a#r0",
  "t0:e#r1@t1:b#r0",
  "t1:a#p1@t0:d",
  "t1:b#r3@t1:b#r3",
  "t0:f#p0@t1:e",
  "t1:c#r3@t0:b#r8",
  "t1:e#r3@t0:a#r3",
  "t0:a#p0@t1:e",
  "t0:e#p0@t1:c",
  "t0:e#r1@t1:d",
  "t0:b#r2@user:u1",
  "t1:f#p1@t0:c",
  "t1:d#p1@t0:f",
  "t0:c#r1@user:*",
  "t1:c#r3@t1:b#r3",
  "t1:d#r3@t0:b#r3",
  "t1:d#p0@t0:c",
].map((line) => {
  const at = line.indexOf("@");
  const hash = line.indexOf("#");
  return { object: line.slice(0, hash), relation: line.slice(hash + 1, at), user: line.slice(at + 1) };
});

/** The check's error code (or its boolean answer), how long it took and the longest gap between timer ticks. */
async function timed(
  run: () => Promise<boolean>,
): Promise<{ answer: unknown; ms: number; longestGap: number }> {
  let last = performance.now();
  let longestGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 5);
  const started = performance.now();
  let answer: unknown;
  try {
    answer = await run();
  } catch (error) {
    answer = isNexusError(error) ? error.code : error;
  }
  const ms = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 20));
  clearInterval(timer);
  longestGap = Math.max(longestGap, performance.now() - last);
  return { answer, ms, longestGap };
}

describe("the per-check step budget", () => {
  for (const evaluator of [undefined, "reference"] as const) {
    const name = evaluator ?? "default (kernel)";

    it(`${name}: a check that searches paths for seconds answers resolution_too_complex within 2 s`, async () => {
      await using engine = await createEngine({ model: MODEL, ...(evaluator ? { evaluator } : {}) });
      const { token } = await engine.write({ writes: TUPLES });
      for (const id of ["a", "b", "c"]) {
        const { answer, ms, longestGap } = await timed(() =>
          engine.check({
            user: "t1:a",
            relation: "r3",
            object: `t1:${id}`,
            consistency: { atLeastAsFresh: token },
          }),
        );
        expect(answer).toBe("resolution_too_complex");
        expect(ms).toBeLessThan(2_000);
        // The event loop is blocked for at most the budget's run (about 1 s in the reference).
        expect(longestGap).toBeLessThan(2_000);
      }
    }, 30_000);

    it(`${name}: a 20-hop group chain still answers true, and a missing member false`, async () => {
      const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
`;
      await using engine = await createEngine({ model, ...(evaluator ? { evaluator } : {}) });
      const writes = [{ object: "group:g0", relation: "member", user: "user:u" }];
      for (let i = 1; i <= 20; i++) {
        writes.push({ object: `group:g${i}`, relation: "member", user: `group:g${i - 1}#member` });
      }
      const { token } = await engine.write({ writes });
      const consistency = { atLeastAsFresh: token };
      expect(
        await engine.check({ user: "user:u", relation: "member", object: "group:g20", consistency }),
      ).toBe(true);
      expect(
        await engine.check({ user: "user:v", relation: "member", object: "group:g20", consistency }),
      ).toBe(false);
    });
  }
});

/** The NexusError `run` rejects with (the test fails if it resolves or throws anything else). */
async function rejection(run: () => Promise<unknown>): Promise<NexusError> {
  try {
    await run();
  } catch (error) {
    if (isNexusError(error)) return error;
    throw error;
  }
  throw new Error("expected a NexusError");
}

/** What the step budget's error says, whichever evaluator ran out: the reference's (src/reference/evaluation.ts). */
const STEPS_MESSAGE = `resolving t1:a#r3 for t1:a needs more than ${MAX_RESOLUTION_STEPS} resolution steps`;
const STEPS_DETAILS = { limit: "maxResolutionSteps", maxResolutionSteps: MAX_RESOLUTION_STEPS };

// A group chain one hop longer than the depth limit: user:u is a member of g0 only, so group:g{N}#member needs
// N + 1 nested lookups to find (or rule out) it, and answers resolution_too_complex by depth, not by steps.
const CHAIN_MODEL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
`;
const CHAIN = DEFAULT_MAX_DEPTH + 5;
const chainWrites = (): { object: string; relation: string; user: string }[] => {
  const writes = [{ object: "group:g0", relation: "member", user: "user:u" }];
  for (let i = 1; i <= CHAIN; i++) {
    writes.push({ object: `group:g${i}`, relation: "member", user: `group:g${i - 1}#member` });
  }
  return writes;
};

// The kernel used to report every resolution_too_complex as the depth limit's ("... nested lookups", { maxDepth }),
// also when the step budget was what ran out; the reference named the step budget. Both now say which limit.
describe("which limit resolution_too_complex names", () => {
  afterEach(() => resetParallelThresholds());

  for (const evaluator of [undefined, "reference"] as const) {
    const name = evaluator ?? "default (kernel)";

    it(`${name}: the step budget, on a single check and in checkBulk`, async () => {
      await using engine = await createEngine({ model: MODEL, ...(evaluator ? { evaluator } : {}) });
      const { token } = await engine.write({ writes: TUPLES });
      const consistency = { atLeastAsFresh: token };
      const single = await rejection(() =>
        engine.check({ user: "t1:a", relation: "r3", object: "t1:a", consistency }),
      );
      expect(single.code).toBe("resolution_too_complex");
      expect(single.message).toBe(STEPS_MESSAGE);
      expect(single.details).toEqual(STEPS_DETAILS);
      const bulk = await rejection(() =>
        engine.checkBulk([
          { user: "user:u0", relation: "r0", object: "t0:b", consistency },
          { user: "t1:a", relation: "r3", object: "t1:a", consistency },
        ]),
      );
      expect(bulk.code).toBe("resolution_too_complex");
      expect(bulk.message).toBe(`check 1: ${STEPS_MESSAGE}`);
      expect(bulk.details).toEqual({ ...STEPS_DETAILS, index: 1 });
      // The kernel answered both itself: none went to the reference, which would name the step budget anyway.
      if (evaluator === undefined) expect(engine.wasmEvaluator!.stats.routed.unsupported).toBe(0);
    }, 30_000);

    it(`${name}: the depth limit, on a single check and in checkBulk`, async () => {
      await using engine = await createEngine({ model: CHAIN_MODEL, ...(evaluator ? { evaluator } : {}) });
      const { token } = await engine.write({ writes: chainWrites() });
      const consistency = { atLeastAsFresh: token };
      const message = (user: string) =>
        `resolving group:g${CHAIN}#member for ${user} needs more than ${DEFAULT_MAX_DEPTH} nested lookups`;
      const single = await rejection(() =>
        engine.check({ user: "user:u", relation: "member", object: `group:g${CHAIN}`, consistency }),
      );
      expect(single.code).toBe("resolution_too_complex");
      expect(single.message).toBe(message("user:u"));
      expect(single.details).toEqual({ maxDepth: DEFAULT_MAX_DEPTH });
      const bulk = await rejection(() =>
        engine.checkBulk([
          { user: "user:u", relation: "member", object: "group:g1", consistency },
          { user: "user:v", relation: "member", object: `group:g${CHAIN}`, consistency },
        ]),
      );
      expect(bulk.code).toBe("resolution_too_complex");
      expect(bulk.message).toBe(`check 1: ${message("user:v")}`);
      expect(bulk.details).toEqual({ maxDepth: DEFAULT_MAX_DEPTH, index: 1 });
      if (evaluator === undefined) expect(engine.wasmEvaluator!.stats.routed.unsupported).toBe(0);
    });
  }

  it("default (kernel): both limits through the parallel bulk path (the worker pool)", async () => {
    // Only so that a small batch takes the worker path, which is off by default (Infinity).
    setParallelThreshold("bulkCheck", 2);
    {
      await using engine = await createEngine({ model: MODEL });
      const checker = enableParallelBulkCheck(engine, { maxThreads: 2 })!;
      const { token } = await engine.write({ writes: TUPLES });
      const consistency = { atLeastAsFresh: token };
      const bulk = await rejection(() =>
        engine.checkBulk([
          { user: "user:u0", relation: "r0", object: "t0:b", consistency },
          { user: "user:u0", relation: "r0", object: "t0:d", consistency },
          { user: "t1:a", relation: "r3", object: "t1:a", consistency },
        ]),
      );
      expect(checker.pool.started).toBe(true);
      expect(engine.wasmEvaluator!.stats.parallelBatches).toBe(1);
      expect(bulk.message).toBe(`check 2: ${STEPS_MESSAGE}`);
      expect(bulk.details).toEqual({ ...STEPS_DETAILS, index: 2 });
    }
    {
      await using engine = await createEngine({ model: CHAIN_MODEL });
      enableParallelBulkCheck(engine, { maxThreads: 2 });
      const { token } = await engine.write({ writes: chainWrites() });
      const consistency = { atLeastAsFresh: token };
      const bulk = await rejection(() =>
        engine.checkBulk([
          { user: "user:u", relation: "member", object: "group:g1", consistency },
          { user: "user:u", relation: "member", object: "group:g2", consistency },
          { user: "user:v", relation: "member", object: `group:g${CHAIN}`, consistency },
        ]),
      );
      expect(engine.wasmEvaluator!.stats.parallelBatches).toBe(1);
      expect(bulk.message).toBe(
        `check 2: resolving group:g${CHAIN}#member for user:v needs more than ${DEFAULT_MAX_DEPTH} nested lookups`,
      );
      expect(bulk.details).toEqual({ maxDepth: DEFAULT_MAX_DEPTH, index: 2 });
    }
  }, 60_000);
});
