/**
 * Membership in Redis (src/cluster/membership.ts) against the machine's Redis, under a key prefix of this run's own:
 * members learn each other on joining, a member leaving cleanly is gone for the others at once, a member that
 * stops heartbeating (killed) is gone after its time-to-live, and nothing is left running or in Redis after close.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type Member, Membership } from "../../src/cluster/membership.js";
import { closeRedis, connectRedis, type Redis } from "../../src/cluster/redis.js";
import { dropPrefix, eventually, REDIS_URL, redisAvailable, uniqueName } from "./helpers.js";

const available = await redisAvailable();
const prefix = `${uniqueName("members")}:`;

async function member(id: string, ttlMs: number, seen: Member[][]) {
  const redis: Redis = await connectRedis(REDIS_URL);
  const subscriber: Redis = await connectRedis(REDIS_URL);
  const membership = new Membership({
    redis,
    subscriber,
    prefix,
    self: { id, url: `http://${id}` },
    ttlMs,
    onChange: (members) => seen.push([...members]),
  });
  await membership.start();
  return {
    membership,
    ids: () => membership.members.map((m) => m.id),
    /** Stops heartbeating without leaving (as a killed process does). */
    async kill() {
      await closeRedis(redis);
      await closeRedis(subscriber);
    },
    async close() {
      await membership.close();
      await closeRedis(redis);
      await closeRedis(subscriber);
    },
  };
}

describe.skipIf(!available)("Membership", () => {
  afterAll(() => dropPrefix(prefix));

  it("joins, learns peers, sees a clean leave at once and a killed member after its ttl", async () => {
    const seenA: Member[][] = [];
    const a = await member("a", 600, seenA);
    const b = await member("b", 600, []);
    const c = await member("c", 600, []);
    try {
      // The joins are published: a learns of b and c without waiting for its heartbeat.
      await eventually(() => a.ids().join() === "a,b,c", 2_000, "a to see b and c");
      expect(c.ids()).toEqual(["a", "b", "c"]);
      const left = performance.now();
      await b.close();
      await eventually(() => a.ids().join() === "a,c", 2_000, "a to see b leave");
      expect(performance.now() - left).toBeLessThan(400); // the announcement, not the ttl
      await c.kill();
      await eventually(() => a.ids().join() === "a", 3_000, "a to drop the killed c");
      expect(a.membership.healthy).toBe(true);
      expect(seenA.at(-1)!.map((m) => m.id)).toEqual(["a"]);
    } finally {
      await a.close();
      await b.close().catch(() => undefined);
      await c.kill().catch(() => undefined);
    }
    // a deregistered: nothing of it is left in the member set.
    const check = await connectRedis(REDIS_URL);
    try {
      expect(await check.zRange(`${prefix}members`, 0, -1)).toEqual([]);
    } finally {
      await closeRedis(check);
    }
  });
});
