// ChangeFeed.subscribe({ after, onJoined }): a follower that catches up through its own subscription hands over to
// a listener already in the live fan-out at the moment onJoined names (src/wasm-eval/tenant-graphs.ts does this).
// Taking the handed-over listener's changes up to the watermark and the live listener's after it must give every
// change exactly once, also while large writes (handed out in parts, with the event loop turning) keep landing.
import { describe, expect, it } from "vitest";
import { ChangeFeed, type ChangeListener } from "../../src/changes/feed.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import type { StoredChange } from "../../src/tuples/types.js";

function tuple(user: string, object: string): RelationTuple {
  const n = normalizeTuple({ user, relation: "viewer", object }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

describe("ChangeFeed onJoined hand-over", () => {
  it("the catch-up listener up to the watermark plus the live one after it see every change once", async () => {
    await using store = new MemoryTupleStore();
    let written = 0;
    const write = async (count: number) => {
      const writes = Array.from({ length: count }, () => tuple("user:a", `doc:${++written}`));
      await store.write({ writes, deletes: [] });
    };
    for (let i = 0; i < 20; i++) await write(1 + (i % 3));
    await using feed = await ChangeFeed.open(store, { pageSize: 64 });
    for (let round = 0; round < 6; round++) {
      const from = await store.currentRevision();
      // Changes in the store before the follower's starting point are nobody's business here.
      const live: StoredChange[] = [];
      let handedAt: number | undefined;
      const shared: ChangeListener = {
        onChanges: (changes) => {
          for (const c of changes) if (handedAt !== undefined && c.revision > handedAt) live.push(c);
        },
        onReset: () => {
          throw new Error("reset");
        },
      };
      const unsubscribeShared = feed.subscribe(shared);
      // Writes land so the follower starts behind, and keep landing (some large) while it catches up.
      await write(300);
      await write(5);
      const behind = from;
      const caught: StoredChange[] = [];
      let active = true;
      const listener: ChangeListener = {
        onChanges: (changes) => {
          if (active) caught.push(...changes);
        },
        onReset: () => {
          throw new Error("reset");
        },
      };
      let unsubscribe: (() => void) | undefined;
      const joined = new Promise<void>((resolve) => {
        unsubscribe = feed.subscribe(listener, {
          after: behind,
          onJoined: (watermark) => {
            active = false;
            unsubscribe!();
            handedAt = watermark;
            resolve();
          },
        });
      });
      const writing = (async () => {
        for (let i = 0; i < 4; i++) {
          await write(i % 2 === 0 ? 2500 + round * 100 : 3);
          await new Promise((r) => setImmediate(r));
        }
      })();
      await joined;
      await writing;
      await feed.caughtUp();
      unsubscribeShared();
      const seen = [...caught.filter((c) => c.revision <= handedAt!), ...live].map((c) => c.tuple.object);
      const expected = (await store.changesAfter(behind, 1_000_000)).map((c) => c.tuple.object);
      expect(caught.every((c) => c.revision <= handedAt!)).toBe(true);
      expect(seen).toEqual(expected);
    }
  }, 60_000);
});
