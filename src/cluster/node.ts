/**
 * One member of a cluster of servers over one PostgreSQL and one Redis: its membership (membership.ts), the ring
 * built from the live members (ring.ts), forwarding to owners (forward.ts), the shared result cache
 * (shared-cache.ts, validity from tenant-changes.ts), and a channel on which members tell each other about
 * changes the changelog does not carry (the server catalog, model versions).
 *
 * Who answers a request about tenant T: its owner on the ring. A member that is not the owner forwards (one hop);
 * when the owner does not answer it answers itself, and the member that answers reads the latest revision, so any
 * member's answer sees every write acknowledged by any member.
 *
 * "Stable" ownership: a member that has owned T since the ring last changed, for longer than it takes every other
 * member to learn of that change and finish the requests it had started (`stableAfterMs`), is the only one that
 * has acted on T since, so the per-process knowledge of T it keeps (the latest model, the catalog entry) is
 * current. Otherwise that knowledge is read again from PostgreSQL for each request.
 */
import { randomBytes } from "node:crypto";
import type { PostgresTupleStore } from "../postgres/index.js";
import { Forwarder } from "./forward.js";
import { type Member, Membership } from "./membership.js";
import { closeRedis, openRedis, type Redis } from "./redis.js";
import { RevisionReader } from "./revision-reader.js";
import { Ring } from "./ring.js";
import { SharedResultCache } from "./shared-cache.js";
import { TenantChanges } from "./tenant-changes.js";

export interface ClusterOptions {
  /** The Redis URL (`redis://host:port[/db]`). */
  readonly redis: string;
  /** Prefix of every Redis key and channel (default "nexus:"): clusters sharing one Redis need different ones. */
  readonly prefix?: string;
  /** The URL other members reach this one at (default the server's own URL). */
  readonly advertiseUrl?: string;
  /** Share check answers through Redis (default true). */
  readonly sharedCache?: boolean;
  /** A member not heard from for this long leaves the ring (default 3,000 ms). */
  readonly memberTtlMs?: number;
  /** Client-side (RESP3 tracking) cache entries kept by each member (default 10,000; 0 turns it off). */
  readonly clientSideCacheEntries?: number;
}

/** What members tell each other beside the changelog. */
export type ClusterEvent = { readonly kind: "catalog" } | { readonly kind: "model"; readonly tenant: string };

export interface ClusterHealth {
  readonly member: string;
  readonly redis: "ok" | "unreachable";
  readonly members: number;
  readonly degraded: boolean;
}

export interface JoinOptions {
  readonly store: PostgresTupleStore;
  /** This server's URL. */
  readonly url: string;
  /** Longest a forwarded request may take (the server's request time limit). */
  readonly requestTimeoutMs: number;
  /** Events from other members. */
  readonly onEvent: (event: ClusterEvent) => void;
  /** Connection errors (Redis keeps reconnecting). */
  readonly onError?: (error: Error) => void;
}

export class ClusterNode implements AsyncDisposable {
  readonly id: string;
  readonly url: string;
  readonly prefix: string;
  readonly forwarder: Forwarder;
  readonly sharedCache: SharedResultCache | undefined;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #changes: TenantChanges;
  #membership: Membership | undefined;
  #ring: Ring;
  #urls = new Map<string, string>();
  #ringChangedAt = performance.now();
  readonly #stableAfterMs: number;
  /** Members that did not answer a forwarded request, until when (performance.now()). */
  readonly #suspects = new Map<string, number>();
  #closed = false;
  /** Membership registered once Redis first answered (undefined until then: the member runs alone, degraded). */
  #joining: Promise<void> | undefined;
  #subscribed = false;
  /** Ring changes seen, and requests answered here for lack of an answering owner (for metrics). */
  ringChanges = 0;
  fallbacks = 0;

  private constructor(parts: {
    id: string;
    url: string;
    prefix: string;
    redis: Redis;
    subscriber: Redis;
    changes: TenantChanges;
    sharedCache: SharedResultCache | undefined;
    requestTimeoutMs: number;
    ttlMs: number;
  }) {
    this.id = parts.id;
    this.url = parts.url;
    this.prefix = parts.prefix;
    this.#redis = parts.redis;
    this.#subscriber = parts.subscriber;
    this.#changes = parts.changes;
    this.sharedCache = parts.sharedCache;
    this.forwarder = new Forwarder({
      selfId: parts.id,
      timeoutMs: Math.max(100, parts.requestTimeoutMs / 2),
    });
    this.#ring = new Ring([parts.id]);
    this.#urls.set(parts.id, parts.url);
    this.#stableAfterMs = 2 * parts.ttlMs + parts.requestTimeoutMs;
  }

