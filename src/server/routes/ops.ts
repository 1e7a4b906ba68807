/** Operations: `GET /healthz` (OpenFGA's `{"status": "SERVING"}`; 503 while shutting down) and `GET /metrics`. */
import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import type { ServerMetrics } from "../metrics.js";

export function opsRoutes(
  app: FastifyInstance,
  ctx: ServerContext,
  metrics: ServerMetrics,
  /** More fields for /healthz (a cluster member's state). */
  extra: () => Record<string, unknown> = () => ({}),
): void {
  app.get("/healthz", async (_request, reply) => {
    if (ctx.closing.signal.aborted || ctx.store.closed) {
      reply.code(503);
      return { status: "NOT_SERVING", ...extra() };
    }
    return { status: "SERVING", ...extra() };
  });

  app.get("/metrics", async (_request, reply) => {
    reply.type(metrics.contentType);
    return metrics.text();
  });
}
