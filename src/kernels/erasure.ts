/**
 * Reed-Solomon erasure coding over GF(2^8), runtime-neutral (no `node:` import): k data shards, m parity shards,
 * any k + m ≤ 256, and any m shards (data or parity) can be lost and rebuilt.
 *
 * The code is systematic: data shards are stored as they are and the parity rows form a Cauchy matrix
 * (parity[r][j] = 1 / ((k + r) xor j)). Every square submatrix of a Cauchy matrix is invertible, so any k of the
 * k + m shards determine the data. The byte work runs in the `erasure` WASM kernel (SIMD nibble tables, or a
 * scalar build where SIMD is missing, picked by the loader); the TypeScript twin in test/twins/erasure.ts is the
 * reference it is tested against.
 *
 * Shards are copied through a fixed staging area in the kernel's memory in chunks sized to stay in cache, so
 * shards of any size cost no extra kernel memory.
 */
import { NexusError } from "../util/errors.js";
import { type Kernel, sharedKernel } from "../wasm/loader.js";
import { erasureAbi } from "./abi/erasure.js";

/** Raw exports of the `erasure` kernel (assembly/erasure.ts). Pointers are byte offsets into its memory. */
export interface ErasureExports {
  alloc(size: number): number;
  free(ptr: number): void;
  gfMul(a: number, b: number): number;
  gfInv(a: number): number;
  mulMatrices(a: number, b: number, out: number, n: number, k: number, p: number): void;
  invertMatrix(m: number, n: number): number;
  equalBytes(a: number, b: number, len: number): number;
  planBytes(rows: number, cols: number): number;
  buildPlan(coeff: number, rows: number, cols: number, plan: number): void;
  applyPlan(plan: number, rows: number, cols: number, ins: number, outs: number, len: number): void;
}

export interface ReedSolomonOptions {
  /**
   * Bytes of each shard processed per kernel call (a multiple of 64). The default keeps all staged chunks of one
   * call within about 256 KiB, so they stay in cache between the copy in, the multiply and the copy out.
   */
  chunkSize?: number;
  /** @internal The kernel instance to run on (tests use this to run the scalar build); default: the shared one. */
  kernel?: Kernel<ErasureExports>;
}

/** A coefficient matrix expanded into the kernel's multiply tables. */
interface Plan {
  readonly ptr: number;
  readonly rows: number;
}

/** GF(2^8) has 256 elements: at most that many distinct rows, so at most that many shards. */
const MAX_SHARDS = erasureAbi.constants.FIELD_SIZE;
const DECODE_PLAN_CACHE = 32;

/** Frees kernel memory of instances dropped without close(). */
const leaks = new FinalizationRegistry<{ kernel: Kernel<ErasureExports>; ptrs: number[] }>(
  ({ kernel, ptrs }) => {
    for (const ptr of ptrs) kernel.exports.free(ptr);
  },
);

export class ReedSolomon implements Disposable {
  /** k: shards that carry the data itself. */
  readonly dataShards: number;
  /** m: parity shards; up to this many shards of any kind can be lost. */
  readonly parityShards: number;
  readonly totalShards: number;
  /** Bytes per shard per kernel call. */
  readonly chunkSize: number;

  readonly #kernel: Kernel<ErasureExports>;
  /** m x k, row-major: parity shard r = XOR_j parity[r][j] * data[j]. */
  readonly #parity: Uint8Array;
  readonly #encodePlan: Plan;
  readonly #decodePlans = new Map<string, Plan>();
  /** Staging: k input chunks, then m output chunks, then m comparison chunks (verify). */
  readonly #stage: number;
  readonly #inPtrs: number;
  readonly #outPtrs: number;
  /** Every kernel allocation this instance owns (freed by close or, as a fallback, the finalizer). */
  readonly #owned: number[];
  #closed = false;

