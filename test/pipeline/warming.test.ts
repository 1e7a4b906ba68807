/**
 * Predictive warming: the tracker's predictions on small traces and its memory bounds; the warmer's budget
 * (rate, batches in flight, queue bound), recency, refresh after changes, error counting, and that close() leaves
 * nothing running; and, with a real CheckChain, that warming only fills caches: answers with warming (Tiger on or
 * off, warming racing the requests or drained between them) equal the plain reference under random writes. The
 * warmer's recency record and queue (kept by question hash) against plain Maps keyed by warmKey.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import { CheckChain } from "../../src/pipeline/chain.js";
import {
  AccessTracker,
  pathDirectory,
  Warmer,
  type WarmFn,
  type WarmQuestion,
  warmThrough,
} from "../../src/pipeline/warming/index.js";
import { Lru } from "../../src/pipeline/warming/lru.js";
import { QuestionHash } from "../../src/pipeline/warming/question-table.js";
import { warmKey } from "../../src/pipeline/warming/questions.js";
import { RecentQuestions, WarmQueue } from "../../src/pipeline/warming/recent.js";
import { KnownRevision } from "../../src/request/consistency.js";
import type { CheckRequest } from "../../src/request/types.js";
import { isNexusError } from "../../src/util/errors.js";

const objects = (qs: readonly WarmQuestion[]) => qs.map((q) => q.object);

/** Waits (real time, polling) until `done` holds, at most `ms`: the warmer's own timers run meanwhile. */
async function until(done: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
}
const access = (user: string, object: string, relation = "read") => ({ user, relation, object });

describe("pathDirectory", () => {
  it("takes the path prefix of path ids and nothing else", () => {
    expect(pathDirectory("file:/a/b/c.txt")).toBe("file:/a/b");
    expect(pathDirectory("file:/a/b/")).toBe("file:/a");
    expect(pathDirectory("file:/a")).toBe("file:/");
    expect(pathDirectory("file:/")).toBeUndefined();
    expect(pathDirectory("file:root0/d1/f2")).toBe("file:root0/d1");
    expect(pathDirectory("file:root0")).toBeUndefined();
    expect(pathDirectory("doc:1")).toBeUndefined();
    expect(pathDirectory("nocolon/a/b")).toBeUndefined();
  });
});

describe("Lru", () => {
  it("matches a plain most-recent-first list under random gets, peeks, sets and deletes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(
          fc.tuple(fc.constantFrom("get", "peek", "set", "delete", "clear"), fc.integer({ min: 0, max: 9 })),
          {
            maxLength: 120,
          },
        ),
        (max, ops) => {
          const lru = new Lru<number>(max);
          let model: [string, number][] = []; // most recently used first
          for (const [op, k] of ops) {
            const key = `k${k}`;
            const at = model.findIndex(([x]) => x === key);
            if (op === "get" || op === "peek") {
              const expected = at < 0 ? undefined : model[at]![1];
              expect(op === "get" ? lru.get(key) : lru.peek(key)).toBe(expected);
              if (op === "get" && at >= 0) model = [model[at]!, ...model.filter((_, i) => i !== at)];
            } else if (op === "set") {
              lru.set(key, k * 10 + model.length);
              model = [
                [key, k * 10 + model.length] as [string, number],
                ...model.filter((_, i) => i !== at),
              ].slice(0, max);
            } else if (op === "delete") {
              lru.delete(key);
              model = model.filter((_, i) => i !== at);
            } else {
              lru.clear();
              model = [];
            }
            expect(lru.keysByRecency()).toEqual(model.map(([x]) => x));
            expect(lru.size).toBe(model.length);
            expect([...lru.values()].sort()).toEqual(model.map(([, v]) => v).sort());
          }
        },
      ),
    );
  });
});

/** Questions from a small pool: tenants absent, default, spelled out, or other; ids that share prefixes. */
const questionArb = fc.record({
  user: fc.constantFrom("user:a", "user:ab", "user:b"),
  relation: fc.constantFrom("read", "r"),
  object: fc.constantFrom("file:/x", "file:/x/y", "dfile:/x", "file:/"),
  tenant: fc.constantFrom(undefined, "default", "t1"),
  subjectTenant: fc.constantFrom(undefined, "default", "t1"),
});
type PoolQuestion = {
  user: string;
  relation: string;
  object: string;
  tenant?: string;
  subjectTenant?: string;
};
/** Without the fields fast-check leaves undefined (a question has them absent, not undefined). */
const question = (q: PoolQuestion): WarmQuestion =>
  Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as unknown as WarmQuestion;
const hashOf = (q: WarmQuestion): [number, number] => {
  const h = new QuestionHash();
  h.of(q);
  return [h.a, h.b];
};

