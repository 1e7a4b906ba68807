/**
 * A NexusFS over HTTP: the file endpoints `nexus-fast serve` adds under /fs (src/server/files.ts), with the same
 * shape as a FileSystem, so an FsClient (and its caches, invalidated by the server's pushed change stream) works
 * over the network as in process. The caller of each call goes in x-nexus-user / x-nexus-tenant headers; `key`
 * is the server's preshared key.
 */
import { NexusError, type NexusErrorCode } from "../util/errors.js";
import type { FsEvent, FsWatchRequest } from "./events.js";
import type { Caller, DirEntry, FileData, FileStat, Grant, TargetOptions, Version } from "./filesystem.js";

export interface HttpFsOptions {
  /** The server, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** A preshared key of the server (sent as `Authorization: Bearer`). */
  readonly key?: string;
}

export class HttpFileSystem {
  readonly url: string;
  readonly #key: string | undefined;
  #token: string;

  private constructor(options: HttpFsOptions, token: string) {
    this.url = options.url.replace(/\/$/, "");
    this.#key = options.key;
    this.#token = token;
  }

  /** Connects (learning the change stream's position now). */
  static async connect(options: HttpFsOptions): Promise<HttpFileSystem> {
    const fs = new HttpFileSystem(options, "");
    fs.#token = await fs.currentToken();
    return fs;
  }

  /** The change stream's position when connected (or last asked). */
  get token(): string {
    return this.#token;
  }

