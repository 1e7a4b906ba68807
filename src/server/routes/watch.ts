/**
 * Beyond OpenFGA: `GET /stores/{store_id}/watch` streams the store's changes as they are committed, as NDJSON: one
 * line `{"result": {"tuple_key", "operation", "timestamp", "continuation_token"}}` per change, in revision order,
 * with no gap and no duplicate. It starts after `continuation_token` (from /changes or an earlier watch line), or
 * at `start_time`, or at the present; `type` keeps one object type. The stream ends when the client goes away or
 * the server shuts down; resume with the last line's token.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyInstance } from "fastify";
import { changeStream } from "../../engine/watch.js";
import type { ServerContext } from "../context.js";
import { type Json, optionalString, timestampOut, tupleKeyOut } from "../json.js";
import { encodeContinuation } from "../pagination.js";
import { changesCursor } from "./tuples.js";

const OPERATION = { write: "TUPLE_OPERATION_WRITE", delete: "TUPLE_OPERATION_DELETE" } as const;

export function watchRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get("/stores/:store_id/watch", async (request, reply) => {
    const store = ctx.storeOf((request.params as Json).store_id);
    const query = request.query as Json;
    const type = optionalString(query.type, "type");
    const given = query.continuation_token ?? query.start_time;
    const after =
      given === undefined || given === ""
        ? await ctx.store.currentRevision()
        : await changesCursor(ctx, "changes", query.continuation_token, query.start_time, type);
    // Fail now, not mid-stream, when the changelog no longer reaches back that far.
    await ctx.store.changesAfter(after, 0);
    const stop = new AbortController();
    const end = (): void => stop.abort();
    // Shutdown may have begun during the awaits above: a listener added now would never fire.
    if (ctx.closing.signal.aborted) end();
    ctx.closing.signal.addEventListener("abort", end, { once: true });
    reply.raw.on("close", end);
    async function* lines(): AsyncGenerator<string> {
      try {
        for await (const change of changeStream(await ctx.changeFeed(), store.id, after, stop.signal)) {
          if (type !== undefined && !change.tuple.object.startsWith(`${type}:`)) continue;
          const line = {
            result: {
              tuple_key: tupleKeyOut(change.tuple),
              operation: OPERATION[change.op],
              timestamp: timestampOut(await ctx.commitTime(change.revision)),
              // Resuming from a change mid-revision would skip the rest of it: the token moves per revision.
              continuation_token: encodeContinuation("changes", {
                r: change.endOfRevision ? change.revision : change.revision - 1,
                ...(type !== undefined ? { type } : {}),
              }),
            },
          };
          yield `${JSON.stringify(line)}\n`;
        }
      } catch (error) {
        // The store closing under the stream ends it quietly.
        if (!stop.signal.aborted && !ctx.store.closed) throw error;
      } finally {
        ctx.closing.signal.removeEventListener("abort", end);
      }
    }
    // Headers go out at once (a client waits for them before it reads), so the reply is written here directly.
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      "content-type": "application/x-ndjson",
      "cache-control": "no-cache",
      // The connection ends with the stream (it is not reused), so a shutdown need not wait for it to idle.
      connection: "close",
    });
    raw.flushHeaders();
    pipeline(Readable.from(lines()), raw).catch((error: unknown) => {
      if (!stop.signal.aborted) request.log.error({ err: error }, "watch stream failed");
    });
  });
}
