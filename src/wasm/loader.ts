/**
 * The one loader every kernel goes through, in every runtime. `ready()` compiles all kernels once (how the bytes
 * arrive depends on the runtime: see source.*.ts, chosen by the package's `#wasm-source` import conditions);
 * after it, instantiating a kernel and calling it are synchronous.
 *
 * Hot paths call the raw `instance.exports` (≈5 ns a call); `@assemblyscript/loader` is used to instantiate (it
 * supplies `abort`/`trace`/`seed` imports that decode AssemblyScript's messages), not for per-call wrapping.
 */
import { instantiateSync } from "@assemblyscript/loader";
import { loadKernelModule } from "#wasm-source";
import { NexusError } from "../util/errors.js";
import { kernelFiles } from "./generated/names.js";

const compiled = new Map<string, WebAssembly.Module>();
/** Kernels that could not be compiled here (e.g. a SIMD kernel on a runtime without SIMD), with the reason. */
const failed = new Map<string, unknown>();
const shared = new Map<string, Kernel<unknown>>();
let loading: Promise<void> | undefined;

/**
 * Compiles every kernel once. Safe to call many times and concurrently. A kernel that cannot be compiled on this
 * runtime does not fail the others: using it throws "kernel_unavailable" with the cause.
 */
export function ready(): Promise<void> {
  if (loading === undefined) {
    loading = loadAll();
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

export function isReady(): boolean {
  return compiled.size + failed.size === baseNames().length && loading !== undefined;
}

async function loadAll(): Promise<void> {
  const simd = simdSupported();
  await Promise.all(
    baseNames().map(async (name) => {
      const scalar = `${name}.scalar`;
      const file = !simd && kernelFiles.includes(scalar) ? scalar : name;
      try {
        compiled.set(name, await loadKernelModule(file));
        failed.delete(name);
      } catch (error) {
        failed.set(name, error);
      }
    }),
  );
}

function baseNames(): string[] {
  return kernelFiles.filter((file) => !file.endsWith(".scalar"));
}

/** The smallest module using a v128 instruction: validates only where WASM SIMD is available. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98,
  11,
]);
export function simdSupported(): boolean {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** A live kernel instance: raw exports for hot calls, and views over its linear memory kept fresh. */
export interface Kernel<E> {
  readonly name: string;
  readonly exports: E;
  readonly memory: WebAssembly.Memory;
  readonly views: MemoryViews;
}

/** A new, private instance of a kernel (its own linear memory, released when the instance is dropped). */
export function instantiateKernel<E>(name: string): Kernel<E> {
  const module = compiled.get(name);
  if (module === undefined) {
    const known = baseNames();
    if (failed.has(name)) {
      const cause = failed.get(name);
      throw new NexusError(
        "kernel_unavailable",
        `WASM kernel "${name}" could not be loaded here: ${String(cause)}`,
        { name },
        { cause },
      );
    }
    if (known.includes(name) || loading === undefined) {
      throw new NexusError("not_ready", `WASM kernel "${name}" is not loaded: call \`await ready()\` first`, {
        name,
      });
    }
    throw new NexusError(
      "kernel_unavailable",
      `no WASM kernel named "${name}" (built: ${known.join(", ")})`,
      { name },
    );
  }
  const { instance } = instantiateSync(module, {});
  const exports = instance.exports as unknown as E & { memory: WebAssembly.Memory };
  return { name, exports, memory: exports.memory, views: new MemoryViews(exports.memory) };
}

/** The instance of a kernel shared by every object of this realm that allocates from it (e.g. all Bloom filters). */
export function sharedKernel<E>(name: string): Kernel<E> {
  let kernel = shared.get(name);
  if (kernel === undefined) {
    kernel = instantiateKernel<E>(name);
    shared.set(name, kernel);
  }
  return kernel as Kernel<E>;
}

/**
 * Typed views over a kernel's linear memory. `memory.grow` detaches the old ArrayBuffer, so every accessor checks
 * the buffer identity and rebuilds the views when it changed: always fetch a view after any call that may allocate.
 */
export class MemoryViews {
  #buffer: ArrayBuffer | undefined;
  #u8!: Uint8Array;
  #u32!: Uint32Array;
  #i32!: Int32Array;
  #f64!: Float64Array;
  #u64!: BigUint64Array;
  #data!: DataView;

  constructor(readonly memory: WebAssembly.Memory) {}

  get u8(): Uint8Array {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#u8;
  }
  get u32(): Uint32Array {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#u32;
  }
  get i32(): Int32Array {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#i32;
  }
  get f64(): Float64Array {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#f64;
  }
  get u64(): BigUint64Array {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#u64;
  }
  get data(): DataView {
    if (this.memory.buffer !== this.#buffer) this.#refresh();
    return this.#data;
  }

  #refresh(): void {
    const buffer = this.memory.buffer as ArrayBuffer;
    this.#buffer = buffer;
    this.#u8 = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#i32 = new Int32Array(buffer);
    this.#f64 = new Float64Array(buffer);
    this.#u64 = new BigUint64Array(buffer);
    this.#data = new DataView(buffer);
  }
}