describe("question hashes", () => {
  it("agree exactly when warmKey does (absent tenants read as warmKey reads them)", () => {
    fc.assert(
      fc.property(questionArb, questionArb, (x, y) => {
        const [p, q] = [question(x), question(y)];
        const same = hashOf(p)[0] === hashOf(q)[0] && hashOf(p)[1] === hashOf(q)[1];
        expect(same).toBe(warmKey(p) === warmKey(q));
      }),
    );
  });

  it("hash a prefix once: begin then object equals of()", () => {
    const h = new QuestionHash();
    h.begin("user:a", "read", "t1", undefined);
    h.object("file:/x");
    expect([h.a, h.b]).toEqual(hashOf({ user: "user:a", relation: "read", object: "file:/x", tenant: "t1" }));
    h.object("file:/y");
    expect([h.a, h.b]).toEqual(hashOf({ user: "user:a", relation: "read", object: "file:/y", tenant: "t1" }));
  });

  it("tell 100,000 distinct questions apart", () => {
    const seen = new Set<string>();
    const h = new QuestionHash();
    for (let u = 0; u < 100; u++) {
      h.begin(`user:u${u}`, "read", undefined, undefined);
      for (let o = 0; o < 1000; o++) {
        h.object(`file:/d${o % 37}/f${o}`);
        seen.add(`${h.a},${h.b}`);
      }
    }
    expect(seen.size).toBe(100_000);
  });
});

describe("RecentQuestions and WarmQueue", () => {
  it("RecentQuestions matches a Map by warmKey, least recently marked forgotten first", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.constantFrom("mark", "mark", "lastAt", "delete", "clear"), questionArb), {
          maxLength: 150,
        }),
        (max, ops) => {
          const recent = new RecentQuestions(max);
          let model = new Map<string, number>(); // least recently marked first
          let at = 0;
          for (const [op, x] of ops) {
            const q = question(x);
            const [a, b] = hashOf(q);
            const key = warmKey(q);
            if (op === "mark") {
              recent.mark(a, b, ++at);
              model.delete(key);
              model.set(key, at);
              if (model.size > max) model.delete(model.keys().next().value as string);
            } else if (op === "lastAt") {
              expect(recent.lastAt(a, b)).toBe(model.get(key) ?? Number.NaN);
            } else if (op === "delete") {
              recent.delete(a, b);
              model.delete(key);
            } else {
              recent.clear();
              model = new Map();
            }
            expect(recent.size).toBe(model.size);
          }
        },
      ),
    );
  });

  it("RecentQuestions grows past its first arrays and keeps the newest max", () => {
    const recent = new RecentQuestions(700);
    const h = new QuestionHash();
    h.begin("user:a", "read", undefined, undefined);
    const at = (i: number) => {
      h.object(`file:/f${i}`);
      return recent.lastAt(h.a, h.b);
    };
    for (let i = 0; i < 2000; i++) {
      h.object(`file:/f${i}`);
      recent.mark(h.a, h.b, i);
      if (i % 3 === 0) {
        h.object(`file:/f${i >> 1}`); // an older one marked again moves to the newest end
        recent.mark(h.a, h.b, i);
      }
    }
    expect(recent.size).toBe(700);
    expect(at(1999)).toBe(1999);
    expect(at(0)).toBeNaN();
    let kept = 0;
    for (let i = 0; i < 2000; i++) if (!Number.isNaN(at(i))) kept++;
    expect(kept).toBe(700);
  });

  it("WarmQueue matches an insertion-ordered Map by warmKey: queued again moves to the back, oldest dropped", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.tuple(fc.constantFrom("add", "add", "shift", "clear"), questionArb), { maxLength: 150 }),
        (max, ops) => {
          const queue = new WarmQueue(max);
          let model = new Map<string, WarmQuestion>();
          for (const [op, x] of ops) {
            const q = question(x);
            if (op === "add") {
              const [a, b] = hashOf(q);
              // Kept as a source question and an object: the source asks about another object.
              const dropped = queue.add(a, b, { ...q, object: "file:/source" }, q.object);
              const key = warmKey(q);
              model.delete(key);
              model.set(key, q);
              const over = model.size > max;
              if (over) model.delete(model.keys().next().value as string);
              expect(dropped).toBe(over);
            } else if (op === "shift" && model.size > 0) {
              const [key, expected] = model.entries().next().value as [string, WarmQuestion];
              model.delete(key);
              expect([queue.oldestA(), queue.oldestB()]).toEqual(hashOf(expected));
              expect(queue.shift()).toEqual(expected);
            } else if (op === "clear") {
              queue.clear();
              model = new Map();
            }
            expect(queue.size).toBe(model.size);
          }
        },
      ),
    );
  });
});

