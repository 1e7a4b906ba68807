// GF(2^8) Reed-Solomon kernel: field arithmetic, matrix inversion, and the hot loop that computes
// out[r] = XOR_j coeff[r][j] * in[j] over byte regions (used for both encoding and reconstruction).
//
// Field: polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), generator 2, the one most erasure codes use.
// The multiply loop comes in two builds of this one source (ASC_FEATURE_SIMD picks at compile time):
//   SIMD   - split nibble tables: c*x = lo[x & 15] ^ hi[x >> 4], two i8x16.swizzle lookups per 16 bytes.
//   scalar - for runtimes without WASM SIMD: for each input, a 256-entry u32 table whose four bytes are the
//            products for four output rows, so one lookup serves four outputs.
// Work is organised as a "plan": the coefficient matrix expanded once into the tables its build needs, then
// applied to any number of region chunks. The TypeScript twin is test/twins/erasure.ts.
export { alloc, free } from "./lib/memory";

// Shared with src/kernels/abi/erasure.ts: the TypeScript side allows at most FIELD_SIZE shards.
const POLY: u32 = 0x11d;
const FIELD_SIZE: u32 = 256;

// exp table doubled (512 entries) so exp[log a + log b] needs no modulo.
const EXP: usize = memory.data(512);
const LOG: usize = memory.data(256);

function initTables(): void {
  let x: u32 = 1;
  for (let i: u32 = 0; i < 255; i++) {
    store<u8>(EXP + i, x as u8);
    store<u8>(EXP + i + 255, x as u8);
    store<u8>(LOG + x, i as u8);
    x <<= 1;
    if (x & 0x100) x ^= POLY;
  }
  // exp[510], exp[511] are never read by gfMul (log values are < 255) but keep them defined.
  store<u8>(EXP + 510, load<u8>(EXP));
  store<u8>(EXP + 511, load<u8>(EXP + 1));
}
initTables();

/** Product of two field elements. */
// @ts-ignore: decorator
@inline
function mul(a: u32, b: u32): u32 {
  if (a == 0 || b == 0) return 0;
  return load<u8>(EXP + (load<u8>(LOG + a) as usize) + (load<u8>(LOG + b) as usize));
}

export function gfMul(a: u32, b: u32): u32 {
  return mul(a & 0xff, b & 0xff);
}

/** Multiplicative inverse; 0 has none and maps to 0 (callers never ask for it). */
export function gfInv(a: u32): u32 {
  a &= 0xff;
  if (a == 0) return 0;
  return load<u8>(EXP + 255 - (load<u8>(LOG + a) as usize));
}

/** out (n x p) = a (n x k) * b (k x p), row-major byte matrices. */
export function mulMatrices(a: usize, b: usize, out: usize, n: u32, k: u32, p: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    for (let j: u32 = 0; j < p; j++) {
      let acc: u32 = 0;
      for (let t: u32 = 0; t < k; t++) {
        acc ^= mul(load<u8>(a + i * k + t), load<u8>(b + t * p + j));
      }
      store<u8>(out + i * p + j, acc as u8);
    }
  }
}

/**
 * Inverts the n x n matrix at `m` in place (Gauss-Jordan). Returns 1 on success, 0 if it is singular (then
 * `m` holds garbage).
 */
export function invertMatrix(m: usize, n: u32): u32 {
  const width = n * 2;
  const work = heap.alloc(n * width);
  for (let r: u32 = 0; r < n; r++) {
    for (let c: u32 = 0; c < n; c++) {
      store<u8>(work + r * width + c, load<u8>(m + r * n + c));
      store<u8>(work + r * width + n + c, r == c ? 1 : 0);
    }
  }
  let ok: u32 = 1;
  for (let col: u32 = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && load<u8>(work + pivot * width + col) == 0) pivot++;
    if (pivot == n) {
      ok = 0;
      break;
    }
    if (pivot != col) {
      for (let c: u32 = 0; c < width; c++) {
        const a = work + col * width + c;
        const b = work + pivot * width + c;
        const t = load<u8>(a);
        store<u8>(a, load<u8>(b));
        store<u8>(b, t);
      }
    }
    const scale = gfInv(load<u8>(work + col * width + col));
    for (let c: u32 = 0; c < width; c++) {
      const a = work + col * width + c;
      store<u8>(a, mul(load<u8>(a), scale) as u8);
    }
    for (let r: u32 = 0; r < n; r++) {
      if (r == col) continue;
      const f = load<u8>(work + r * width + col) as u32;
      if (f == 0) continue;
      for (let c: u32 = 0; c < width; c++) {
        const a = work + r * width + c;
        store<u8>(a, (load<u8>(a) ^ mul(f, load<u8>(work + col * width + c))) as u8);
      }
    }
  }
  if (ok) {
    for (let r: u32 = 0; r < n; r++) {
      for (let c: u32 = 0; c < n; c++) store<u8>(m + r * n + c, load<u8>(work + r * width + n + c));
    }
  }
  heap.free(work);
  return ok;
}

