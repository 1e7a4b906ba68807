/**
 * The server's side of a cluster (src/cluster/): fastify hooks that route each store's requests to the store's
 * owner, make the answer of whichever member answers see every write acknowledged by any member, serve checks a
 * peer already answered from the shared cache, tell peers about catalog and model changes, and report the cluster
 * in /healthz and /metrics.
 *
 * Consistency across members: a request without a consistency preference (OpenFGA's UNSPECIFIED, "see every write
 * acknowledged") is read at the latest revision (HIGHER_CONSISTENCY), because the write may have been acknowledged
 * by another member (an owner that changed, or a member answering for an owner that did not answer). The latest
 * model and the catalog entry of a store are re-read from PostgreSQL unless this member has owned the store stably
 * (node.ts). MINIMIZE_LATENCY keeps its bound (one quantization window) on every member: each follows the
 * changelog. Watch streams are served by the member asked: they read the shared changelog, gapless on any member.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Gauge } from "prom-client";
import { FORWARDED_HEADER, ForwardError } from "../cluster/forward.js";
import type { ClusterNode } from "../cluster/node.js";
import type { Lookup } from "../cluster/shared-cache.js";
import type { ServerContext } from "./context.js";
import { ApiError } from "./errors.js";
import { contextualTuplesIn, type Json, messageOf } from "./json.js";
import type { ServerMetrics } from "./metrics.js";
import { CHECK as CHECK_FIELDS, CHECK_KEY as CHECK_KEY_FIELDS } from "./routes/queries.js";
import { SDK_HEADERS } from "./sdk-headers.js";

/** POST routes that only read (answered again by this member when the owner went away mid-request), beside GETs. */
const READ_POSTS = new Set([
  "/stores/:store_id/check",
  "/stores/:store_id/batch-check",
  "/stores/:store_id/list-objects",
  "/stores/:store_id/streamed-list-objects",
  "/stores/:store_id/list-users",
  "/stores/:store_id/expand",
  "/stores/:store_id/read",
]);

export interface ClusterHooks {
  /** The node, once it has joined (requests before that are answered here, at the latest revision). */
  readonly node: () => ClusterNode | undefined;
}

export function installCluster(
  app: FastifyInstance,
  ctx: ServerContext,
  metrics: ServerMetrics,
  hooks: ClusterHooks,
): void {
  const misses = new WeakMap<FastifyRequest, Lookup>();
  /** Requests this member answered itself (not by forwarding): they announce what they changed. */
  const local = new WeakSet<FastifyRequest>();

  app.addHook("preHandler", async (request, reply) => {
    const route = request.routeOptions.url ?? "";
    const node = hooks.node();
    if (route === "/stores") {
      // Stores are created on any member: list what all of them created.
      if (request.method === "GET") await ctx.catalog.refresh();
      local.add(request);
      return;
    }
    if (!route.startsWith("/stores/:store_id")) return;
    const storeId = (request.params as Json).store_id;
    if (typeof storeId !== "string") return;
    const watch = route === "/stores/:store_id/watch";
    if (node !== undefined && !watch && request.headers[FORWARDED_HEADER] === undefined) {
      const target = node.forwardTarget(storeId);
      if (target !== undefined) {
        try {
          const answer = await node.forwarder.forward(
            target.url,
            request.method,
            request.url,
            headersOf(request),
            request.body === undefined ? undefined : JSON.stringify(request.body),
          );
          reply.code(answer.status);
          if (answer.contentType !== undefined) reply.type(answer.contentType);
          return reply.send(answer.body);
        } catch (error) {
          if (!(error instanceof ForwardError)) throw error;
          if (error.failure === "timeout") {
            throw new ApiError(
              504,
              "deadline_exceeded",
              `the member owning store ${storeId} did not answer in time`,
            );
          }
          node.suspect(target.id);
          if (
            error.failure === "lost" &&
            request.method !== "GET" &&
            !(request.method === "POST" && READ_POSTS.has(route))
          ) {
            throw new ApiError(
              503,
              "unavailable",
              `the member owning store ${storeId} did not answer; the request may or may not have been applied`,
            );
          }
          node.fallbacks++;
        }
      }
    }
    local.add(request);
    // Answered here: see what other members changed.
    if (node === undefined || !node.stableOwner(storeId)) {
      ctx.forget(storeId);
      await ctx.catalog.refresh();
    } else if (ctx.catalog.getStore(storeId) === undefined) {
      await ctx.catalog.refresh();
    }
    const body = request.body;
    // Only queries take `consistency`: other bodies refuse fields their message does not have (json.ts messageOf).
    const query = request.method === "POST" && READ_POSTS.has(route);
    if (query && typeof body === "object" && body !== null && !Array.isArray(body)) {
      const fields = body as Json;
      const c = fields.consistency;
      if (c === undefined || c === null || c === "" || c === "UNSPECIFIED")
        fields.consistency = "HIGHER_CONSISTENCY";
      if (route === "/stores/:store_id/check" && node?.sharedCache !== undefined) {
        return sharedCheck(node, ctx, request, reply, storeId, fields, misses);
      }
    }
    return undefined;
  });

  app.addHook("onSend", async (request, reply, payload) => {
    const miss = misses.get(request);
    if (miss !== undefined && reply.statusCode === 200 && typeof payload === "string") {
      const node = hooks.node();
      const allowed = /"allowed"\s*:\s*(true|false)/.exec(payload)?.[1];
      if (node?.sharedCache !== undefined && allowed !== undefined) {
        void node.sharedCache.store(miss, allowed === "true");
      }
    }
    return payload;
  });

  app.addHook("onResponse", async (request, reply) => {
    const node = hooks.node();
    if (node === undefined || !local.has(request) || reply.statusCode >= 300) return;
    const route = request.routeOptions.url ?? "";
    const method = request.method;
    if (
      (route === "/stores" && method === "POST") ||
      (route === "/stores/:store_id" && method === "DELETE") ||
      (route === "/stores/:store_id/assertions/:model_id" && method === "PUT")
    ) {
      node.announce({ kind: "catalog" });
    } else if (route === "/stores/:store_id/authorization-models" && method === "POST") {
      node.announce({ kind: "model", tenant: (request.params as Json).store_id as string });
    }
  });

  registerMetrics(metrics, hooks);
}