describe("AccessTracker", () => {
  it("predicts a user's next directory from their own moves, then its contents", () => {
    const t = new AccessTracker();
    // Anne walks /a → /a/x → /a twice; /a/x holds two files she opened.
    for (let i = 0; i < 2; i++) {
      t.observe(access("user:anne", "file:/a/f1"));
      t.observe(access("user:anne", "file:/a/x/g1"));
      t.observe(access("user:anne", "file:/a/x/g2"));
    }
    const next = t.predict(access("user:anne", "file:/a/f1"), 10);
    // The likeliest next directory first (the directory itself, then what was seen in it), then siblings.
    expect(objects(next).slice(0, 3)).toEqual(["file:/a/x", "file:/a/x/g2", "file:/a/x/g1"]);
    expect(next.every((q) => q.user === "user:anne" && q.relation === "read")).toBe(true);
    expect(objects(next)).not.toContain("file:/a/f1"); // never the access itself
    expect(t.predict(access("user:anne", "file:/a/f1"), 2)).toHaveLength(2);
    expect(t.predict(access("user:anne", "doc:1"), 5)).toEqual([]);
  });

  it("predicts for a user never seen in a directory from everyone's moves there", () => {
    const t = new AccessTracker();
    for (const user of ["user:a", "user:b", "user:c"]) {
      t.observe(access(user, "file:/home/readme"));
      t.observe(access(user, "file:/home/docs/plan"));
    }
    t.observe(access("user:d", "file:/home/other/x")); // a rarer move from /home
    t.observe(access("user:d", "file:/home/readme"));
    t.observe(access("user:d", "file:/home/other/x"));
    const newcomer = t.predict(access("user:new", "file:/home/readme", "write"), 3);
    expect(objects(newcomer)).toEqual(["file:/home/docs", "file:/home/docs/plan", "file:/home/other"]);
    expect(newcomer[0]).toEqual({ user: "user:new", relation: "write", object: "file:/home/docs" });
  });

  it("weighs a user's own habit above everyone's (smoothed)", () => {
    const t = new AccessTracker({ sharedWeight: 2 });
    for (let i = 0; i < 5; i++) {
      t.observe(access(`user:x${i}`, "file:/r/f"));
      t.observe(access(`user:x${i}`, "file:/r/popular/f"));
    }
    for (let i = 0; i < 3; i++) {
      t.observe(access("user:me", "file:/r/f"));
      t.observe(access("user:me", "file:/r/mine/f"));
    }
    // me: (3 + 2·3/8) / (3 + 2) = 0.75 for mine, (0 + 2·5/8) / 5 = 0.25 for popular.
    expect(objects(t.predict(access("user:me", "file:/r/f"), 1))).toEqual(["file:/r/mine"]);
    expect(objects(t.predict(access("user:other", "file:/r/f"), 1))).toEqual(["file:/r/popular"]);
  });

  it("predicts siblings of an opened file, most recently seen first, and a caller's lister after them", () => {
    const t = new AccessTracker({
      listDirectory: (dir) => (dir === "file:/p" ? ["file:/p/listed", "file:/p/s1"] : undefined),
    });
    t.observe(access("user:b", "file:/p/s1"));
    t.observe(access("user:b", "file:/p/s2"));
    t.observe(access("user:a", "file:/p/s3"));
    expect(objects(t.predict(access("user:a", "file:/p/s3"), 10))).toEqual([
      "file:/p/s2",
      "file:/p/s1",
      "file:/p/listed",
    ]);
  });

  it("learns a listing's objects and counts it as a move into that directory", () => {
    const t = new AccessTracker();
    t.observeListing({ user: "user:a", relation: "read", objects: ["file:/d/1", "file:/d/2", "file:/d/3"] });
    t.observeListing({ user: "user:a", relation: "read", objects: ["file:/d/sub/1", "file:/d/sub/2"] });
    expect(t.stats().transitions).toBe(1);
    const after = t.predictAfterListing(
      { user: "user:b", relation: "read", objects: ["file:/d/1", "file:/d/2"] },
      10,
    );
    // Next directory /d/sub and its contents; no siblings after a listing (they were all just asked).
    expect(objects(after)).toEqual(["file:/d/sub", "file:/d/sub/2", "file:/d/sub/1"]);
    expect(t.predictAfterListing({ user: "user:b", relation: "read", objects: [] }, 5)).toEqual([]);
  });

  it("stays within its bounds", () => {
    const t = new AccessTracker({
      maxUsers: 3,
      maxRowsPerUser: 2,
      maxDirectories: 5,
      maxSuccessors: 2,
      maxObjectsPerDirectory: 3,
      decayAt: 8,
    });
    for (let i = 0; i < 200; i++) {
      t.observe(access(`user:u${i % 7}`, `file:/d${i % 11}/x${i % 13}/f${i}`));
      t.observeListing({
        user: `user:u${i % 5}`,
        relation: "read",
        objects: Array.from({ length: 10 }, (_, j) => `file:/l${i % 4}/f${j}`),
      });
    }
    const s = t.stats();
    expect(s.users).toBeLessThanOrEqual(3);
    expect(s.userRows).toBeLessThanOrEqual(3 * 2);
    expect(s.directories).toBeLessThanOrEqual(5);
    expect(s.objects).toBeLessThanOrEqual(5 * 3);
    for (let i = 0; i < 20; i++) {
      expect(t.predict(access(`user:u${i}`, `file:/d${i}/x${i}/f`), 100).length).toBeLessThanOrEqual(
        2 * (1 + 3) + 3,
      );
    }
    t.clear();
    expect(t.stats()).toMatchObject({ users: 0, userRows: 0, directories: 0, objects: 0 });
  });

  it("decays old habits: a new favourite takes over", () => {
    const t = new AccessTracker({ decayAt: 16, sharedWeight: 0 });
    const move = (to: string) => {
      t.observe(access("user:a", "file:/h/f"));
      t.observe(access("user:a", `file:/h/${to}/f`));
    };
    for (let i = 0; i < 30; i++) move("old");
    for (let i = 0; i < 40; i++) move("new");
    expect(objects(t.predict(access("user:a", "file:/h/f"), 1))).toEqual(["file:/h/new"]);
  });

  it("rejects what is not an access or a listing", () => {
    const t = new AccessTracker();
    expect(() => t.observe({ user: "user:a" } as never)).toThrow(/an access must be/);
    expect(() => t.observeListing({ user: "user:a", relation: "read", objects: "x" } as never)).toThrow(
      /a listing must be/,
    );
    expect(() => t.predict(null as never, 3)).toThrow(/an access must be/);
  });

  it("keeps tenants apart", () => {
    const t = new AccessTracker();
    t.observe({ ...access("user:a", "file:/d/1"), tenant: "t1" });
    t.observe({ ...access("user:a", "file:/d/2"), tenant: "t2" });
    expect(t.predict({ ...access("user:b", "file:/d/9"), tenant: "t1" }, 5)).toEqual([
      { user: "user:b", relation: "read", object: "file:/d/1", tenant: "t1" },
    ]);
    expect(objects(t.predict(access("user:b", "file:/d/9"), 5))).toEqual([]);
  });

  it("rejects bad options with invalid_argument naming the option", () => {
    expect(() => new AccessTracker({ maxUsers: 0 })).toThrow(/maxUsers/);
    expect(() => new AccessTracker({ siblingScore: 2 })).toThrow(/siblingScore/);
    expect(() => new AccessTracker({ directoryOf: 3 as never })).toThrow(/directoryOf/);
    try {
      new AccessTracker({ decayAt: 1.5 });
    } catch (e) {
      expect(isNexusError(e, "invalid_argument")).toBe(true);
    }
  });
});