/** Whether two regions hold the same bytes. */
export function equalBytes(a: usize, b: usize, len: usize): u32 {
  let i: usize = 0;
  while (i + 8 <= len) {
    if (load<u64>(a + i) != load<u64>(b + i)) return 0;
    i += 8;
  }
  while (i < len) {
    if (load<u8>(a + i) != load<u8>(b + i)) return 0;
    i++;
  }
  return 1;
}

// ---------------------------------------------------------------------------------------------------------
// Plans. Rows are processed in groups of up to GROUP output rows so each input byte is loaded once per group.
//
// SIMD layout: for a group starting at row r0 with g rows, tables at plan + r0 * cols * 32, and within it
//   (j * g + r) * 32: 16 bytes lo[x] = c * x, then 16 bytes hi[x] = c * (x << 4), x in 0..15.
// Scalar layout: for group q (rows 4q..4q+3), plan + q * cols * 1024 + j * 1024: 256 u32 entries, byte r of
//   entry x = coeff[4q + r][j] * x (zero for rows past the end).
// ---------------------------------------------------------------------------------------------------------

const GROUP: u32 = 4;

/** Bytes of table memory a plan for a rows x cols coefficient matrix needs in this build. */
export function planBytes(rows: u32, cols: u32): usize {
  if (ASC_FEATURE_SIMD) return (rows as usize) * (cols as usize) * 32;
  return (((rows + 3) >> 2) as usize) * (cols as usize) * 1024;
}

/** Expands the row-major rows x cols coefficient matrix at `coeff` into tables at `plan`. */
export function buildPlan(coeff: usize, rows: u32, cols: u32, plan: usize): void {
  if (ASC_FEATURE_SIMD) {
    let r0: u32 = 0;
    while (r0 < rows) {
      const g = groupRows(rows - r0);
      const base = plan + (r0 as usize) * (cols as usize) * 32;
      for (let j: u32 = 0; j < cols; j++) {
        for (let r: u32 = 0; r < g; r++) {
          const c = load<u8>(coeff + (r0 + r) * cols + j) as u32;
          const t = base + ((j * g + r) as usize) * 32;
          for (let x: u32 = 0; x < 16; x++) {
            store<u8>(t + x, mul(c, x) as u8);
            store<u8>(t + 16 + x, mul(c, x << 4) as u8);
          }
        }
      }
      r0 += g;
    }
  } else {
    const groups = (rows + 3) >> 2;
    for (let q: u32 = 0; q < groups; q++) {
      for (let j: u32 = 0; j < cols; j++) {
        const t = plan + ((q * cols + j) as usize) * 1024;
        for (let x: u32 = 0; x < FIELD_SIZE; x++) {
          let packed: u32 = 0;
          for (let r: u32 = 0; r < 4; r++) {
            const row = q * 4 + r;
            if (row < rows) packed |= mul(load<u8>(coeff + row * cols + j), x) << (r * 8);
          }
          store<u32>(t + (x << 2), packed);
        }
      }
    }
  }
}

// @ts-ignore: decorator
@inline
function groupRows(remaining: u32): u32 {
  return remaining >= GROUP ? GROUP : remaining >= 2 ? 2 : 1;
}

/**
 * out[r][0..len) = XOR_j coeff[r][j] * in[j][0..len) for every row r. `ins` and `outs` are arrays of u32
 * pointers (cols and rows entries). Outputs are overwritten, never read; they must not overlap the inputs.
 */