  constructor(dataShards: number, parityShards: number, options: ReedSolomonOptions = {}) {
    if (!Number.isInteger(dataShards) || dataShards < 1) {
      throw new NexusError("invalid_argument", `dataShards must be an integer ≥ 1, got ${dataShards}`, {
        dataShards,
      });
    }
    if (!Number.isInteger(parityShards) || parityShards < 0) {
      throw new NexusError("invalid_argument", `parityShards must be an integer ≥ 0, got ${parityShards}`, {
        parityShards,
      });
    }
    if (dataShards + parityShards > MAX_SHARDS) {
      throw new NexusError(
        "invalid_argument",
        `dataShards + parityShards must be ≤ ${MAX_SHARDS} (GF(2^8) has 256 elements), got ${dataShards} + ${parityShards}`,
        { dataShards, parityShards },
      );
    }
    const k = dataShards;
    const m = parityShards;
    const chunkSize = options.chunkSize ?? defaultChunkSize(k, m);
    if (!Number.isInteger(chunkSize) || chunkSize < 64 || chunkSize % 64 !== 0) {
      throw new NexusError("invalid_argument", `chunkSize must be a multiple of 64, ≥ 64; got ${chunkSize}`, {
        chunkSize,
      });
    }
    this.dataShards = k;
    this.parityShards = m;
    this.totalShards = k + m;
    this.chunkSize = chunkSize;
    this.#kernel = options.kernel ?? sharedKernel<ErasureExports>("erasure");
    this.#owned = [];
    leaks.register(this, { kernel: this.#kernel, ptrs: this.#owned }, this);

    const x = this.#kernel.exports;
    this.#parity = new Uint8Array(m * k);
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < k; j++) this.#parity[r * k + j] = x.gfInv((k + r) ^ j);
    }
    this.#stage = this.#alloc((k + 2 * m) * chunkSize);
    this.#inPtrs = this.#alloc(4 * Math.max(k, 1));
    this.#outPtrs = this.#alloc(4 * Math.max(m, 1));
    const u32 = this.#kernel.views.u32;
    for (let j = 0; j < k; j++) u32[(this.#inPtrs >>> 2) + j] = this.#stage + j * chunkSize;
    for (let r = 0; r < m; r++) u32[(this.#outPtrs >>> 2) + r] = this.#stage + (k + r) * chunkSize;
    this.#encodePlan = this.#buildPlan(this.#parity, m);
  }

  /** The m x k parity coefficients, row-major (a copy). */
  get parityMatrix(): Uint8Array {
    return this.#parity.slice();
  }

  /**
   * Computes the m parity shards of k equally long data shards. Writes into `parity` when given (m arrays of the
   * same length), else returns new arrays.
   */
  encode(data: readonly Uint8Array[], parity?: Uint8Array[]): Uint8Array[] {
    this.#assertOpen();
    const k = this.dataShards;
    const m = this.parityShards;
    if (!Array.isArray(data) || data.length !== k) {
      throw new NexusError(
        "invalid_argument",
        `encode needs exactly ${k} data shards, got ${Array.isArray(data) ? data.length : typeof data}`,
        { expected: k },
      );
    }
    const size = shardLength(data, "data shard");
    let out: Uint8Array[];
    if (parity === undefined) {
      out = Array.from({ length: m }, () => new Uint8Array(size));
    } else {
      if (!Array.isArray(parity) || parity.length !== m) {
        throw new NexusError("invalid_argument", `encode's output needs exactly ${m} parity shards`, {
          expected: m,
        });
      }
      for (let r = 0; r < m; r++) {
        if (!(parity[r] instanceof Uint8Array) || parity[r]!.length !== size) {
          throw new NexusError(
            "invalid_argument",
            `output parity shard ${r} must be a Uint8Array of ${size} bytes (the data shards' length)`,
            { index: r, expected: size },
          );
        }
      }
      out = parity;
    }
    this.#run(this.#encodePlan, data, out, size);
    return out;
  }

  /**
   * Fills in missing shards (null or undefined entries) from any k present ones and returns all k + m shards
   * (present ones are the same objects). Throws `too_many_losses` when fewer than k shards are present.
   * A shard known to be corrupt must be passed as missing: erasure codes rebuild lost shards, they do not find
   * wrong ones (verify() can tell that some shard is wrong, not which).
   */
  reconstruct(shards: readonly (Uint8Array | null | undefined)[]): Uint8Array[] {
    const { present, missing, size } = this.#survey(shards);
    const result = shards.slice() as Uint8Array[];
    this.#rebuild(shards, present, missing, size, result);
    return result;
  }

  /**
   * Like reconstruct() but rebuilds only missing data shards and returns the k data shards: what a reader
   * needs, without the work of recomputing lost parity.
   */
  reconstructData(shards: readonly (Uint8Array | null | undefined)[]): Uint8Array[] {
    const { present, missing, size } = this.#survey(shards);
    const k = this.dataShards;
    const result = shards.slice(0, k) as Uint8Array[];
    this.#rebuild(
      shards,
      present,
      missing.filter((i) => i < k),
      size,
      result,
    );
    return result;
  }

  /** Whether the parity shards match the data shards (all k + m shards present, equally long). */
  verify(shards: readonly Uint8Array[]): boolean {
    this.#assertOpen();
    const k = this.dataShards;
    const m = this.parityShards;
    const n = this.totalShards;
    if (!Array.isArray(shards) || shards.length !== n) {
      throw new NexusError("invalid_argument", `verify needs all ${n} shards`, { expected: n });
    }
    const size = shardLength(shards, "shard");
    const x = this.#kernel.exports;
    const chunk = this.chunkSize;
    const compare = this.#stage + (k + m) * chunk;
    const data = shards.slice(0, k);
    for (let offset = 0; offset < size; offset += chunk) {
      const len = Math.min(chunk, size - offset);
      this.#stageInputs(data, offset, len);
      x.applyPlan(this.#encodePlan.ptr, m, k, this.#inPtrs, this.#outPtrs, len);
      const u8 = this.#kernel.views.u8;
      for (let r = 0; r < m; r++) u8.set(window(shards[k + r]!, offset, len, size), compare + r * chunk);
      for (let r = 0; r < m; r++) {
        if (!x.equalBytes(this.#stage + (k + r) * chunk, compare + r * chunk, len)) return false;
      }
    }
    return true;
  }

  /** Frees this instance's kernel memory. Idempotent; later calls throw `closed`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    leaks.unregister(this);
    const x = this.#kernel.exports;
    for (const ptr of this.#owned) x.free(ptr);
    this.#owned.length = 0;
    this.#decodePlans.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals -----------------------------------------------------------------------------------------

  /** Which shards are present and missing, and their common length; throws when the shards cannot be used. */
  #survey(shards: readonly (Uint8Array | null | undefined)[]): {
    present: number[];
    missing: number[];
    size: number;
  } {
    this.#assertOpen();
    const k = this.dataShards;
    const n = this.totalShards;
    if (!Array.isArray(shards) || shards.length !== n) {
      throw new NexusError(
        "invalid_argument",
        `reconstruct needs an array of ${n} shards (null for missing), got ${Array.isArray(shards) ? `${shards.length} entries` : typeof shards}`,
        { expected: n },
      );
    }
    const present: number[] = [];
    const missing: number[] = [];
    let size = -1;
    for (let i = 0; i < n; i++) {
      const shard = shards[i];
      if (shard === null || shard === undefined) {
        missing.push(i);
        continue;
      }
      if (!(shard instanceof Uint8Array)) {
        throw new NexusError("invalid_argument", `shard ${i} must be a Uint8Array, null or undefined`, {
          index: i,
        });
      }
      if (size === -1) size = shard.length;
      else if (shard.length !== size) {
        throw new NexusError(
          "invalid_argument",
          `all shards must have the same length: shard ${i} has ${shard.length} bytes, shard ${present[0]} has ${size}`,
          { index: i, length: shard.length, expected: size },
        );
      }
      present.push(i);
    }
    if (present.length < k) {
      throw new NexusError(
        "too_many_losses",
        `cannot reconstruct: ${missing.length} of ${n} shards are missing but at most ${this.parityShards} can be rebuilt (missing: ${missing.join(", ")})`,
        { missing, lost: missing.length, maxLosses: this.parityShards },
      );
    }
    return { present, missing, size };
  }

  /** Computes shards `targets` from the first k present shards into result[target]. */
  #rebuild(
    shards: readonly (Uint8Array | null | undefined)[],
    present: number[],
    targets: number[],
    size: number,
    result: Uint8Array[],
  ): void {
    if (targets.length === 0) return;
    const survivors = present.slice(0, this.dataShards);
    const plan = this.#decodePlan(survivors, targets);
    const outputs = targets.map(() => new Uint8Array(size));
    this.#run(
      plan,
      survivors.map((i) => shards[i]!),
      outputs,
      size,
    );
    targets.forEach((i, t) => {
      result[i] = outputs[t]!;
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "this ReedSolomon instance is closed");
  }

  #alloc(bytes: number): number {
    const ptr = this.#kernel.exports.alloc(bytes) >>> 0;
    this.#owned.push(ptr);
    return ptr;
  }

  #free(ptr: number): void {
    const at = this.#owned.indexOf(ptr);
    if (at >= 0) this.#owned.splice(at, 1);
    this.#kernel.exports.free(ptr);
  }

  #buildPlan(coefficients: Uint8Array, rows: number): Plan {
    const x = this.#kernel.exports;
    const k = this.dataShards;
    const ptr = this.#alloc(Math.max(1, x.planBytes(rows, k)));
    const coeff = x.alloc(Math.max(1, coefficients.length)) >>> 0;
    this.#kernel.views.u8.set(coefficients, coeff);
    x.buildPlan(coeff, rows, k, ptr);
    x.free(coeff);
    return { ptr, rows };
  }

  /** The plan that computes shards `targets` from shards `survivors` (k of them), cached per loss pattern. */
  #decodePlan(survivors: number[], targets: number[]): Plan {
    const key = `${survivors.join(",")}|${targets.join(",")}`;
    const cached = this.#decodePlans.get(key);
    if (cached !== undefined) {
      // Refresh its place in the LRU order.
      this.#decodePlans.delete(key);
      this.#decodePlans.set(key, cached);
      return cached;
    }
    const coefficients = this.#decodeMatrix(survivors, targets);
    const plan = this.#buildPlan(coefficients, targets.length);
    this.#decodePlans.set(key, plan);
    if (this.#decodePlans.size > DECODE_PLAN_CACHE) {
      const [oldestKey, oldest] = this.#decodePlans.entries().next().value as [string, Plan];
      this.#decodePlans.delete(oldestKey);
      this.#free(oldest.ptr);
    }
    return plan;
  }

