/**
 * One runtime-neutral scenario, run unchanged in Node, Chromium (page and Web Worker) and workerd. Each runtime
 * passes in what IT imported from "nexus-fast", so the scenario exercises that runtime's resolution of the
 * package (exports/imports conditions) and its way of loading the WASM kernels. The result is plain JSON: the
 * answers themselves plus digests, so runtimes are compared with one deep equality and a mismatch names the part.
 *
 * Only ECMAScript and WebAssembly globals are used here (no Buffer, no node:*, no DOM).
 */

/** The part of the package root the scenario relies on, stated structurally so src/ and dist/ both satisfy it. */
export interface ScenarioApi {
  ready(): Promise<void>;
  BloomFilter: BloomFilterClass;
  Interner: new () => InternerLike;
  MemoTable: new (arity: 3) => MemoTableLike;
}
interface BloomFilterClass {
  new (capacity: number, fpRate: number): BloomFilterLike;
  deserialize(bytes: Uint8Array): BloomFilterLike;
}
interface BloomFilterLike {
  add(key: string | Uint8Array): void;
  mightContain(key: string | Uint8Array): boolean;
  addMany(keys: readonly (string | Uint8Array)[]): void;
  mightContainMany(keys: readonly (string | Uint8Array)[]): ArrayLike<boolean | number>;
  serialize(): Uint8Array;
  dispose(): void;
}
interface InternerLike {
  intern(text: string): number;
  lookup(text: string): number | undefined;
  internMany(texts: readonly string[]): ArrayLike<number>;
  resolve(id: number): string | undefined;
  readonly size: number;
}
interface MemoTableLike {
  get(keys: readonly number[]): number | undefined;
  set(keys: readonly number[], value: number): void;
  delete(keys: readonly number[]): boolean;
  clear(): void;
  readonly size: number;
}

export interface ScenarioResult {
  bloom: {
    /** mightContain of every key added one by one (all must be true). */
    singleAddedFound: boolean[];
    /** mightContain of Unicode keys never added, answered one by one. */
    singleAbsent: boolean[];
    /** A byte key added, found; the UTF-8 bytes of an added string key found too (keys are their UTF-8). */
    bytesKeyFound: boolean;
    utf8BytesOfStringKeyFound: boolean;
    /** Bit string (hex) of mightContainMany over the batch corpus: added half, then never-added half. */
    batchBits: string;
    batchAddedFound: number;
    batchFalsePositives: number;
    batchAgreesWithSingle: boolean;
    serializedLength: number;
    serializedDigest: string;
    /** The deserialized copy answers every key exactly like the original, and serializes to the same bytes. */
    roundTripSameAnswers: boolean;
    roundTripSameBytes: boolean;
  };
  interner: {
    ids: number[];
    /** lookup of every interned text returns its id (all true). */
    lookupMatches: boolean[];
    /** lookup of never-interned texts (each must be null: not found). */
    lookupAbsent: (number | null)[];
    /** resolve(id) gives back exactly the interned text (all true). */
    resolveMatches: boolean[];
    manyIdsDigest: string;
    manyDistinct: number;
    manyConsistent: boolean;
    size: number;
  };
  memo: {
    gets: (number | null)[];
    sizeAfterSets: number;
    deleted: boolean[];
    getsAfterDelete: (number | null)[];
    sizeAfterDelete: number;
    getsAfterClear: (number | null)[];
    sizeAfterClear: number;
  };
  /** FNV-1a digest of the whole result above, in canonical JSON. */
  digest: string;
}

/** Keys chosen to hit every UTF-8 length class and the usual Unicode traps (NFC vs NFD, astral, RTL, NUL). */
export const unicodeKeys: readonly string[] = [
  "",
  "a",
  "user:alice",
  "\u0000",
  "ключ",
  "鍵",
  "مفتاح",
  "🔑",
  "👩‍👩‍👧",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "\u00e9", // é precomposed (NFC)
  "e\u0301", // é decomposed (NFD): a different key
  "Ω\u2126", // GREEK CAPITAL OMEGA, OHM SIGN
  "x".repeat(1000),
  "🔑".repeat(300),
];

const absentUnicodeKeys: readonly string[] = [
  "ключи",
  "鍵鍵",
  "🗝",
  "e\u0300",
  "user:alicE",
  "\u0000\u0000",
  "𝔘𝔫𝔦𝔠𝔬𝔡",
  "y".repeat(1000),
];

/** Deterministic batch corpus mixing ASCII object ids and Unicode paths. */
function batchCorpus(count: number, salt: string): string[] {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    keys.push(
      i % 3 === 0 ? `document:${salt}${i}#viewer@user:${i * 7919}` : `/tenant/${salt}/путь/${i}/ファイル🔑`,
    );
  }
  return keys;
}

export async function runScenario(api: ScenarioApi): Promise<ScenarioResult> {
  await api.ready();
  const bloom = bloomPart(api);
  const interner = internerPart(api);
  const memo = memoPart(api);
  const body = { bloom, interner, memo };
  return { ...body, digest: fnv1a(canonicalJson(body)) };
}

