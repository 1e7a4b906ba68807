/**
 * The server and its lifecycle: an OpenFGA-compatible HTTP API on fastify 5 over one TupleStore. `startServer`
 * opens the store (or takes one), the catalog, the engine registry, wires hooks (auth, metrics, errors, CORS) and
 * the routes, and listens. `close()` (also on SIGTERM in `nexus-fast serve`) stops accepting connections, ends
 * watch streams, lets requests in flight finish, closes every engine, flushes the catalog and closes the store it
 * opened.
 *
 * Why fastify: measured with autocannon on the same trivial check route (bench/server-frameworks.ts), fastify 5
 * and plain node:http were within the run-to-run noise of this shared machine and hono 4 on @hono/node-server was
 * 2-4x slower; fastify brings body limits, JSON parsing, routing, request timeouts, a JSON logger (pino) and a
 * graceful close that waits for requests in flight, which plain node:http would need written by hand.
 */

import cors from "@fastify/cors";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { ClusterNode, type ClusterOptions } from "../cluster/node.js";
import { PostgresTupleStore } from "../postgres/index.js";
import type { TupleStore } from "../tuples/types.js";
import { PresharedKeys } from "./auth.js";
import { Catalog } from "./catalog.js";
import { installCluster, onClusterEvent } from "./cluster.js";
import { DEFAULT_LIMITS, ServerContext, type ServerLimits } from "./context.js";
import { EngineRegistry } from "./engines.js";
import { toApiError } from "./errors.js";
import { fileRoutes } from "./files.js";
import { ServerMetrics } from "./metrics.js";
import { assertionRoutes } from "./routes/assertions.js";
import { modelRoutes } from "./routes/models.js";
import { opsRoutes } from "./routes/ops.js";
import { playgroundRoutes } from "./routes/playground.js";
import { queryRoutes } from "./routes/queries.js";
import { storeRoutes } from "./routes/stores.js";
import { tupleRoutes } from "./routes/tuples.js";
import { watchRoutes } from "./routes/watch.js";
import { SDK_HEADERS } from "./sdk-headers.js";
import { openServerStore } from "./store.js";

export type LogLevel = "silent" | "fatal" | "error" | "warn" | "info" | "debug" | "trace";

export interface ServerOptions {
  /** TCP port (default 8080; 0 picks a free one). */
  readonly port?: number;
  /** Interface to listen on (default "127.0.0.1"; "0.0.0.0" for every interface). */
  readonly host?: string;
  /** A data directory: tuples, models and the catalog persist there. Absent (and no `store`): memory only. */
  readonly data?: string;
  /** A PostgreSQL connection string: tuples, models and the catalog in schema `postgresSchema`. */
  readonly postgres?: string;
  /** The PostgreSQL schema (default "nexus"). */
  readonly postgresSchema?: string;
  /** A store to serve instead (not closed by the server; its catalog is in memory). */
  readonly store?: TupleStore;
  /** Preshared keys: every request but /healthz, /metrics and CORS preflights needs `Authorization: Bearer <key>`. */
  readonly presharedKeys?: readonly string[];
  /** Origins allowed by CORS (default any: "*"); an empty list turns CORS off. */
  readonly corsOrigins?: readonly string[];
  readonly limits?: Partial<ServerLimits>;
  /** JSON log level (default "silent"; `nexus-fast serve` uses "info"). */
  readonly logLevel?: LogLevel;
  /** Where JSON log lines go (default stdout). */
  readonly logStream?: { write(line: string): void };
  /** A NexusFS to serve under /fs (src/server/files.ts); not closed by the server. */
  readonly files?: import("../fs/filesystem.js").FileSystem;
  /** Join a cluster of servers over the same PostgreSQL schema (needs `postgres`, or a PostgreSQL `store`). */
  readonly cluster?: ClusterOptions;
}

export class NexusServer implements AsyncDisposable {
  readonly #app: FastifyInstance;
  readonly #ctx: ServerContext;
  readonly #ownsStore: boolean;
  readonly #cluster: { node: ClusterNode | undefined };
  #closing: Promise<void> | undefined;