// -------------------------------------------------------------------------------------------------------------

/** A warm function that records its calls and can hold them open. */
function recorder(hold = false) {
  const calls: WarmQuestion[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const releases: (() => void)[] = [];
  const warm: WarmFn = (questions, signal) => {
    calls.push([...questions]);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        inFlight--;
        resolve();
      };
      if (!hold) queueMicrotask(done);
      else {
        const onAbort = () => {
          inFlight--;
          reject(signal.reason);
        };
        releases.push(() => {
          signal.removeEventListener("abort", onAbort);
          done();
        });
        signal.addEventListener("abort", onAbort, { once: true });
      }
    });
  };
  return {
    warm,
    calls,
    warmed: () => calls.flat(),
    get maxInFlight() {
      return maxInFlight;
    },
    release: () => {
      for (const r of releases.splice(0)) r();
    },
  };
}

/** A tracker primed so that an access to file:/t/f0 predicts `n` questions. */
function primed(n: number): AccessTracker {
  const t = new AccessTracker({ maxObjectsPerDirectory: 1000 });
  for (let i = 0; i < n; i++) t.observe(access("user:seed", `file:/t/f${i}`));
  return t;
}

describe("Warmer", () => {
  it("warms the predicted questions in the background, never on the request path", async () => {
    const rec = recorder();
    const clock = { now: 0 };
    await using warmer = new Warmer({ warm: rec.warm, tracker: primed(5), clock: () => clock.now });
    warmer.observe(access("user:a", "file:/t/f0"));
    expect(rec.calls).toHaveLength(0); // observe() only queues
    await warmer.idle();
    expect(objects(rec.warmed()).sort()).toEqual(["file:/t/f1", "file:/t/f2", "file:/t/f3", "file:/t/f4"]);
    expect(rec.warmed().every((q) => q.user === "user:a")).toBe(true);
    expect(warmer.stats()).toMatchObject({ observed: 1, predicted: 4, warmed: 4, errors: 0, queueLength: 0 });
  });

  it("runs by itself on its timer (real clock)", async () => {
    const rec = recorder();
    await using warmer = new Warmer({ warm: rec.warm, tracker: primed(3) });
    warmer.observe(access("user:a", "file:/t/f0"));
    await until(() => warmer.stats().warmed >= 2);
    expect(warmer.stats().warmed).toBe(2);
  });

  it("keeps to its rate budget: burst, then questionsPerSecond", async () => {
    const rec = recorder();
    const clock = { now: 0 };
    await using warmer = new Warmer({
      warm: rec.warm,
      tracker: primed(200),
      clock: () => clock.now,
      predictions: 200,
      questionsPerSecond: 10,
      burst: 5,
      batchSize: 2,
      maxQueue: 1000,
    });
    warmer.observe(access("user:a", "file:/t/f0"));
    await warmer.idle();
    expect(rec.warmed()).toHaveLength(5);
    expect(Math.max(...rec.calls.map((c) => c.length))).toBeLessThanOrEqual(2);
    clock.now += 1000;
    await warmer.idle();
    expect(rec.warmed()).toHaveLength(10); // capped by the burst, not 5 + 10
    clock.now += 300;
    await warmer.idle();
    expect(rec.warmed()).toHaveLength(13);
    expect(warmer.stats().queueLength).toBe(199 - 13);
  });

  it("keeps at most maxInFlight warm calls open", async () => {
    const rec = recorder(true);
    const clock = { now: 0 };
    await using warmer = new Warmer({
      warm: rec.warm,
      tracker: primed(50),
      clock: () => clock.now,
      predictions: 50,
      batchSize: 4,
      maxInFlight: 3,
    });
    warmer.observe(access("user:a", "file:/t/f0"));
    await until(() => rec.calls.length >= 3);
    await new Promise((r) => setTimeout(r, 10));
    expect(rec.calls).toHaveLength(3);
    expect(warmer.stats().inFlight).toBe(3);
    for (let i = 0; i < 500 && warmer.stats().queueLength > 0; i++) {
      rec.release();
      await new Promise((r) => setTimeout(r, 2));
    }
    rec.release();
    await warmer.idle();
    expect(rec.maxInFlight).toBe(3);
    expect(rec.warmed()).toHaveLength(49);
  });

  it("bounds its queue, dropping the oldest", async () => {
    const rec = recorder();
    const clock = { now: 0 };
    await using warmer = new Warmer({
      warm: rec.warm,
      tracker: primed(30),
      clock: () => clock.now,
      predictions: 30,
      questionsPerSecond: 1,
      burst: 1,
      maxQueue: 4,
    });
    warmer.observe(access("user:a", "file:/t/f0"));
    await warmer.idle();
    // 29 predicted (most recently seen sibling first: f29 … f1); the queue kept the newest 4 (f4 … f1), then the
    // one token sent the oldest of those.
    const s = warmer.stats();
    expect(s.dropped).toBe(29 - 4);
    expect(objects(rec.warmed())).toEqual(["file:/t/f4"]);
    expect(s.queueLength).toBe(3);
  });

  it("skips questions asked or warmed recently, until recentMs passes or a change becomes visible", async () => {
    const rec = recorder();
    const clock = { now: 10_000 };
    await using warmer = new Warmer({
      warm: rec.warm,
      tracker: primed(3),
      clock: () => clock.now,
      recentMs: 5000,
      // The window is this test's subject: a refresh waits for the window in which a change becomes visible.
      quantizationWindowMs: 1000,
      refreshUsers: 4,
    });
    warmer.observe(access("user:a", "file:/t/f1")); // asked: recent, never warmed
    await warmer.idle();
    expect(objects(rec.warmed()).sort()).toEqual(["file:/t/f0", "file:/t/f2"]);
    warmer.observe(access("user:a", "file:/t/f1"));
    await warmer.idle();
    expect(rec.warmed()).toHaveLength(2);
    expect(warmer.stats().skippedRecent).toBeGreaterThanOrEqual(2);
    // A change at 10,500 shows from the window at 11,000: nothing happens before.
    clock.now = 10_500;
    warmer.onChanges([], 0);
    await warmer.idle();
    expect(rec.warmed()).toHaveLength(2);
    clock.now = 11_001;
    await warmer.idle();
    // The refresh re-warms the user's last access and its predictions at the new revision.
    expect(objects(rec.warmed().slice(2)).sort()).toEqual(["file:/t/f0", "file:/t/f1", "file:/t/f2"]);
    expect(warmer.stats().refreshes).toBe(1);
    clock.now = 17_000; // recentMs later: predicted again, warmed again
    warmer.observe(access("user:a", "file:/t/f1"));
    await warmer.idle();
    expect(rec.warmed()).toHaveLength(7);
  });

  it("notes what was asked once the tracker can predict, the access that taught it first included", async () => {
    const rec = recorder();
    const clock = { now: 0 };
    await using warmer = new Warmer({ warm: rec.warm, clock: () => clock.now });
    // Flat ids teach a new tracker nothing (no directory): nothing to predict, nothing warmed.
    warmer.observe(access("user:a", "doc:1"));
    await warmer.idle();
    expect(warmer.tracker.canPredict()).toBe(false);
    // The first path id teaches it a directory. Each file's visit predicts the other as a sibling: both asked,
    // f1 too (learned while the tracker knew no directory), so neither is warmed.
    warmer.observe(access("user:a", "file:/t/f1"));
    warmer.observe(access("user:a", "file:/t/f2"));
    await warmer.idle();
    expect(warmer.tracker.canPredict()).toBe(true);
    expect(warmer.stats()).toMatchObject({ predicted: 2, skippedRecent: 2 });
    expect(rec.warmed()).toEqual([]);
  });

  it("with the model's influence, a change refreshes only the visits it can affect, and one affecting none nothing", async () => {
    const rec = recorder();
    const clock = { now: 50_000 };
    // A model's influence as src/changes/influence.ts gives it (the nexus preset's tuples each reach every file
    // relation, so a made-up one shows the difference): doc tuples affect file#write only, group tuples both.
    const influence = {
      affectedBy: (type: string, _relation: string): readonly string[] =>
        type === "doc" ? ["file#write"] : type === "group" ? ["file#read", "file#write"] : [],
    };
    await using warmer = new Warmer({
      warm: rec.warm,
      tracker: primed(3),
      clock: () => clock.now,
      influence,
      predictions: 0,
    });
    warmer.observe(access("user:a", "file:/t/f1", "read"));
    warmer.observe(access("user:b", "file:/t/f2", "write"));
    await warmer.idle();
    expect(rec.warmed()).toHaveLength(0); // asked: recent, no predictions
    const change = (objectType: string, revision: number) =>
      ({
        revision,
        op: "delete",
        tuple: { objectType, relation: "r", object: `${objectType}:x`, user: "user:z" },
      }) as never;
    // A tuple no asked question reads: no refresh; the asked answers stay recent.
    warmer.onChanges([change("other", 2)], 2);
    clock.now += 1000;
    await warmer.idle();
    expect(warmer.stats().refreshes).toBe(0);
    expect(rec.warmed()).toHaveLength(0);
    // A doc tuple: only b's file#write question is re-warmed.
    warmer.onChanges([change("doc", 3)], 3);
    clock.now += 1000;
    await warmer.idle();
    expect(warmer.stats().refreshes).toBe(1);
    expect(objects(rec.warmed())).toEqual(["file:/t/f2"]);
    // A group tuple: both; a reset: both.
    warmer.onChanges([change("group", 4)], 4);
    clock.now += 1000;
    await warmer.idle();
    expect(objects(rec.warmed().slice(1)).sort()).toEqual(["file:/t/f1", "file:/t/f2"]);
    warmer.onReset(5);
    clock.now += 1000;
    await warmer.idle();
    expect(objects(rec.warmed().slice(3)).sort()).toEqual(["file:/t/f1", "file:/t/f2"]);
    expect(warmer.stats().refreshes).toBe(3);
  });

  it("swallows and counts warm errors (rejected or thrown); observe never throws", async () => {
    const clock = { now: 0 };
    let calls = 0;
    await using warmer = new Warmer({
      warm: (questions) => {
        calls++;
        if (questions.some((q) => q.object.endsWith("f1"))) throw new Error("sync boom");
        return Promise.reject(new Error("async boom"));
      },
      tracker: primed(4),
      clock: () => clock.now,
      batchSize: 1,
    });
    warmer.observe(access("user:a", "file:/t/f0"));
    warmer.observe(null as never);
    warmer.observe({ user: 3 } as never);
    warmer.observeListing({ objects: "nope" } as never);
    await warmer.idle();
    const s = warmer.stats();
    expect(calls).toBe(3);
    expect(s.errors).toBe(3);
    expect(s.warmed).toBe(0);
    expect(s.ignored).toBe(3);
    expect(s.lastError).toMatch(/boom/);
    // A failed question is not marked warm: it is tried again when predicted again.
    warmer.observe(access("user:a", "file:/t/f0"));
    await warmer.idle();
    expect(calls).toBe(6);
  });

  it("rejects bad options", () => {
    expect(() => new Warmer({} as never)).toThrow(/warm must be a function/);
    expect(() => new Warmer({ warm: async () => {}, questionsPerSecond: 0 })).toThrow(/questionsPerSecond/);
    expect(() => new Warmer({ warm: async () => {}, maxQueue: -1 })).toThrow(/maxQueue/);
    expect(() => new Warmer({ warm: async () => {}, tracker: { maxUsers: 0 } })).toThrow(/maxUsers/);
    expect(() => new Warmer({ warm: async () => {}, afterChangeMs: -1 })).toThrow(/afterChangeMs/);
    expect(() => new Warmer({ warm: async () => {}, influence: {} as never })).toThrow(/influence/);
  });
});