function bloomPart(api: ScenarioApi): ScenarioResult["bloom"] {
  const filter = new api.BloomFilter(5_000, 0.01);
  let copy: BloomFilterLike | undefined;
  try {
    for (const key of unicodeKeys) filter.add(key);
    const singleAddedFound = unicodeKeys.map((key) => filter.mightContain(key));
    const singleAbsent = absentUnicodeKeys.map((key) => filter.mightContain(key));
    filter.add(new Uint8Array([0, 1, 2, 0xfe, 0xff]));
    const bytesKeyFound = filter.mightContain(new Uint8Array([0, 1, 2, 0xfe, 0xff]));
    const utf8BytesOfStringKeyFound = filter.mightContain(new TextEncoder().encode("👩‍👩‍👧"));

    const added = batchCorpus(2_000, "in");
    const absent = batchCorpus(2_000, "out");
    filter.addMany(added);
    const probe = [...added, ...absent];
    const batch = toBooleans(filter.mightContainMany(probe));
    const single = probe.map((key) => filter.mightContain(key));

    const bytes = filter.serialize();
    copy = api.BloomFilter.deserialize(bytes.slice());
    const allKeys = [...unicodeKeys, ...absentUnicodeKeys, ...probe];
    const original = toBooleans(filter.mightContainMany(allKeys));
    const restored = toBooleans(copy.mightContainMany(allKeys));
    return {
      singleAddedFound,
      singleAbsent,
      bytesKeyFound,
      utf8BytesOfStringKeyFound,
      batchBits: bitsToHex(batch),
      batchAddedFound: batch.slice(0, added.length).filter(Boolean).length,
      batchFalsePositives: batch.slice(added.length).filter(Boolean).length,
      batchAgreesWithSingle: batch.length === single.length && batch.every((b, i) => b === single[i]),
      serializedLength: bytes.length,
      serializedDigest: fnv1aBytes(bytes),
      roundTripSameAnswers: original.every((b, i) => b === restored[i]),
      roundTripSameBytes: sameBytes(copy.serialize(), bytes),
    };
  } finally {
    copy?.dispose();
    filter.dispose();
  }
}

function internerPart(api: ScenarioApi): ScenarioResult["interner"] {
  const interner = new api.Interner();
  try {
    const texts = [...unicodeKeys, "user:alice", "鍵", "e\u0301"]; // the last three are repeats
    const ids = texts.map((text) => interner.intern(text));
    const lookupMatches = texts.map((text, i) => interner.lookup(text) === ids[i]);
    const lookupAbsent = absentUnicodeKeys.map((text) => interner.lookup(text) ?? null);
    const resolveMatches = texts.map((text, i) => interner.resolve(ids[i]!) === text);

    const many = batchCorpus(1_500, "intern");
    const withRepeats = [...many, ...many.slice(0, 500), ...unicodeKeys];
    const manyIds = Array.from(interner.internMany(withRepeats));
    // Same text -> same id, different text -> different id, and every id resolves to its text.
    const idOf = new Map<string, number>();
    let manyConsistent = manyIds.length === withRepeats.length;
    withRepeats.forEach((text, i) => {
      const id = manyIds[i]!;
      const seen = idOf.get(text);
      if (seen !== undefined && seen !== id) manyConsistent = false;
      idOf.set(text, id);
      if (interner.resolve(id) !== text) manyConsistent = false;
    });
    if (new Set(idOf.values()).size !== idOf.size) manyConsistent = false;
    return {
      ids,
      lookupMatches,
      lookupAbsent,
      resolveMatches,
      manyIdsDigest: fnv1a(manyIds.join(",")),
      manyDistinct: idOf.size,
      manyConsistent,
      size: interner.size,
    };
  } finally {
    disposeIfDisposable(interner);
  }
}

function memoPart(api: ScenarioApi): ScenarioResult["memo"] {
  const table = new api.MemoTable(3);
  try {
    const keys: number[][] = [];
    for (let i = 0; i < 200; i++) keys.push([i, (i * 31) % 17, 0xffff_fff0 + (i % 16)]);
    keys.forEach((key, i) => {
      table.set(key, i * 3 + 1);
    });
    table.set(keys[5]!, 999); // overwrite: size unchanged
    const probe = [keys[0]!, keys[5]!, keys[199]!, [1, 2, 3], [0, 0, 0]];
    const gets = probe.map((key) => table.get(key) ?? null);
    const sizeAfterSets = table.size;
    const deleted = [keys[0]!, keys[0]!, [7, 7, 7]].map((key) => table.delete(key));
    const getsAfterDelete = probe.map((key) => table.get(key) ?? null);
    const sizeAfterDelete = table.size;
    table.clear();
    const getsAfterClear = probe.map((key) => table.get(key) ?? null);
    return {
      gets,
      sizeAfterSets,
      deleted,
      getsAfterDelete,
      sizeAfterDelete,
      getsAfterClear,
      sizeAfterClear: table.size,
    };
  } finally {
    disposeIfDisposable(table);
  }
}

function disposeIfDisposable(value: object): void {
  const dispose = (value as { dispose?: () => void }).dispose;
  if (typeof dispose === "function") dispose.call(value);
}

function toBooleans(values: ArrayLike<boolean | number>): boolean[] {
  return Array.from(values, (v) => v === true || v === 1);
}

function bitsToHex(bits: readonly boolean[]): string {
  let hex = "";
  for (let i = 0; i < bits.length; i += 4) {
    const nibble = (bits[i] ? 8 : 0) | (bits[i + 1] ? 4 : 0) | (bits[i + 2] ? 2 : 0) | (bits[i + 3] ? 1 : 0);
    hex += nibble.toString(16);
  }
  return hex;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** JSON with object keys sorted, so the digest does not depend on property order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** 64-bit FNV-1a over the UTF-16 code units of a string, as 16 hex digits (BigInt: exact in every runtime). */
function fnv1a(text: string): string {
  const codes = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    codes[2 * i] = unit & 0xff;
    codes[2 * i + 1] = unit >>> 8;
  }
  return fnv1aBytes(codes);
}

function fnv1aBytes(bytes: Uint8Array): string {
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * prime) & mask;
  return hash.toString(16).padStart(16, "0");
}