/** Events from peers: re-read the catalog, forget a store's latest model. */
export function onClusterEvent(ctx: ServerContext, event: { kind: string; tenant?: string }): void {
  if (event.kind === "catalog") void ctx.catalog.refresh().catch(() => undefined);
  else if (event.kind === "model" && event.tenant !== undefined) ctx.forget(event.tenant);
}

/** A plain check (no contextual tuples, no context) looked up in the shared cache; a hit is answered here. */
async function sharedCheck(
  node: ClusterNode,
  ctx: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  storeId: string,
  body: Json,
  misses: WeakMap<FastifyRequest, Lookup>,
): Promise<FastifyReply | undefined> {
  const cache = node.sharedCache!;
  const key = body.tuple_key;
  if (typeof key !== "object" || key === null || Array.isArray(key)) return undefined;
  const { user, relation, object } = key as Json;
  if (typeof user !== "string" || typeof relation !== "string" || typeof object !== "string")
    return undefined;
  let hasContextual: boolean;
  try {
    // A body the route refuses (a field its message does not have) is left to the route's 400.
    messageOf(body, "the request body", CHECK_FIELDS);
    messageOf(key, "tuple_key", CHECK_KEY_FIELDS);
    hasContextual = contextualTuplesIn(body.contextual_tuples).length > 0;
  } catch {
    return undefined;
  }
  const context = body.context;
  const hasContext =
    context !== undefined &&
    context !== null &&
    !(typeof context === "object" && Object.keys(context).length === 0);
  if (hasContextual || hasContext || body.consistency !== "HIGHER_CONSISTENCY") return undefined;
  if (ctx.catalog.getStore(storeId) === undefined) return undefined; // the route answers 404
  const model = await ctx.modelOf(storeId, body.authorization_model_id);
  const found = await cache.lookup({ tenant: storeId, model: model.id, user, relation, object });
  if (found.hit) return reply.send({ allowed: found.allowed, resolution: "" });
  misses.set(request, found);
  return undefined;
}

function headersOf(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of SDK_HEADERS) {
    const value = request.headers[name];
    if (typeof value === "string") out[name] = value;
  }
  if (request.body !== undefined) out["content-type"] = "application/json";
  return out;
}

function registerMetrics(metrics: ServerMetrics, hooks: ClusterHooks): void {
  const registers = [metrics.registry];
  new Gauge({
    name: "nexus_cluster_members",
    help: "Live cluster members as this member last read them from Redis",
    registers,
    collect() {
      this.set(hooks.node()?.members.length ?? 0);
    },
  });
  new Gauge({
    name: "nexus_cluster_redis_up",
    help: "1 when Redis answers this member's heartbeats, 0 when the member runs degraded (own caches and PostgreSQL)",
    registers,
    collect() {
      this.set(hooks.node()?.health().redis === "ok" ? 1 : 0);
    },
  });
  new Gauge({
    name: "nexus_cluster_requests",
    help: "Requests forwarded to owners, forwards that failed, and requests answered here because the owner did not",
    labelNames: ["kind"],
    registers,
    collect() {
      const node = hooks.node();
      this.set({ kind: "forwarded" }, node?.forwarder.forwarded ?? 0);
      this.set({ kind: "forward_failed" }, node?.forwarder.failed ?? 0);
      this.set({ kind: "fallback" }, node?.fallbacks ?? 0);
      this.set({ kind: "ring_changes" }, node?.ringChanges ?? 0);
    },
  });
  new Gauge({
    name: "nexus_cluster_shared_cache",
    help: "Shared (Redis) result cache: hits, misses, answers stored, errors (Redis unreachable) and questions skipped",
    labelNames: ["result"],
    registers,
    collect() {
      const stats = hooks.node()?.sharedCache?.stats;
      for (const result of ["hits", "misses", "stores", "errors", "skipped"] as const) {
        this.set({ result }, stats?.[result] ?? 0);
      }
    },
  });
}