// -------------------------------------------------------------------------------------------------------------

const settle = () => new Promise<void>((r) => setTimeout(r, 10));

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

function beyond(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [name, count] of resourceCounts()) {
    if (count > (baseline.get(name) ?? 0)) extra.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
  }
  return extra;
}

describe("warmThrough", () => {
  it("filters once per (tenants, user, relation, type); a failing group does not stop the others", async () => {
    const filters: unknown[] = [];
    const batches: unknown[] = [];
    const target = {
      checkMany: async (requests: readonly WarmQuestion[]) => {
        batches.push(requests);
      },
      filter: async (request: { user: string; objects: readonly string[] }) => {
        filters.push(request);
        if (request.user === "user:bad") throw new Error("bad group");
      },
    };
    const signal = new AbortController().signal;
    const questions: WarmQuestion[] = [
      { user: "user:a", relation: "read", object: "file:/x/1" },
      { user: "user:a", relation: "read", object: "file:/x/2" },
      { user: "user:a", relation: "read", object: "file:/x/1" },
      { user: "user:a", relation: "read", object: "doc:9" },
      { user: "user:a", relation: "read", object: "file:/x/3", tenant: "t2" },
      { user: "user:bad", relation: "read", object: "file:/x/1" },
      { user: "user:a", relation: "write", object: "file:/x/1" },
    ];
    await expect(warmThrough(target)(questions, signal)).rejects.toThrow(/bad group/);
    expect(filters).toEqual([
      { user: "user:a", relation: "read", objects: ["file:/x/1", "file:/x/2"] },
      { user: "user:a", relation: "read", objects: ["doc:9"] },
      { user: "user:a", relation: "read", objects: ["file:/x/3"], tenant: "t2" },
      { user: "user:bad", relation: "read", objects: ["file:/x/1"] },
      { user: "user:a", relation: "write", objects: ["file:/x/1"] },
    ]);
    await warmThrough(target, { via: "checkMany" })(questions, signal);
    expect(batches).toEqual([questions]);
    expect(() => warmThrough(target, { via: "nope" as never })).toThrow(/via/);
  });
});

