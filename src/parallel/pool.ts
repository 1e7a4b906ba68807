/**
 * The Node-only worker pool (Piscina) that every parallel operation shares: bulk checks, list objects, hashing,
 * erasure coding. A task is a module and an exported function (`run(new URL("./x-task.js", import.meta.url),
 * "fn", payload)`), so the pool knows nothing about what runs on it. Threads start lazily on the first task and
 * end on `close()`; workers that stay idle exit after `idleTimeoutMs`.
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { NexusError } from "../util/errors.js";

export interface WorkerPoolOptions {
  /** Worker threads at most (default: the machine's available parallelism). */
  maxThreads?: number;
  /** An idle worker exits after this many milliseconds (default 30 000). */
  idleTimeoutMs?: number;
}

export interface RunOptions {
  transferList?: Transferable[];
  signal?: AbortSignal;
}

// Under the test runner the sources are TypeScript: workers then load task modules through tsx.
const fromSource = import.meta.url.endsWith(".ts");

export class WorkerPool implements AsyncDisposable {
  readonly maxThreads: number;
  readonly idleTimeoutMs: number;
  #piscina: Piscina | undefined;
  #closed = false;

  constructor(options: WorkerPoolOptions = {}) {
    const { maxThreads = availableParallelism(), idleTimeoutMs = 30_000 } = options;
    if (!Number.isInteger(maxThreads) || maxThreads < 1) {
      throw new NexusError("invalid_argument", `maxThreads must be an integer ≥ 1, got ${maxThreads}`, {
        maxThreads,
      });
    }
    if (!Number.isFinite(idleTimeoutMs) || idleTimeoutMs < 0) {
      throw new NexusError("invalid_argument", `idleTimeoutMs must be ≥ 0, got ${idleTimeoutMs}`, {
        idleTimeoutMs,
      });
    }
    this.maxThreads = maxThreads;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  /** Whether any worker thread has been started (the pool is lazy). */
  get started(): boolean {
    return this.#piscina !== undefined;
  }

  get threadCount(): number {
    return this.#piscina?.threads.length ?? 0;
  }

  /** Runs `fn` exported by the module at `task` in a worker and resolves with what it returns. */
  run<R>(task: URL, fn: string, payload: unknown, options: RunOptions = {}): Promise<R> {
    if (this.#closed) return Promise.reject(new NexusError("closed", "the worker pool is closed"));
    this.#piscina ??= new Piscina({
      minThreads: 0,
      maxThreads: this.maxThreads,
      idleTimeout: this.idleTimeoutMs,
      execArgv: fromSource ? ["--import", "tsx"] : [],
    });
    const filename = fileURLToPath(fromSource ? new URL(task.href.replace(/\.js$/, ".ts")) : task);
    return this.#piscina.run(payload, {
      filename,
      name: fn,
      transferList: options.transferList as never,
      signal: options.signal ?? null,
    }) as Promise<R>;
  }

  /** Ends every worker; tasks still queued are rejected. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const piscina = this.#piscina;
    this.#piscina = undefined;
    if (piscina) await piscina.destroy();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