  /** Use startServer(). */
  constructor(
    app: FastifyInstance,
    ctx: ServerContext,
    ownsStore: boolean,
    cluster: { node: ClusterNode | undefined } = { node: undefined },
  ) {
    this.#app = app;
    this.#ctx = ctx;
    this.#ownsStore = ownsStore;
    this.#cluster = cluster;
  }

  /** The cluster member this server is (undefined outside a cluster). */
  get cluster(): ClusterNode | undefined {
    return this.#cluster.node;
  }

  /** The port listened on. */
  get port(): number {
    const address = this.#app.server.address();
    return typeof address === "object" && address !== null ? address.port : 0;
  }

  /** `http://host:port` (what the SDK's `apiUrl` takes). */
  get url(): string {
    const address = this.#app.server.address();
    if (typeof address !== "object" || address === null) return "";
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${address.port}`;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Stops accepting connections, ends watch streams, waits for requests in flight, then closes the engines, the
   * catalog and the store the server opened. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Leave the ring first: the other members stop forwarding here and take this member's stores over.
      await this.#cluster.node?.close();
      this.#ctx.closing.abort();
      // Connections kept alive become idle as their last request ends: close them as they do; whatever still
      // runs after the request time limit is cut.
      const server = this.#app.server;
      const idle = setInterval(() => server.closeIdleConnections(), 25);
      const cut = setTimeout(() => server.closeAllConnections(), this.#ctx.limits.requestTimeoutMs);
      try {
        await this.#app.close();
      } finally {
        clearInterval(idle);
        clearTimeout(cut);
        this.#ctx.deadlines.close();
        await this.#ctx.closeFeed();
        await this.#ctx.engines.close();
        await this.#ctx.catalog.close();
        if (this.#ownsStore) await this.#ctx.store.close();
      }
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Opens the store, builds the app and listens. The server is ready for requests when this resolves. */
export async function startServer(options: ServerOptions = {}): Promise<NexusServer> {
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const keys = new PresharedKeys(options.presharedKeys ?? []);
  const opened =
    options.store !== undefined
      ? { store: options.store, catalog: undefined }
      : await openServerStore({
          ...(options.data !== undefined ? { data: options.data } : {}),
          ...(options.postgres !== undefined ? { postgres: options.postgres } : {}),
          ...(options.postgresSchema !== undefined ? { postgresSchema: options.postgresSchema } : {}),
        });
  const ownsStore = options.store === undefined;
  let app: FastifyInstance | undefined;
  const cluster: { node: ClusterNode | undefined } = { node: undefined };
  try {
    if (options.cluster !== undefined && !(opened.store instanceof PostgresTupleStore)) {
      throw new TypeError("a cluster needs the PostgreSQL store (--postgres): its members share it");
    }
    const catalog = await Catalog.open(opened.catalog !== undefined ? { persistence: opened.catalog } : {});
    const engines = new EngineRegistry({ store: opened.store, maxEngines: limits.maxEngines });
    const ctx = new ServerContext(
      { store: opened.store, catalog, engines, limits },
      await opened.store.currentRevision(),
    );
    app = buildApp(ctx, keys, options, limits, cluster);
    await app.listen({ port: options.port ?? 8080, host: options.host ?? "127.0.0.1" });
    if (options.cluster !== undefined) {
      const log = app.log;
      cluster.node = await ClusterNode.join(options.cluster, {
        store: opened.store as PostgresTupleStore,
        url: listenUrl(app),
        requestTimeoutMs: limits.requestTimeoutMs,
        onEvent: (event) => onClusterEvent(ctx, event),
        onError: (error) => log.warn({ err: error }, "cluster: Redis connection error"),
      });
    }
    const server = new NexusServer(app, ctx, ownsStore, cluster);
    app.log.info(
      { url: server.url, data: options.data ?? null, postgres: options.postgres !== undefined },
      "nexus-fast serve listening",
    );
    return server;
  } catch (error) {
    await cluster.node?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await opened.catalog?.close().catch(() => undefined);
    if (ownsStore) await opened.store.close();
    throw error;
  }
}

/** `http://host:port` of a listening app. */
function listenUrl(app: FastifyInstance): string {
  const address = app.server.address();
  if (typeof address !== "object" || address === null) return "";
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${address.port}`;
}

function buildApp(
  ctx: ServerContext,
  keys: PresharedKeys,
  options: ServerOptions,
  limits: ServerLimits,
  cluster: { node: ClusterNode | undefined },
): FastifyInstance {
  const level = options.logLevel ?? "silent";
  const app = Fastify({
    logger:
      level === "silent"
        ? false
        : { level, ...(options.logStream !== undefined ? { stream: options.logStream } : {}) },
    bodyLimit: limits.bodyBytes,
    // A client must send its whole request within the time limit (slow clients are cut off).
    requestTimeout: limits.requestTimeoutMs,
    // Node checks those deadlines every 30 s by default: check often enough for the limit to mean something.
    http: { connectionsCheckingInterval: Math.min(30_000, Math.max(100, limits.requestTimeoutMs / 4)) },
    forceCloseConnections: "idle",
    return503OnClosing: true,
    // One line per request would cost more than a cached check; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.server.headersTimeout = Math.min(app.server.headersTimeout, limits.requestTimeoutMs);

  const metrics = new ServerMetrics({
    engineStats: () => ctx.engines.stats(),
    engines: () => ({ open: ctx.engines.size, created: ctx.engines.created }),
    inFlight: () => inFlight,
  });
  let inFlight = 0;
  const started = new WeakMap<object, bigint>();

  const origins = options.corsOrigins ?? ["*"];
  if (origins.length > 0) {
    void app.register(cors, {
      origin: origins.includes("*") ? "*" : [...origins],
      methods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
      allowedHeaders: [...SDK_HEADERS],
      maxAge: 600,
    });
  }

  app.addHook("onRequest", async (request) => {
    inFlight++;
    started.set(request, process.hrtime.bigint());
    const path = request.url;
    if (request.method === "OPTIONS" || path === "/healthz" || path.startsWith("/metrics")) return;
    if (request.method === "GET" && /^\/playground(\/(bundle\.js)?)?(\?|$)/.test(path)) return; // a public page
    keys.verify(request.headers.authorization);
  });
  const finished = (request: { routeOptions: { url?: string }; method: string }, status: number): void => {
    inFlight--;
    const start = started.get(request);
    const seconds = start === undefined ? 0 : Number(process.hrtime.bigint() - start) / 1e9;
    metrics.observe(request.routeOptions.url ?? "unmatched", request.method, status, seconds);
  };
  app.addHook("onResponse", async (request, reply) => finished(request, reply.statusCode));
  app.addHook("onRequestAbort", async (request) => finished(request, 499));

  app.setErrorHandler((error, request, reply) => {
    const api = toApiError(error);
    if (api.status >= 500 && api.status !== 503 && api.status !== 504) {
      request.log.error({ err: error, url: request.url }, "request failed");
    } else {
      request.log.debug({ code: api.code, status: api.status, url: request.url }, api.message);
    }
    void reply.code(api.status).send({ code: api.code, message: api.message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      code: "undefined_endpoint",
      message: `no endpoint ${request.method} ${request.url.split("?")[0]}`,
    });
  });

  if (options.cluster !== undefined) installCluster(app, ctx, metrics, { node: () => cluster.node });
  opsRoutes(app, ctx, metrics, () => (cluster.node === undefined ? {} : { cluster: cluster.node.health() }));
  playgroundRoutes(app);
  storeRoutes(app, ctx);
  modelRoutes(app, ctx);
  tupleRoutes(app, ctx);
  queryRoutes(app, ctx);
  assertionRoutes(app, ctx);
  watchRoutes(app, ctx);
  if (options.files !== undefined) fileRoutes(app, options.files);
  return app;
}