export function applyPlan(plan: usize, rows: u32, cols: u32, ins: usize, outs: usize, len: usize): void {
  if (len == 0 || rows == 0) return;
  if (ASC_FEATURE_SIMD) {
    let r0: u32 = 0;
    while (r0 < rows) {
      const g = groupRows(rows - r0);
      const tables = plan + (r0 as usize) * (cols as usize) * 32;
      const o = outs + ((r0 as usize) << 2);
      if (g == 4) simdGroup4(tables, cols, ins, o, len);
      else if (g == 2) simdGroup2(tables, cols, ins, o, len);
      else simdGroup1(tables, cols, ins, o, len);
      r0 += g;
    }
  } else {
    const groups = (rows + 3) >> 2;
    for (let q: u32 = 0; q < groups; q++) {
      const g = min<u32>(4, rows - q * 4);
      scalarGroup(plan + ((q * cols) as usize) * 1024, cols, ins, outs + ((q * 4) << 2), g, len);
    }
  }
}

// ---- SIMD ------------------------------------------------------------------------------------------------

// @ts-ignore: decorator
@inline
function nibbleMul(t: usize, lo: v128, hi: v128): v128 {
  return v128.xor(i8x16.swizzle(v128.load(t), lo), i8x16.swizzle(v128.load(t, 16), hi));
}

// @ts-ignore: decorator
@inline
function lowNibbles(v: v128): v128 {
  return v128.and(v, i8x16.splat(0x0f));
}

// @ts-ignore: decorator
@inline
function highNibbles(v: v128): v128 {
  // A 16-bit lane shift is one instruction; the mask removes the bits shifted in from the neighbour byte.
  return v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f));
}

/** Scalar tail with the same nibble tables, for the last len % 16 bytes. */
// @ts-ignore: decorator
@inline
function tailByte(t: usize, x: u32): u32 {
  return (load<u8>(t + (x & 15)) ^ load<u8>(t + 16 + (x >> 4))) as u32;
}

function simdGroup4(tables: usize, cols: u32, ins: usize, outs: usize, len: usize): void {
  const o0 = load<u32>(outs) as usize;
  const o1 = load<u32>(outs, 4) as usize;
  const o2 = load<u32>(outs, 8) as usize;
  const o3 = load<u32>(outs, 12) as usize;
  let off: usize = 0;
  // Two vectors per step: eight independent accumulators hide the swizzle latency.
  while (off + 32 <= len) {
    let a0 = i64x2.splat(0);
    let a1 = i64x2.splat(0);
    let a2 = i64x2.splat(0);
    let a3 = i64x2.splat(0);
    let b0 = i64x2.splat(0);
    let b1 = i64x2.splat(0);
    let b2 = i64x2.splat(0);
    let b3 = i64x2.splat(0);
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const p = (load<u32>(ins + ((j as usize) << 2)) as usize) + off;
      const va = v128.load(p);
      const vb = v128.load(p, 16);
      const la = lowNibbles(va);
      const ha = highNibbles(va);
      const lb = lowNibbles(vb);
      const hb = highNibbles(vb);
      a0 = v128.xor(a0, nibbleMul(t, la, ha));
      b0 = v128.xor(b0, nibbleMul(t, lb, hb));
      a1 = v128.xor(a1, nibbleMul(t + 32, la, ha));
      b1 = v128.xor(b1, nibbleMul(t + 32, lb, hb));
      a2 = v128.xor(a2, nibbleMul(t + 64, la, ha));
      b2 = v128.xor(b2, nibbleMul(t + 64, lb, hb));
      a3 = v128.xor(a3, nibbleMul(t + 96, la, ha));
      b3 = v128.xor(b3, nibbleMul(t + 96, lb, hb));
      t += 128;
    }
    v128.store(o0 + off, a0);
    v128.store(o0 + off, b0, 16);
    v128.store(o1 + off, a1);
    v128.store(o1 + off, b1, 16);
    v128.store(o2 + off, a2);
    v128.store(o2 + off, b2, 16);
    v128.store(o3 + off, a3);
    v128.store(o3 + off, b3, 16);
    off += 32;
  }
  if (off + 16 <= len) {
    let a0 = i64x2.splat(0);
    let a1 = i64x2.splat(0);
    let a2 = i64x2.splat(0);
    let a3 = i64x2.splat(0);
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const v = v128.load((load<u32>(ins + ((j as usize) << 2)) as usize) + off);
      const l = lowNibbles(v);
      const h = highNibbles(v);
      a0 = v128.xor(a0, nibbleMul(t, l, h));
      a1 = v128.xor(a1, nibbleMul(t + 32, l, h));
      a2 = v128.xor(a2, nibbleMul(t + 64, l, h));
      a3 = v128.xor(a3, nibbleMul(t + 96, l, h));
      t += 128;
    }
    v128.store(o0 + off, a0);
    v128.store(o1 + off, a1);
    v128.store(o2 + off, a2);
    v128.store(o3 + off, a3);
    off += 16;
  }
  while (off < len) {
    let x0: u32 = 0;
    let x1: u32 = 0;
    let x2: u32 = 0;
    let x3: u32 = 0;
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const x = load<u8>((load<u32>(ins + ((j as usize) << 2)) as usize) + off) as u32;
      x0 ^= tailByte(t, x);
      x1 ^= tailByte(t + 32, x);
      x2 ^= tailByte(t + 64, x);
      x3 ^= tailByte(t + 96, x);
      t += 128;
    }
    store<u8>(o0 + off, x0 as u8);
    store<u8>(o1 + off, x1 as u8);
    store<u8>(o2 + off, x2 as u8);
    store<u8>(o3 + off, x3 as u8);
    off++;
  }
}