describe("Warmer lifecycle", () => {
  it("close() stops the loop, aborts and awaits warm calls in flight, and leaves nothing running", async () => {
    await settle();
    const baseline = resourceCounts();
    const rec = recorder(true);
    const warmer = new Warmer({
      warm: rec.warm,
      tracker: primed(100),
      predictions: 100,
      questionsPerSecond: 20, // a budget wait is armed (a timer)
      burst: 8,
      batchSize: 4,
      // A window arms the refresh timer a minute ahead: the timer is what this test closes.
      quantizationWindowMs: 60_000,
    });
    warmer.observe(access("user:a", "file:/t/f0"));
    warmer.onChanges([], 0); // a refresh timer, due at the next minute
    await until(() => warmer.stats().inFlight === 2);
    expect(warmer.stats().inFlight).toBe(2);
    // Its timers are unref'd: they do not count as keeping the process alive.
    expect(beyond(baseline)).toEqual([]);
    const waiting = warmer.idle();
    await warmer.close();
    await waiting; // idle() waiters are released by close()
    await warmer.close(); // idempotent
    const s = warmer.stats();
    expect(s).toMatchObject({ inFlight: 0, queueLength: 0, pendingAccesses: 0, errors: 0 });
    expect(s.aborted).toBeGreaterThan(0);
    warmer.observe(access("user:a", "file:/t/f0")); // after close: ignored, no throw
    expect(warmer.stats().ignored).toBe(1);
    await settle();
    expect(beyond(baseline)).toEqual([]);
  });

  it("closing a warmer over a real chain while it warms is fine, and the chain closes cleanly after", async () => {
    await settle();
    const baseline = resourceCounts();
    const engine = await createEngine({ model: nexusFilesystemModel, format: "nexus", cache: false });
    await engine.write({
      writes: Array.from({ length: 40 }, (_, i) => ({
        user: "file:/w",
        relation: "parent",
        object: `file:/w/f${i}`,
      })),
    });
    const chain = await CheckChain.open({
      program: engine.program,
      store: engine.store,
      tiger: { materializeAfter: 1 },
    });
    // The first warm call through the chain closes the warmer while it runs (once it counts as in flight).
    const through = warmThrough(chain);
    let closing: Promise<void> | undefined;
    let inFlightAtClose = 0;
    const warmer: Warmer = new Warmer({
      warm: (questions, signal) => {
        const call = through(questions, signal);
        closing ??= Promise.resolve().then(() => {
          inFlightAtClose = warmer.stats().inFlight;
          return warmer.close();
        });
        return call;
      },
      predictions: 40,
      batchSize: 8,
    });
    chain.feed?.subscribe(warmer);
    for (let i = 0; i < 40; i++) warmer.observe(access(`user:u${i % 3}`, `file:/w/f${i}`));
    const draining = warmer.idle(); // warm calls go through the chain (after a slice or two of learning)
    await until(() => closing !== undefined);
    await closing;
    expect(inFlightAtClose).toBeGreaterThan(0);
    await draining;
    const s = warmer.stats();
    expect(s.inFlight).toBe(0);
    expect(s.errors).toBe(0);
    expect(s.warmed + s.aborted).toBeGreaterThan(0);
    await chain.close();
    await engine.close();
    await settle();
    expect(beyond(baseline)).toEqual([]);
  });
});

