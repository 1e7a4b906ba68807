/**
 * `GET /playground/` and `GET /playground/bundle.js`: the playground page (src/playground/), which runs the engine
 * in the browser and never calls this server. Public like /healthz (a page load sends no bearer key). The files
 * are read on the first request, so a server whose package was built without the page still starts; the page
 * then answers 404 saying how to build it.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { loadPlaygroundFiles, type PlaygroundFile } from "../../playground/files.js";

export function playgroundRoutes(app: FastifyInstance): void {
  let files: Promise<Map<string, PlaygroundFile>> | undefined;
  const load = (): Promise<Map<string, PlaygroundFile>> => {
    files ??= loadPlaygroundFiles();
    // A failed read is retried on the next request (the page may be built while the server runs).
    files.catch(() => {
      files = undefined;
    });
    return files;
  };
  const send = (path: string) => async (_request: unknown, reply: FastifyReply) => {
    let page: Map<string, PlaygroundFile>;
    try {
      page = await load();
    } catch (error) {
      return reply.code(404).send({ code: "not_found", message: (error as Error).message });
    }
    const file = page.get(path)!;
    return reply.type(file.type).header("cache-control", "no-cache").send(file.body);
  };
  // The page loads "./bundle.js" relative to itself: /playground (no slash) must become /playground/ first.
  app.get("/playground", async (request, reply) => {
    if (!request.url.split("?")[0]!.endsWith("/")) return reply.redirect("/playground/", 301);
    return send("/")(request, reply);
  });
  app.get("/playground/bundle.js", send("/bundle.js"));
}
