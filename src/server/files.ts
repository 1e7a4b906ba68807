/**
 * NexusFS over HTTP, under `/fs` (added to `nexus-fast serve` when it is given a filesystem). The caller is named
 * per request by `x-nexus-user` (a subject, `user:alice`) and `x-nexus-tenant` (default "default"): the server's
 * preshared keys authenticate the service sending the request, and these headers name the user it acts for.
 *
 * GET    /fs/stat?path=&tenant=            FileStat
 * GET    /fs/list?path=&tenant=            { entries }
 * GET    /fs/read?path=&tenant=            the bytes; header x-nexus-stat holds the FileStat (JSON)
 * PUT    /fs/file?path=&tenant=            body: the bytes (application/octet-stream, streamed) -> FileStat
 * POST   /fs/append?path=&tenant=          body: the bytes -> FileStat
 * GET    /fs/writable?path=&tenant=        {} when a write there would be allowed, else its error
 * POST   /fs/mkdir    { path, recursive?, tenant? }
 * DELETE /fs/file?path=&recursive=&tenant=
 * POST   /fs/rename   { from, to, tenant? }
 * GET    /fs/glob?pattern=&cwd=&tenant=    { paths }
 * GET    /fs/versions?path=&tenant=        { versions }
 * POST   /fs/share, /fs/unshare  { path, user, relation, subject_tenant?, tenant? } -> { token }
 * GET    /fs/token                         { token } (the change stream's position now)
 * GET    /fs/watch?after=                  NDJSON, one FsEvent a line, until the client or the server goes: only
 *                                          what the caller may see (FileSystem.watch with `caller`), and
 *                                          `position` lines where hidden events were passed over
 *
 * Errors are `{ code, message }` with the NexusError code: 403 permission_denied, 404 not_found, 409
 * already_exists / not_a_directory / is_a_directory / not_empty, 400 invalid_argument / invalid_token.
 */
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Caller, FileSystem, Grant } from "../fs/filesystem.js";
import { NexusError } from "../util/errors.js";

const STATUS: Record<string, number> = {
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  not_a_directory: 409,
  is_a_directory: 409,
  not_empty: 409,
  invalid_argument: 400,
  invalid_token: 400,
  closed: 503,
};

type Query = Record<string, string | undefined>;

function callerOf(request: FastifyRequest): Caller {
  const user = request.headers["x-nexus-user"];
  const tenant = request.headers["x-nexus-tenant"];
  if (typeof user !== "string" || user === "") {
    throw new NexusError("invalid_argument", "a file request names its user in the x-nexus-user header");
  }
  return { user, ...(typeof tenant === "string" && tenant !== "" ? { tenant } : {}) };
}

function target(q: Query): { tenant?: string } {
  return q.tenant ? { tenant: q.tenant } : {};
}

function required(value: unknown, name: string): string {
  if (typeof value !== "string" || value === "")
    throw new NexusError("invalid_argument", `${name} is required`);
  return value;
}

/** Registers the file endpoints for `fs` (call once, while the app is being built). */
export function fileRoutes(app: FastifyInstance, fs: FileSystem): void {
  void app.register(
    async (files) => {
      const streams = new Set<AbortController>();
      files.addHook("onClose", async () => {
        for (const s of streams) s.abort();
      });
      // Bodies of file writes are streamed to the filesystem as they arrive.
      files.addContentTypeParser("application/octet-stream", (_request, payload, done) =>
        done(null, payload),
      );
      files.setErrorHandler((error: Error, _request, reply) => {
        const code = error instanceof NexusError ? error.code : "internal";
        const status = STATUS[code] ?? (error instanceof NexusError ? 400 : 500);
        void reply.code(status).send({ code, message: error.message });
      });

      files.get("/stat", async (request) => {
        const q = request.query as Query;
        return fs.stat(callerOf(request), required(q.path, "path"), target(q));
      });
      files.get("/list", async (request) => {
        const q = request.query as Query;
        return { entries: await fs.list(callerOf(request), required(q.path, "path"), target(q)) };
      });
      files.get("/read", async (request, reply: FastifyReply) => {
        const q = request.query as Query;
        const { stat, bytes } = await fs.readWithStat(callerOf(request), required(q.path, "path"), target(q));
        void reply.header("x-nexus-stat", encodeURIComponent(JSON.stringify(stat)));
        void reply.type("application/octet-stream");
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      });
      const body = (request: FastifyRequest): AsyncIterable<Uint8Array> | Uint8Array => {
        const b = request.body;
        if (b === undefined || b === null) return new Uint8Array();
        if (typeof b === "string") return new TextEncoder().encode(b);
        if (b instanceof Uint8Array) return b;
        return b as AsyncIterable<Uint8Array>;
      };
      files.put("/file", async (request) => {
        const q = request.query as Query;
        return fs.write(callerOf(request), required(q.path, "path"), body(request), target(q));
      });
      files.get("/writable", async (request) => {
        const q = request.query as Query;
        await fs.assertWritable(callerOf(request), required(q.path, "path"), target(q));
        return {};
      });
      files.post("/append", async (request) => {
        const q = request.query as Query;
        return fs.append(callerOf(request), required(q.path, "path"), body(request), target(q));
      });
      files.post("/mkdir", async (request) => {
        const b = (request.body ?? {}) as { path?: string; recursive?: boolean; tenant?: string };
        return fs.mkdir(callerOf(request), required(b.path, "path"), {
          recursive: b.recursive === true,
          ...target(b as Query),
        });
      });
      files.delete("/file", async (request) => {
        const q = request.query as Query;
        await fs.remove(callerOf(request), required(q.path, "path"), {
          recursive: q.recursive === "true",
          ...target(q),
        });
        return {};
      });
      files.post("/rename", async (request) => {
        const b = (request.body ?? {}) as { from?: string; to?: string; tenant?: string };
        return fs.rename(
          callerOf(request),
          required(b.from, "from"),
          required(b.to, "to"),
          target(b as Query),
        );
      });
      files.get("/glob", async (request) => {
        const q = request.query as Query;
        return {
          paths: await fs.glob(callerOf(request), required(q.pattern, "pattern"), {
            ...target(q),
            ...(q.cwd ? { cwd: q.cwd } : {}),
          }),
        };
      });
      files.get("/versions", async (request) => {
        const q = request.query as Query;
        return { versions: await fs.versions(callerOf(request), required(q.path, "path"), target(q)) };
      });
      for (const action of ["share", "unshare"] as const) {
        files.post(`/${action}`, async (request) => {
          const b = (request.body ?? {}) as Record<string, string | undefined>;
          const grant = {
            user: required(b.user, "user"),
            relation: required(b.relation, "relation"),
            ...(b.subject_tenant ? { tenant: b.subject_tenant } : {}),
          } as Grant;
          return { token: await fs[action](callerOf(request), required(b.path, "path"), grant, target(b)) };
        });
      }
      files.get("/token", async () => ({ token: fs.token }));
      files.get("/watch", async (request, reply) => {
        const q = request.query as Query;
        const stop = new AbortController();
        streams.add(stop);
        request.raw.on("close", () => stop.abort());
        // A token the stream no longer knows fails here, before the response starts.
        const caller = callerOf(request);
        const events = fs.watch({ ...(q.after ? { after: q.after } : {}), signal: stop.signal, caller });
        async function* lines(): AsyncGenerator<string> {
          try {
            for await (const event of events) yield `${JSON.stringify(event)}\n`;
          } finally {
            streams.delete(stop);
          }
        }
        void reply.type("application/x-ndjson");
        return reply.send(Readable.from(lines()));
      });
    },
    { prefix: "/fs" },
  );
}