// -------------------------------------------------------------------------------------------------------------
// Exactness: warming through the chain only fills caches.

const DIRS = ["file:/r", "file:/r/a", "file:/r/b", "file:/r/a/x"];
const FILES = DIRS.flatMap((d) => [0, 1, 2].map((i) => `${d}/f${i}`));
const USERS = ["user:u0", "user:u1", "user:u2", "user:u3"];
const TEAMS = ["group:t0", "group:t1"];

/** Toggles over the tree: grants to users and teams, team membership, and a file moving between directories. */
const WRITES = [
  ...[...DIRS, ...FILES.filter((_, i) => i % 2 === 0)].flatMap((object) => [
    { user: USERS[object.length % 4]!, relation: "direct_viewer", object },
    { user: TEAMS[object.length % 2]!, relation: "direct_editor", object },
  ]),
  ...USERS.map((user, i) => ({ user, relation: "member", object: TEAMS[i % 2]! })),
  { user: "file:/r/b", relation: "parent", object: "file:/r/a/x" },
];

const traceStep = fc.record({
  user: fc.constantFrom(...USERS),
  relation: fc.constantFrom("read", "read", "write"),
  list: fc.boolean(),
  target: fc.nat(FILES.length + DIRS.length - 1),
  toggle: fc.uniqueArray(fc.nat(WRITES.length - 1), { maxLength: 2 }),
  advanceMs: fc.constantFrom(0, 0, 300, 1200),
  drain: fc.boolean(),
});

async function answerOf(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (error) {
    return isNexusError(error) ? `error:${error.code}` : `error:${String(error)}`;
  }
}

