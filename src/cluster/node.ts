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
import { closeRedis, connectRedis, type Redis } from "./redis.js";
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
   * Connects to Redis, starts following the changelog, registers and learns the members.
   * @throws when Redis cannot be reached (a member does not start without it; once started it survives Redis going away).
   */
  static async join(options: ClusterOptions, join: JoinOptions): Promise<ClusterNode> {
    const prefix = options.prefix ?? "nexus:";
    const url = options.advertiseUrl ?? join.url;
    const id = `${new URL(url).host}-${randomBytes(4).toString("hex")}`;
    const onError = join.onError ?? (() => undefined);
    let redis: Redis | undefined;
    let subscriber: Redis | undefined;
    let changes: TenantChanges | undefined;
    try {
      redis = await connectRedis(options.redis, {
        clientSideCacheEntries: options.clientSideCacheEntries ?? 10_000,
        onError,
      });
      subscriber = await connectRedis(options.redis, { onError });
      changes = new TenantChanges(join.store);
      await changes.start();
      const client = redis;
      const revisions = new RevisionReader(() => join.store.currentRevision());
      const sharedCache =
        options.sharedCache === false
          ? undefined
          : new SharedResultCache({
              redis: client,
              prefix,
              changes,
              currentRevision: () => revisions.latest(),
            });
      const ttlMs = options.memberTtlMs ?? 3_000;
      const node = new ClusterNode({
        id,
        url,
        prefix,
        redis,
        subscriber,
        changes,
        sharedCache,
        requestTimeoutMs: join.requestTimeoutMs,
        ttlMs,
      });
      await subscriber.subscribe(`${prefix}events`, (message) => node.#event(message, join.onEvent));
      node.#membership = new Membership({
        redis,
        subscriber,
        prefix,
        self: { id, url },
        ttlMs,
        onChange: (members) => node.#membersChanged(members),
      });
      await node.#membership.start();
      return node;
    } catch (error) {
      await changes?.close();
      await closeRedis(subscriber);
      await closeRedis(redis);
      throw error;
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

  health(): ClusterHealth {
    const redis = this.#redis.isReady && this.#membership?.healthy === true ? "ok" : "unreachable";
    return { member: this.id, redis, members: this.members.length, degraded: redis !== "ok" };
  }

  /** Leaves the ring (the others learn at once), then closes connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
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