  /**
   * Rows expressing each target shard as a combination of the survivors: with S the generator rows of the
   * survivors, data = S^-1 * survivors, so target t = G[t] * S^-1 * survivors.
   */
  #decodeMatrix(survivors: number[], targets: number[]): Uint8Array {
    const x = this.#kernel.exports;
    const k = this.dataShards;
    const rows = targets.length;
    const s = x.alloc(k * k) >>> 0;
    const g = x.alloc(rows * k) >>> 0;
    const out = x.alloc(rows * k) >>> 0;
    try {
      let u8 = this.#kernel.views.u8;
      for (const [row, shard] of survivors.entries()) u8.set(this.#generatorRow(shard), s + row * k);
      for (const [row, shard] of targets.entries()) u8.set(this.#generatorRow(shard), g + row * k);
      if (x.invertMatrix(s, k) !== 1) {
        // Impossible for a Cauchy-based code; kept as a loud failure rather than wrong bytes.
        throw new NexusError("internal", `decoding matrix for shards ${survivors.join(", ")} is singular`);
      }
      x.mulMatrices(g, s, out, rows, k, k);
      u8 = this.#kernel.views.u8;
      return u8.slice(out, out + rows * k);
    } finally {
      x.free(s);
      x.free(g);
      x.free(out);
    }
  }

  #generatorRow(shard: number): Uint8Array {
    const k = this.dataShards;
    if (shard >= k) return this.#parity.subarray((shard - k) * k, (shard - k + 1) * k);
    const row = new Uint8Array(k);
    row[shard] = 1;
    return row;
  }