  async currentToken(): Promise<string> {
    const { token } = (await this.#json("GET", "/fs/token", undefined)) as { token: string };
    this.#token = token;
    return token;
  }

  stat(caller: Caller, path: string, o: TargetOptions = {}): Promise<FileStat> {
    return this.#json("GET", `/fs/stat?${query({ path, ...o })}`, caller) as Promise<FileStat>;
  }

  async list(caller: Caller, path: string, o: TargetOptions = {}): Promise<DirEntry[]> {
    return ((await this.#json("GET", `/fs/list?${query({ path, ...o })}`, caller)) as { entries: DirEntry[] })
      .entries;
  }

  async readWithStat(caller: Caller, path: string, o: TargetOptions = {}) {
    const response = await this.#fetch("GET", `/fs/read?${query({ path, ...o })}`, caller);
    const stat = JSON.parse(decodeURIComponent(response.headers.get("x-nexus-stat") ?? "")) as FileStat;
    return { stat, bytes: new Uint8Array(await response.arrayBuffer()) };
  }

  async read(caller: Caller, path: string, o: TargetOptions = {}): Promise<Uint8Array> {
    return (await this.readWithStat(caller, path, o)).bytes;
  }

  write(caller: Caller, path: string, data: FileData, o: TargetOptions = {}): Promise<FileStat> {
    return this.#json("PUT", `/fs/file?${query({ path, ...o })}`, caller, bodyOf(data)) as Promise<FileStat>;
  }

  async assertWritable(caller: Caller, path: string, o: TargetOptions = {}): Promise<void> {
    await this.#json("GET", `/fs/writable?${query({ path, ...o })}`, caller);
  }

  append(caller: Caller, path: string, data: FileData, o: TargetOptions = {}): Promise<FileStat> {
    return this.#json(
      "POST",
      `/fs/append?${query({ path, ...o })}`,
      caller,
      bodyOf(data),
    ) as Promise<FileStat>;
  }

  mkdir(caller: Caller, path: string, o: TargetOptions & { recursive?: boolean } = {}): Promise<FileStat> {
    return this.#json("POST", "/fs/mkdir", caller, { path, ...o }) as Promise<FileStat>;
  }

  async remove(caller: Caller, path: string, o: TargetOptions & { recursive?: boolean } = {}): Promise<void> {
    await this.#json(
      "DELETE",
      `/fs/file?${query({ path, ...o, recursive: o.recursive ? "true" : undefined })}`,
      caller,
    );
  }

  rename(caller: Caller, from: string, to: string, o: TargetOptions = {}): Promise<FileStat> {
    return this.#json("POST", "/fs/rename", caller, { from, to, ...o }) as Promise<FileStat>;
  }

  async glob(caller: Caller, pattern: string, o: TargetOptions & { cwd?: string } = {}): Promise<string[]> {
    return ((await this.#json("GET", `/fs/glob?${query({ pattern, ...o })}`, caller)) as { paths: string[] })
      .paths;
  }

  async versions(caller: Caller, path: string, o: TargetOptions = {}): Promise<Version[]> {
    return (
      (await this.#json("GET", `/fs/versions?${query({ path, ...o })}`, caller)) as { versions: Version[] }
    ).versions;
  }

  async share(caller: Caller, path: string, grant: Grant, o: TargetOptions = {}): Promise<string> {
    return this.#grant("share", caller, path, grant, o);
  }

  async unshare(caller: Caller, path: string, grant: Grant, o: TargetOptions = {}): Promise<string> {
    return this.#grant("unshare", caller, path, grant, o);
  }

  /**
   * The server's change stream (NDJSON), pushed as events commit, filtered for `caller` (the server requires
   * one: it shows each caller only what it may see); ends with `signal` or the server.
   */
  async *watch(request: FsWatchRequest & { caller?: Caller } = {}): AsyncGenerator<FsEvent, void, undefined> {
    const response = await this.#fetch(
      "GET",
      `/fs/watch?${query({ after: request.after })}`,
      request.caller,
      undefined,
      request.signal,
    );
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let partial = "";
    try {
      for (;;) {
        const { done, value } = await reader.read().catch((e: unknown) => {
          if (request.signal?.aborted) return { done: true as const, value: undefined };
          throw e;
        });
        if (done) return;
        partial += value;
        const lines = partial.split("\n");
        partial = lines.pop()!;
        for (const line of lines) if (line !== "") yield JSON.parse(line) as FsEvent;
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  async #grant(action: "share" | "unshare", caller: Caller, path: string, grant: Grant, o: TargetOptions) {
    const body = {
      path,
      user: grant.user,
      relation: grant.relation,
      ...(grant.tenant ? { subject_tenant: grant.tenant } : {}),
      ...o,
    };
    return ((await this.#json("POST", `/fs/${action}`, caller, body)) as { token: string }).token;
  }

  async #json(method: string, path: string, caller: Caller | undefined, body?: unknown): Promise<unknown> {
    const response = await this.#fetch(method, path, caller, body);
    return response.json();
  }

  async #fetch(
    method: string,
    path: string,
    caller: Caller | undefined,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#key !== undefined) headers.authorization = `Bearer ${this.#key}`;
    if (caller !== undefined) {
      headers["x-nexus-user"] = caller.user;
      if (caller.tenant !== undefined) headers["x-nexus-tenant"] = caller.tenant;
    }
    let payload: BodyInit | undefined;
    if (body instanceof Uint8Array || body instanceof ReadableStream) {
      headers["content-type"] = "application/octet-stream";
      payload = body as BodyInit;
    } else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers,
      ...(payload !== undefined ? { body: payload } : {}),
      ...(payload instanceof ReadableStream ? { duplex: "half" } : {}),
      ...(signal !== undefined ? { signal } : {}),
    } as RequestInit);
    if (!response.ok) {
      const error = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
      throw new NexusError(
        (error.code ?? "internal") as NexusErrorCode,
        error.message ?? `${method} ${path}: HTTP ${response.status}`,
        { status: response.status },
      );
    }
    return response;
  }
}

function query(values: Record<string, string | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && typeof v !== "boolean") q.set(k, v);
  return q.toString();
}

/** A request body: bytes as they are, text as UTF-8, a stream as a stream (sent chunked). */
function bodyOf(data: FileData): Uint8Array | ReadableStream<Uint8Array> {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof Uint8Array || data instanceof ReadableStream) return data;
  const iterator = data[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
  });
}