function simdGroup2(tables: usize, cols: u32, ins: usize, outs: usize, len: usize): void {
  const o0 = load<u32>(outs) as usize;
  const o1 = load<u32>(outs, 4) as usize;
  let off: usize = 0;
  while (off + 32 <= len) {
    let a0 = i64x2.splat(0);
    let a1 = i64x2.splat(0);
    let b0 = i64x2.splat(0);
    let b1 = i64x2.splat(0);
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const p = (load<u32>(ins + ((j as usize) << 2)) as usize) + off;
      const va = v128.load(p);
      const vb = v128.load(p, 16);
      const la = lowNibbles(va);
      const ha = highNibbles(va);
      const lb = lowNibbles(vb);
      const hb = highNibbles(vb);
      a0 = v128.xor(a0, nibbleMul(t, la, ha));
      b0 = v128.xor(b0, nibbleMul(t, lb, hb));
      a1 = v128.xor(a1, nibbleMul(t + 32, la, ha));
      b1 = v128.xor(b1, nibbleMul(t + 32, lb, hb));
      t += 64;
    }
    v128.store(o0 + off, a0);
    v128.store(o0 + off, b0, 16);
    v128.store(o1 + off, a1);
    v128.store(o1 + off, b1, 16);
    off += 32;
  }
  while (off + 16 <= len) {
    let a0 = i64x2.splat(0);
    let a1 = i64x2.splat(0);
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const v = v128.load((load<u32>(ins + ((j as usize) << 2)) as usize) + off);
      const l = lowNibbles(v);
      const h = highNibbles(v);
      a0 = v128.xor(a0, nibbleMul(t, l, h));
      a1 = v128.xor(a1, nibbleMul(t + 32, l, h));
      t += 64;
    }
    v128.store(o0 + off, a0);
    v128.store(o1 + off, a1);
    off += 16;
  }
  while (off < len) {
    let x0: u32 = 0;
    let x1: u32 = 0;
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const x = load<u8>((load<u32>(ins + ((j as usize) << 2)) as usize) + off) as u32;
      x0 ^= tailByte(t, x);
      x1 ^= tailByte(t + 32, x);
      t += 64;
    }
    store<u8>(o0 + off, x0 as u8);
    store<u8>(o1 + off, x1 as u8);
    off++;
  }
}