describe("warming through a real CheckChain", () => {
  it("puts a newcomer's next listing in the caches before they ask (result cache, then Tiger)", async () => {
    for (const tiger of [false, true]) {
      let time = 3_000_000;
      const clock = () => time;
      await using engine = await createEngine({
        model: nexusFilesystemModel,
        format: "nexus",
        clock,
        cache: false,
      });
      const files = (dir: string) => [0, 1, 2, 3].map((i) => `${dir}/f${i}`);
      await engine.write({
        writes: [
          { user: "file:/home", relation: "parent", object: "file:/home/docs" },
          ...[...files("file:/home"), ...files("file:/home/docs")].map((f) => ({
            user: pathDirectory(f)!,
            relation: "parent",
            object: f,
          })),
          ...USERS.map((user) => ({ user, relation: "direct_viewer", object: "file:/home" })),
        ],
      });
      await using chain = await CheckChain.open({
        program: engine.program,
        store: engine.store,
        clock,
        ...(tiger ? { tiger: {} } : {}),
      });
      await using warmer = new Warmer({ warm: warmThrough(chain), clock });
      chain.feed!.subscribe(warmer);
      const list = async (user: string, dir: string) => {
        const request = { user, relation: "read", objects: files(dir) };
        const allowed = await chain.filter(request);
        warmer.observeListing(request);
        return allowed;
      };
      // Two users walk /home → /home/docs: the tracker learns the move.
      for (const user of ["user:u0", "user:u1"]) {
        await list(user, "file:/home");
        await list(user, "file:/home/docs");
      }
      await list("user:u2", "file:/home");
      await warmer.idle();
      expect(warmer.stats().warmed).toBeGreaterThanOrEqual(4);
      const evaluations = () =>
        chain.stats().layers.reduce((n, l) => n + (l.layer === "evaluator" ? l.evaluations : 0), 0);
      const materialised = () =>
        Number(chain.stats().layers.find((l) => l.layer === "tiger")?.extra?.materialised ?? 0);
      let before = [evaluations(), materialised()];
      time += 200;
      expect(await list("user:u2", "file:/home/docs")).toEqual(files("file:/home/docs"));
      expect([evaluations(), materialised()], `tiger: ${tiger}`).toEqual(before); // all from caches
      // A write invalidates u2's answers (and every file#read bitmap). Once the feed delivers it (reads see it from
      // then on), the refresh re-warms what u2 will ask next, in the background.
      await list("user:u2", "file:/home");
      await warmer.idle(); // its predictions are warm (and recent) before the write
      await engine.write({
        writes: [{ user: "user:u3", relation: "direct_viewer", object: "file:/home/docs/f0" }],
      });
      await chain.caughtUp();
      time += 1000;
      await warmer.idle();
      expect(warmer.stats().refreshes).toBe(1);
      before = [evaluations(), materialised()];
      expect(await list("user:u2", "file:/home/docs")).toEqual(files("file:/home/docs"));
      expect([evaluations(), materialised()], `tiger: ${tiger}, after a write`).toEqual(before);
    }
  });

  it("answers equal the plain reference, with and without warming, under writes", async () => {
    let warmedTotal = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(traceStep, { minLength: 3, maxLength: 14 }),
        fc.boolean(),
        fc.constantFrom<"filter" | "checkMany">("filter", "checkMany"),
        async (steps, tiger, via) => {
          let time = 2_000_000;
          const clock = () => time;
          await using engine = await createEngine({
            model: nexusFilesystemModel,
            format: "nexus",
            clock,
            cache: false,
          });
          const structure = [
            ...DIRS.slice(1).map((d) => ({ user: pathDirectory(d)!, relation: "parent", object: d })),
            ...FILES.map((f) => ({ user: pathDirectory(f)!, relation: "parent", object: f })),
            { user: "group:t0", relation: "direct_viewer", object: "file:/r" },
          ];
          await engine.write({ writes: structure });
          const present = new Set<number>();
          // The chains know the engine's writes as the engine does (so all three read the same revision).
          const knownRevision = new KnownRevision(await engine.store.currentRevision());
          const options = { program: engine.program, store: engine.store, clock, knownRevision };
          await using plain = await CheckChain.open({
            ...options,
            resultCache: false,
            bloom: false,
            singleflight: false,
            tiger: false,
            watch: false,
          });
          await using cold = await CheckChain.open({ ...options, ...(tiger ? { tiger: {} } : {}) });
          await using warm = await CheckChain.open({ ...options, ...(tiger ? { tiger: {} } : {}) });
          await using warmer = new Warmer({
            warm: warmThrough(warm, { via }),
            clock,
            questionsPerSecond: Number.POSITIVE_INFINITY,
            predictions: 12,
          });
          warm.feed?.subscribe(warmer);
          const targets = [...FILES, ...DIRS];
          for (const step of steps) {
            for (const i of step.toggle) {
              const tuple = WRITES[i]!;
              if (present.has(i)) {
                present.delete(i);
                knownRevision.advance((await engine.write({ deletes: [tuple] })).revision);
              } else {
                present.add(i);
                knownRevision.advance((await engine.write({ writes: [tuple] })).revision);
              }
            }
            time += step.advanceMs;
            if (step.drain) {
              await warm.caughtUp();
              await warmer.idle();
            }
            const target = targets[step.target]!;
            if (step.list) {
              const dir = DIRS.includes(target) ? target : pathDirectory(target)!;
              const listed = targets.filter((t) => pathDirectory(t) === dir);
              const request = { user: step.user, relation: step.relation, objects: listed };
              const expected = await answerOf(() => plain.filter(request));
              expect(await answerOf(() => cold.filter(request))).toEqual(expected);
              expect(await answerOf(() => warm.filter(request))).toEqual(expected);
              warmer.observeListing(request);
            } else {
              const request: CheckRequest = { user: step.user, relation: step.relation, object: target };
              const expected = await answerOf(() => plain.check(request));
              expect(await answerOf(() => cold.check(request))).toBe(expected);
              expect(await answerOf(() => warm.check(request))).toBe(expected);
              warmer.observe(request);
            }
            // Everything the warmer may have touched: still exact.
            if (step.drain) {
              const all = USERS.map((user) => ({ user, relation: step.relation, objects: targets }));
              for (const request of all) {
                expect(await warm.filter(request)).toEqual(await plain.filter(request));
              }
            }
          }
          await warmer.idle();
          warmedTotal += warmer.stats().warmed;
          expect(warmer.stats().errors).toBe(0);
        },
      ),
      { numRuns: 30 },
    );
    expect(warmedTotal).toBeGreaterThan(0);
  }, 120_000);
});
