/**
 * Redis connections for the cluster, through node-redis 6 (`redis`).
 *
 * Why node-redis and not ioredis: node-redis speaks RESP3 and implements client-side caching (server-assisted
 * tracking: Redis tells the client when a key it read changes), which the shared result cache uses; ioredis speaks
 * RESP2 only and has no client-side cache. Both reconnect by themselves.
 *
 * Commands fail at once while the connection is down (no offline queue): a server must keep answering from its own
 * caches and the database then, not wait for Redis. The client connects and reconnects in the background (node-redis's
 * reconnectStrategy, backing off from 50 ms to 2 s), also when Redis was down from the start.
 */
import { createClient } from "redis";

export type Redis = ReturnType<typeof createClient>;

export interface RedisConnectOptions {
  /** Keep GET answers in this process, invalidated by Redis (RESP3 tracking); entries at most. */
  readonly clientSideCacheEntries?: number;
  /** Longest a command may take before it fails (default 1,000 ms). */
  readonly commandTimeoutMs?: number;
  /** Called on connection errors (the client keeps reconnecting). */
  readonly onError?: (error: Error) => void;
}

/** A connected client (waits, retrying with backoff, until Redis answers). */
export async function connectRedis(url: string, options: RedisConnectOptions = {}): Promise<Redis> {
  const client = createRedis(url, options);
  try {
    await client.connect();
  } catch (error) {
    client.destroy();
    throw error;
  }
  return client;
}

/**
 * A client that connects in the background, retrying with backoff until Redis answers (so a member can start while
 * Redis is down); `ready` resolves once it first connects and never rejects (a client closed first leaves it pending).
 */
export function openRedis(
  url: string,
  options: RedisConnectOptions = {},
): { client: Redis; ready: Promise<void> } {
  const client = createRedis(url, options);
  const ready = client.connect().then(
    () => undefined,
    () => new Promise<void>(() => undefined),
  );
  return { client, ready };
}

function createRedis(url: string, options: RedisConnectOptions): Redis {
  const client = createClient({
    url,
    RESP: 3,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2_000,
      reconnectStrategy: (retries: number) => Math.min(2_000, 50 * 2 ** retries),
    },
    ...(options.clientSideCacheEntries !== undefined && options.clientSideCacheEntries > 0
      ? {
          clientSideCache: {
            ttl: 0,
            maxEntries: options.clientSideCacheEntries,
            evictPolicy: "LRU" as const,
          },
        }
      : {}),
    commandOptions: { timeout: options.commandTimeoutMs ?? 1_000 },
  } as Parameters<typeof createClient>[0]) as Redis;
  client.on("error", (error: Error) => options.onError?.(error));
  return client;
}

/** Closes a client whether or not it is connected; never throws. */
export async function closeRedis(client: Redis | undefined): Promise<void> {
  if (client === undefined) return;
  try {
    if (client.isReady) await client.close();
    else client.destroy();
  } catch {
    try {
      client.destroy();
    } catch {
      // Already closed.
    }
  }
}
