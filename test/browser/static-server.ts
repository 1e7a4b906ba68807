/**
 * A tiny static server on 127.0.0.1 (ephemeral port) for the Chromium tests: in-memory routes (pages, bundles)
 * plus read-only mounts of real directories (dist/, the loader package). Every request is logged, so a test can
 * prove which asset the page actually fetched and with which MIME type.
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, resolve, sep } from "node:path";

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  contentType: string;
}

const mimeTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
};

export class StaticServer implements AsyncDisposable {
  readonly log: RequestLogEntry[] = [];
  readonly #routes = new Map<string, { body: string | Uint8Array; contentType: string }>();
  readonly #mounts: { prefix: string; dir: string }[] = [];
  readonly #server: Server;
  #closed: Promise<void> | undefined;

  private constructor() {
    this.#server = createServer((request, response) => {
      const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
      void this.#answer(request.method ?? "GET", path).then(({ status, body, contentType }) => {
        this.log.push({ method: request.method ?? "GET", path, status, contentType });
        response.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
        response.end(body);
      });
    });
  }

  static async start(): Promise<StaticServer> {
    const server = new StaticServer();
    await new Promise<void>((resolveListen, reject) => {
      server.#server.once("error", reject);
      server.#server.listen(0, "127.0.0.1", () => resolveListen());
    });
    return server;
  }

  get origin(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  /** Serves `body` at exactly `path`; the MIME type follows the extension unless given. */
  route(path: string, body: string | Uint8Array, contentType?: string): void {
    this.#routes.set(path, { body, contentType: contentType ?? mimeType(path) });
  }

  /** Serves the files under `dir` at `prefix` (which ends with "/"); nothing outside `dir` is reachable. */
  mount(prefix: string, dir: string): void {
    this.#mounts.push({ prefix, dir: resolve(dir) });
  }

  /** Requests whose path matches, in arrival order. */
  requests(pattern: RegExp): RequestLogEntry[] {
    return this.log.filter((entry) => pattern.test(entry.path));
  }

  async #answer(
    method: string,
    path: string,
  ): Promise<{ status: number; body: string | Uint8Array; contentType: string }> {
    const notFound = { status: 404, body: `not found: ${path}`, contentType: "text/plain" };
    if (method !== "GET") return { status: 405, body: "GET only", contentType: "text/plain" };
    const route = this.#routes.get(path);
    if (route !== undefined) return { status: 200, ...route };
    for (const { prefix, dir } of this.#mounts) {
      if (!path.startsWith(prefix)) continue;
      const file = resolve(dir, decodeURIComponent(path.slice(prefix.length)));
      if (!file.startsWith(dir + sep)) return notFound;
      try {
        return { status: 200, body: await readFile(file), contentType: mimeType(file) };
      } catch {
        return notFound;
      }
    }
    return notFound;
  }

  /** Stops listening and drops open keep-alive connections; resolves once the socket is closed. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolveClose) => {
      if (!this.#server.listening) {
        resolveClose();
        return;
      }
      this.#server.close(() => resolveClose());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function mimeType(path: string): string {
  return mimeTypes[extname(path)] ?? "application/octet-stream";
}
