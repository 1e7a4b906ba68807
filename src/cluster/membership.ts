/**
 * Cluster membership in Redis: each member keeps itself in a sorted set, scored by when its registration expires
 * (Redis's own clock, so members' clocks need not agree), with its address in a hash beside it. One script per
 * heartbeat registers the member, drops expired members and returns the live ones, so a member learns the cluster
 * in the same round trip that keeps it in. A member that stops heartbeating (killed, partitioned) disappears after
 * `ttlMs`; one that leaves cleanly removes itself and says so on a channel, as a joining member does, so the others
 * refresh at once instead of at their next heartbeat.
 *
 * When Redis cannot be reached the last known members stay in force (routing degrades to answering locally where a
 * member does not answer) and `healthy` turns false; the next successful heartbeat re-registers.
 */
import type { Redis } from "./redis.js";

export interface Member {
  readonly id: string;
  /** Where the member answers HTTP (`http://host:port`). */
  readonly url: string;
}

export interface MembershipOptions {
  /** A connected client (commands) and one for the subscription (its own connection, as Redis requires). */
  readonly redis: Redis;
  readonly subscriber: Redis;
  /** Prefix of every key and channel (several clusters, or test runs, can share one Redis). */
  readonly prefix: string;
  readonly self: Member;
  /** A member not heard from for this long is gone (default 3,000 ms). */
  readonly ttlMs?: number;
  /** How often a member refreshes itself and re-reads the others (default ttlMs / 3). */
  readonly heartbeatMs?: number;
  /** Called with the live members whenever they change (always including self). */
  readonly onChange: (members: readonly Member[]) => void;
}

/** KEYS[1] the sorted set, KEYS[2] the address hash; ARGV: id, ttl ms, url ("" when leaving). */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(dead))
end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
for _, id in ipairs(live) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out`;

export class Membership implements AsyncDisposable {
  readonly #o: MembershipOptions;
  readonly ttlMs: number;
  readonly heartbeatMs: number;
  readonly #keys: [string, string];
  readonly #channel: string;
  #members: readonly Member[];
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #lastOkMs = Number.NEGATIVE_INFINITY;
  #closed = false;
  #listening = false;
  /** Heartbeats that failed since start (Redis unreachable). */
  failures = 0;

  constructor(options: MembershipOptions) {
    this.#o = options;
    this.ttlMs = options.ttlMs ?? 3_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(this.ttlMs / 3));
    this.#keys = [`${options.prefix}members`, `${options.prefix}member-urls`];
    this.#channel = `${options.prefix}membership`;
    this.#members = [options.self];
  }

  /** The live members as last read (self always included). */
  get members(): readonly Member[] {
    return this.#members;
  }

  /** Whether the last heartbeat reached Redis within the time-to-live. */
  get healthy(): boolean {
    return performance.now() - this.#lastOkMs < this.ttlMs;
  }

  /** Registers, reads the members and starts heartbeating. Fails when Redis cannot be reached. */
  async start(): Promise<void> {
    if (!this.#listening) {
      // Once only: a start that failed on its heartbeat is tried again by the caller.
      await this.#o.subscriber.subscribe(this.#channel, (message) => {
        if (message !== this.#o.self.id) void this.beat();
      });
      this.#listening = true;
    }
    await this.#beat(true);
    await this.#o.redis.publish(this.#channel, this.#o.self.id).catch(() => undefined);
    this.#timer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.#timer.unref();
  }

  /** One heartbeat now (coalesced with one in flight); never throws. */
  beat(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#beating ??= this.#beat(false).finally(() => {
      this.#beating = undefined;
    });
    return this.#beating;
  }

  /** Deregisters (the others learn at once) and stops heartbeating. Idempotent; never throws. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#beating?.catch(() => undefined);
    try {
      await this.#run("");
      await this.#o.redis.publish(this.#channel, this.#o.self.id);
    } catch {
      // Redis is gone: the registration expires by itself.
    }
    await this.#o.subscriber.unsubscribe(this.#channel).catch(() => undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #beat(first: boolean): Promise<void> {
    try {
      const live = await this.#run(this.#o.self.url);
      this.#lastOkMs = performance.now();
      const members: Member[] = [];
      for (let i = 0; i + 1 < live.length; i += 2) {
        if (live[i + 1] !== "") members.push({ id: live[i]!, url: live[i + 1]! });
      }
      if (!members.some((m) => m.id === this.#o.self.id)) members.push(this.#o.self);
      members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const same =
        members.length === this.#members.length &&
        members.every((m, i) => m.id === this.#members[i]!.id && m.url === this.#members[i]!.url);
      if (!same || first) {
        this.#members = members;
        this.#o.onChange(members);
      }
    } catch (error) {
      this.failures++;
      if (first) throw error;
    }
  }

  async #run(url: string): Promise<string[]> {
    const reply = await this.#o.redis.eval(HEARTBEAT, {
      keys: this.#keys,
      arguments: [this.#o.self.id, String(this.ttlMs), url],
    });
    return (reply as unknown[]).map(String);
  }
}