function simdGroup1(tables: usize, cols: u32, ins: usize, outs: usize, len: usize): void {
  const o0 = load<u32>(outs) as usize;
  let off: usize = 0;
  while (off + 32 <= len) {
    let a0 = i64x2.splat(0);
    let b0 = i64x2.splat(0);
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const p = (load<u32>(ins + ((j as usize) << 2)) as usize) + off;
      const va = v128.load(p);
      const vb = v128.load(p, 16);
      a0 = v128.xor(a0, nibbleMul(t, lowNibbles(va), highNibbles(va)));
      b0 = v128.xor(b0, nibbleMul(t, lowNibbles(vb), highNibbles(vb)));
      t += 32;
    }
    v128.store(o0 + off, a0);
    v128.store(o0 + off, b0, 16);
    off += 32;
  }
  while (off + 16 <= len) {
    let a0 = i64x2.splat(0);
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const v = v128.load((load<u32>(ins + ((j as usize) << 2)) as usize) + off);
      a0 = v128.xor(a0, nibbleMul(t, lowNibbles(v), highNibbles(v)));
      t += 32;
    }
    v128.store(o0 + off, a0);
    off += 16;
  }
  while (off < len) {
    let x0: u32 = 0;
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      x0 ^= tailByte(t, load<u8>((load<u32>(ins + ((j as usize) << 2)) as usize) + off) as u32);
      t += 32;
    }
    store<u8>(o0 + off, x0 as u8);
    off++;
  }
}

// ---- scalar ----------------------------------------------------------------------------------------------

/** Four output rows (g of them real) from packed u32 tables, four byte positions per step. */
function scalarGroup(tables: usize, cols: u32, ins: usize, outs: usize, g: u32, len: usize): void {
  const o0 = load<u32>(outs) as usize;
  const o1 = g > 1 ? (load<u32>(outs, 4) as usize) : 0;
  const o2 = g > 2 ? (load<u32>(outs, 8) as usize) : 0;
  const o3 = g > 3 ? (load<u32>(outs, 12) as usize) : 0;
  let off: usize = 0;
  while (off + 4 <= len) {
    // acc_i packs the four rows' products for byte position off + i.
    let acc0: u32 = 0;
    let acc1: u32 = 0;
    let acc2: u32 = 0;
    let acc3: u32 = 0;
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      const w = load<u32>((load<u32>(ins + ((j as usize) << 2)) as usize) + off);
      acc0 ^= load<u32>(t + ((w & 0xff) << 2));
      acc1 ^= load<u32>(t + (((w >> 8) & 0xff) << 2));
      acc2 ^= load<u32>(t + (((w >> 16) & 0xff) << 2));
      acc3 ^= load<u32>(t + ((w >> 24) << 2));
      t += 1024;
    }
    // Transpose: row r's four bytes are byte r of acc0..acc3.
    store<u32>(
      o0 + off,
      (acc0 & 0xff) | ((acc1 & 0xff) << 8) | ((acc2 & 0xff) << 16) | ((acc3 & 0xff) << 24),
    );
    if (g > 1) {
      store<u32>(
        o1 + off,
        ((acc0 >> 8) & 0xff) | (acc1 & 0xff00) | ((acc2 & 0xff00) << 8) | ((acc3 & 0xff00) << 16),
      );
    }
    if (g > 2) {
      store<u32>(
        o2 + off,
        ((acc0 >> 16) & 0xff) | ((acc1 >> 8) & 0xff00) | (acc2 & 0xff0000) | ((acc3 & 0xff0000) << 8),
      );
    }
    if (g > 3) {
      store<u32>(o3 + off, (acc0 >> 24) | ((acc1 >> 16) & 0xff00) | ((acc2 >> 8) & 0xff0000) | (acc3 & 0xff000000));
    }
    off += 4;
  }
  while (off < len) {
    let acc: u32 = 0;
    let t = tables;
    for (let j: u32 = 0; j < cols; j++) {
      acc ^= load<u32>(t + ((load<u8>((load<u32>(ins + ((j as usize) << 2)) as usize) + off) as usize) << 2));
      t += 1024;
    }
    store<u8>(o0 + off, acc as u8);
    if (g > 1) store<u8>(o1 + off, (acc >> 8) as u8);
    if (g > 2) store<u8>(o2 + off, (acc >> 16) as u8);
    if (g > 3) store<u8>(o3 + off, (acc >> 24) as u8);
    off++;
  }
}