  /**
   * Starts following the changelog and connecting to Redis; registers and learns the members once Redis answers.
   * A member started while Redis is down does not wait for it: it starts degraded (alone on its ring, answering from
   * its own caches and PostgreSQL, `/healthz` degraded) and joins when Redis comes back (the clients keep
   * reconnecting with backoff).
   */
  static async join(options: ClusterOptions, join: JoinOptions): Promise<ClusterNode> {
    const prefix = options.prefix ?? "nexus:";
    const url = options.advertiseUrl ?? join.url;
    const id = `${new URL(url).host}-${randomBytes(4).toString("hex")}`;
    const onError = join.onError ?? (() => undefined);
    const changes = new TenantChanges(join.store);
    await changes.start();
    const redis = openRedis(options.redis, {
      clientSideCacheEntries: options.clientSideCacheEntries ?? 10_000,
      onError,
    });
    const subscriber = openRedis(options.redis, { onError });
    const revisions = new RevisionReader(() => join.store.currentRevision());
    const sharedCache =
      options.sharedCache === false
        ? undefined
        : new SharedResultCache({
            redis: redis.client,
            prefix,
            changes,
            currentRevision: () => revisions.latest(),
          });
    const ttlMs = options.memberTtlMs ?? 3_000;
    const node = new ClusterNode({
      id,
      url,
      prefix,
      redis: redis.client,
      subscriber: subscriber.client,
      changes,
      sharedCache,
      requestTimeoutMs: join.requestTimeoutMs,
      ttlMs,
    });
    const membership = new Membership({
      redis: redis.client,
      subscriber: subscriber.client,
      prefix,
      self: { id, url },
      ttlMs,
      onChange: (members) => node.#membersChanged(members),
    });
    node.#joining = node.#joinWhenReady(
      Promise.all([redis.ready, subscriber.ready]),
      membership,
      join.onEvent,
    );
    // Redis answering within a moment: join before serving, so the first requests are already routed.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([node.#joining, new Promise((resolve) => (timer = setTimeout(resolve, 2_000)))]);
    clearTimeout(timer);
    return node;
  }

  /**
   * Subscribes and registers once both connections are up; a registration that fails (Redis went away again) is
   * tried again with backoff. node-redis restores the subscriptions itself after later reconnects.
   */
  async #joinWhenReady(
    ready: Promise<unknown>,
    membership: Membership,
    onEvent: (event: ClusterEvent) => void,
  ): Promise<void> {
    await ready;
    let delayMs = 50;
    while (!this.#closed) {
      try {
        if (!this.#subscribed) {
          await this.#subscriber.subscribe(`${this.prefix}events`, (message) =>
            this.#event(message, onEvent),
          );
          this.#subscribed = true;
        }
        await membership.start();
        if (this.#closed) await membership.close();
        else this.#membership = membership;
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        delayMs = Math.min(2_000, delayMs * 2);
      }
    }
  }

  /** The live members as this member last read them. */
  get members(): readonly Member[] {
    return this.#membership?.members ?? [];
  }

  get ring(): Ring {
    return this.#ring;
  }

  /** The member owning `tenant` when it is another one that is not suspected to be down; else undefined. */
  forwardTarget(tenant: string): Member | undefined {
    const owner = this.#ring.owner(tenant);
    if (owner === undefined || owner === this.id) return undefined;
    const until = this.#suspects.get(owner);
    if (until !== undefined) {
      if (performance.now() < until) return undefined;
      this.#suspects.delete(owner);
    }
    const url = this.#urls.get(owner);
    return url === undefined ? undefined : { id: owner, url };
  }

  /** Whether this member owns `tenant` and has since before the last ring change settled. */
  stableOwner(tenant: string): boolean {
    return (
      this.#ring.owner(tenant) === this.id && performance.now() - this.#ringChangedAt >= this.#stableAfterMs
    );
  }

  /** Records that `member` did not answer: requests for its tenants are answered here until it is heard again. */
  suspect(member: string): void {
    const ttl = this.#membership?.ttlMs ?? 3_000;
    this.#suspects.set(member, performance.now() + ttl);
    // Ask Redis now: a member that is gone drops out of the ring without waiting for the next heartbeat.
    void this.#membership?.beat();
  }

  /** Tells the other members (best effort: a lost message only leaves them reading PostgreSQL a little longer). */
  announce(event: ClusterEvent): void {
    void this.#redis
      .publish(`${this.prefix}events`, JSON.stringify({ from: this.id, ...event }))
      .catch(() => undefined);
  }

  /** The client-side (RESP3 tracking) cache's hits and misses, or undefined when it is off. */
  clientSideCacheStats(): { readonly hits: number; readonly misses: number } | undefined {
    const stats = this.#redis.clientSideCache?.stats();
    return stats === undefined ? undefined : { hits: stats.hitCount, misses: stats.missCount };
  }

  health(): ClusterHealth {
    const redis = this.#redis.isReady && this.#membership?.healthy === true ? "ok" : "unreachable";
    return { member: this.id, redis, members: this.members.length, degraded: redis !== "ok" };
  }

  /** Leaves the ring (the others learn at once), then closes connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Closing the clients below ends a join still waiting for Redis (its `ready` then never resolves).
    await this.#membership?.close();
    await this.#subscriber.unsubscribe(`${this.prefix}events`).catch(() => undefined);
    await this.#changes.close();
    await this.forwarder.close();
    await closeRedis(this.#subscriber);
    await closeRedis(this.#redis);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #membersChanged(members: readonly Member[]): void {
    const ring = new Ring(members.map((m) => m.id));
    this.#urls = new Map(members.map((m) => [m.id, m.url]));
    for (const id of [...this.#suspects.keys()]) if (!this.#urls.has(id)) this.#suspects.delete(id);
    this.forwarder.retain(this.#urls.values());
    if (!ring.sameMembers(this.#ring)) {
      this.#ring = ring;
      this.#ringChangedAt = performance.now();
      this.ringChanges++;
    }
  }

  #event(message: string, onEvent: (event: ClusterEvent) => void): void {
    try {
      const event = JSON.parse(message) as ClusterEvent & { from?: string };
      if (event.from === this.id) return;
      if (event.kind === "catalog") onEvent({ kind: "catalog" });
      else if (event.kind === "model" && typeof event.tenant === "string")
        onEvent({ kind: "model", tenant: event.tenant });
    } catch {
      // Not ours: ignored.
    }
  }
}
