/**
 * `nexus-fast playground`: serves the playground page (dist/playground/, built by `npm run build`) on 127.0.0.1
 * until SIGINT or SIGTERM. The page runs the whole engine in the browser, so the server only hands out two static
 * files: the HTML and its bundle. Nothing else is reachable (no directory walking, no other path).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadPlaygroundFiles } from "../../playground/files.js";
import { intOption, parse, UsageError } from "../args.js";
import type { Io } from "../io.js";

export const PLAYGROUND_HELP = `Usage: nexus-fast playground [--port 4173]

Serves the playground on http://127.0.0.1:PORT/: a page that runs the whole engine in your browser (nothing is
sent to a server). Edit a model (OpenFGA DSL or SpiceDB), tuples and store tests; run check, list-objects,
list-users and expand; open the proof tree of a check; read the timings. Share puts everything in the URL.
Stops on Ctrl-C.

Options:
  --port N   TCP port on 127.0.0.1 (default 4173; 0 picks a free one)
`;

export interface PlaygroundServerOptions {
  /** TCP port (0 picks a free one). */
  readonly port: number;
  /** Folder holding index.html and bundle.js (default PLAYGROUND_DIR). */
  readonly dir?: string;
}

/** A static server for the playground on 127.0.0.1. */
export class PlaygroundServer implements AsyncDisposable {
  readonly #server: Server;
  #closed: Promise<void> | undefined;

  private constructor(server: Server) {
    this.#server = server;
  }

  /**
   * Reads the built page and starts listening.
   * @throws NexusError "not_found" when the page is not built (run `npm run build`).
   */
  static async start(options: PlaygroundServerOptions): Promise<PlaygroundServer> {
    const files = await loadPlaygroundFiles(options.dir);
    const server = createServer((request, response) => {
      const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
      const entry = files.get(path);
      if (entry === undefined || (request.method !== "GET" && request.method !== "HEAD")) {
        response.writeHead(entry === undefined ? 404 : 405, { "content-type": "text/plain; charset=utf-8" });
        response.end(entry === undefined ? "not found\n" : "GET only\n");
        return;
      }
      const body = entry.body;
      response.writeHead(200, {
        "content-type": entry.type,
        "content-length": body.length,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      });
      response.end(request.method === "HEAD" ? undefined : body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return new PlaygroundServer(server);
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/`;
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

export async function runPlayground(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, { port: { type: "string" } });
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
  const port = intOption(parsed, "port", 4173, 0);
  const server = await PlaygroundServer.start({ port }).catch((error: unknown) => {
    if ((error as { code?: unknown }).code === "EADDRINUSE") {
      throw new UsageError(
        `port ${port} on 127.0.0.1 is in use: pick another with --port (0 picks a free one)`,
      );
    }
    throw error;
  });
  io.out(`nexus-fast playground: ${server.url} (Ctrl-C stops it)`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  await server.close();
  return 0;
}
