/**
 * TypeScript twin of the erasure kernel (assembly/erasure.ts + src/kernels/erasure.ts), for differential tests.
 * Written to be obviously right rather than fast: field products by shift-and-add (no log tables, so a wrong
 * table in the kernel cannot hide behind the same wrong table here), matrices inverted by plain Gauss-Jordan,
 * one byte at a time.
 */
const POLY = 0x11d;

/** a * b in GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1. */
export function gfMul(a: number, b: number): number {
  let product = 0;
  let x = a & 0xff;
  let y = b & 0xff;
  while (y !== 0) {
    if (y & 1) product ^= x;
    y >>= 1;
    x <<= 1;
    if (x & 0x100) x ^= POLY;
  }
  return product;
}

/** The inverse by exhaustive search: 255 candidates, trivially correct. */
export function gfInv(a: number): number {
  if (a === 0) throw new Error("0 has no inverse");
  for (let b = 1; b < 256; b++) if (gfMul(a, b) === 1) return b;
  throw new Error(`no inverse for ${a}`);
}

/** Row i of the (k + m) x k generator matrix: identity on top, Cauchy rows 1 / ((k + r) xor j) below. */
export function generatorRow(k: number, i: number): number[] {
  if (i < k) return Array.from({ length: k }, (_, j) => (j === i ? 1 : 0));
  return Array.from({ length: k }, (_, j) => gfInv(i ^ j));
}

export function invert(matrix: number[][]): number[][] | undefined {
  const n = matrix.length;
  const work = matrix.map((row, r) => [...row, ...Array.from({ length: n }, (_, c) => (c === r ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    const pivot = work.findIndex((row, r) => r >= col && row[col] !== 0);
    if (pivot < 0) return undefined;
    [work[col], work[pivot]] = [work[pivot]!, work[col]!];
    const inv = gfInv(work[col]![col]!);
    work[col] = work[col]!.map((v) => gfMul(v, inv));
    for (let r = 0; r < n; r++) {
      const f = work[r]![col]!;
      if (r === col || f === 0) continue;
      work[r] = work[r]!.map((v, c) => v ^ gfMul(f, work[col]![c]!));
    }
  }
  return work.map((row) => row.slice(n));
}

function combine(rows: number[][], inputs: Uint8Array[], size: number): Uint8Array[] {
  return rows.map((row) => {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      let acc = 0;
      for (let j = 0; j < row.length; j++) acc ^= gfMul(row[j]!, inputs[j]![i]!);
      out[i] = acc;
    }
    return out;
  });
}

export function encode(k: number, m: number, data: Uint8Array[]): Uint8Array[] {
  const size = data[0]?.length ?? 0;
  const rows = Array.from({ length: m }, (_, r) => generatorRow(k, k + r));
  return combine(rows, data, size);
}

/** All k + m shards from any k present ones; undefined when fewer than k are present. */
export function reconstruct(k: number, m: number, shards: (Uint8Array | null)[]): Uint8Array[] | undefined {
  const present = shards.flatMap((s, i) => (s === null ? [] : [i]));
  if (present.length < k) return undefined;
  const survivors = present.slice(0, k);
  const inverse = invert(survivors.map((i) => generatorRow(k, i)));
  if (inverse === undefined) throw new Error("singular decoding matrix");
  const size = shards[survivors[0]!]!.length;
  const data = combine(
    inverse,
    survivors.map((i) => shards[i]!),
    size,
  );
  return [...data, ...encode(k, m, data)];
}