  /** outputs[r] = plan row r applied to inputs, chunk by chunk through the staging area. */
  #run(plan: Plan, inputs: readonly Uint8Array[], outputs: Uint8Array[], size: number): void {
    const x = this.#kernel.exports;
    const k = this.dataShards;
    const chunk = this.chunkSize;
    for (let offset = 0; offset < size; offset += chunk) {
      const len = Math.min(chunk, size - offset);
      this.#stageInputs(inputs, offset, len);
      x.applyPlan(plan.ptr, plan.rows, k, this.#inPtrs, this.#outPtrs, len);
      const u8 = this.#kernel.views.u8;
      for (let r = 0; r < plan.rows; r++) {
        const from = this.#stage + (k + r) * chunk;
        outputs[r]!.set(u8.subarray(from, from + len), offset);
      }
    }
  }

  #stageInputs(inputs: readonly Uint8Array[], offset: number, len: number): void {
    const u8 = this.#kernel.views.u8;
    const chunk = this.chunkSize;
    for (let j = 0; j < inputs.length; j++) {
      const input = inputs[j]!;
      u8.set(window(input, offset, len, input.length), this.#stage + j * chunk);
    }
  }
}

function defaultChunkSize(k: number, m: number): number {
  const perShard = Math.floor((256 * 1024) / (k + 2 * m) / 64) * 64;
  return Math.min(64 * 1024, Math.max(1024, perShard));
}

/** The common length of a list of shards, or a typed error naming the first that differs. */
function shardLength(shards: readonly Uint8Array[], what: string): number {
  let size = -1;
  for (let i = 0; i < shards.length; i++) {
    const shard = shards[i];
    if (!(shard instanceof Uint8Array)) {
      throw new NexusError("invalid_argument", `${what} ${i} must be a Uint8Array`, { index: i });
    }
    if (size === -1) size = shard.length;
    else if (shard.length !== size) {
      throw new NexusError(
        "invalid_argument",
        `all shards must have the same length: ${what} ${i} has ${shard.length} bytes, ${what} 0 has ${size}`,
        { index: i, length: shard.length, expected: size },
      );
    }
  }
  return Math.max(size, 0);
}

/** A view of [offset, offset + len) without a new object when it is the whole array. */
function window(bytes: Uint8Array, offset: number, len: number, size: number): Uint8Array {
  return offset === 0 && len === size ? bytes : bytes.subarray(offset, offset + len);
}
