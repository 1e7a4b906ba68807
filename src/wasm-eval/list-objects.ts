/**
 * List objects by reverse expansion in the WASM kernel (assembly/evaluate/list-objects.ts): one kernel call walks
 * the tenant's compiled tuple graph up from the subject and returns the object symbols, which are mapped back to
 * strings here and sorted as Engine.listObjects returns them. It is src/reference/exact-list-objects.ts
 * exactListObjects over the graph instead of a store snapshot, and answers only where that one is exact and the
 * graph can stand for the snapshot:
 * - the program is one where reverse expansion is exact (reverseExpansionIsExact: union-only, no condition, not a
 *   SpiceDB schema), and the caller has checked the rest of exactListObjects' conditions (a plain subject of the
 *   request's own tenant, no contextual tuples, no check able to reach the depth limit);
 * - the tenant's graph is at exactly the request's revision (the rule checks follow: graphAt / graphIfCurrent);
 * - the graph holds no flagged tuple (an expiry or a cross-tenant subject: such a tuple is counted on its node but
 *   absent from the reverse adjacency, so the walk could not see it).
 * Anything else is `undefined`, and the caller lists as before.
 *
 * Sorting. Sorting 30k strings in JavaScript costs several milliseconds, more than the walk, and far more when
 * they come in no useful order. Symbols are never freed and their texts never change, so the kernel ranks every
 * symbol it lists among those listed before (assembly/evaluate/list-order.ts: only the symbols a listing meets for
 * the first time are sorted, by their bytes, and merged in) and returns the results in rank order. Exact: byte
 * order is JavaScript's default order for texts without characters above U+FFFF, and the kernel leaves a listing
 * meeting such a new text to be sorted here.
 *
 * Texts. The results are mapped to strings through Symbols' table of the strings it interned (symbols.ts), never
 * decoded out of the kernel's memory: decoding a first listing's 30k texts, and collecting the garbage it made,
 * cost more than the walk and the order together. Runtime-neutral.
 */

import { evaluateAbi } from "../kernels/abi/evaluate.js";
import { internAbi } from "../kernels/abi/intern.js";
import { analyze } from "../model/analysis.js";
import { reverseExpansionIsExact, usersetKinds } from "../reference/exact-list-objects.js";
import type { Revision } from "../tuples/types.js";
import type { CompiledProgram } from "./compile.js";
import { ABSENT } from "./compile.js";
import type { WasmEvaluator } from "./evaluator.js";
import { type EvaluateKernel, instantiateEvaluateKernel } from "./kernel.js";
import type { Symbols } from "./symbols.js";

const { LIST_TYPES, LIST_RELATION_NAMES, LIST_HEADER, LIST_ORDER_ASTRAL, LIST_ORDER_REPEATED } =
  evaluateAbi.constants;

/** What a kernel listing asks: as exactListObjects' query. */
export interface KernelListQuery {
  readonly tenant: string;
  readonly type: string;
  readonly relation: string;
  /** A plain object subject `type:id` of the tenant. */
  readonly user: string;
}

/**
 * The reverse program block (layout: assembly/evaluate/list-objects.ts): per (type, relation) what reaching a node
 * of it leads to, as exactListObjects' steps (computed parents, tuple-to-userset parents, userset lookups).
 */
export function reverseProgram(compiled: CompiledProgram): Uint32Array {
  const { program, typeIds, relationIds } = compiled;
  const analysis = analyze(program);
  const kinds = usersetKinds(program);
  const types = typeIds.size;
  const names = relationIds.size;
  const words: number[] = new Array(LIST_HEADER + types * names).fill(0);
  words[LIST_TYPES] = types;
  words[LIST_RELATION_NAMES] = names;
  for (const [typeName, type] of program.types) {
    const t = typeIds.get(typeName)!;
    for (const relation of type.relations.keys()) {
      const r = relationIds.get(relation)!;
      const computed = analysis.computedParents(typeName, relation).map((p) => relationIds.get(p.relation)!);
      const ttu = analysis.ttuParents(typeName, relation);
      const userset = kinds === "any" || kinds.has(`${typeName}#${relation}`);
      if (computed.length === 0 && ttu.length === 0 && !userset) continue;
      words[LIST_HEADER + t * names + r] = words.length;
      words.push(userset ? 1 : 0, computed.length, ...computed, ttu.length);
      for (const p of ttu) {
        words.push(typeIds.get(p.type)!, relationIds.get(p.relation)!, relationIds.get(p.tupleset)!);
      }
    }
  }
  return Uint32Array.from(words);
}

/**
 * The texts of the `count` symbols at byte address `results` of the kernel's memory (`u32` a view of it), from
 * `texts` (symbol -> text) or, for a symbol it lacks, `text`. A module function, not a method, so that the warm-up
 * runs this same code.
 */
function textsOf(
  texts: readonly (string | undefined)[],
  text: (symbol: number) => string,
  u32: Uint32Array,
  results: number,
  count: number,
): string[] {
  const out: string[] = new Array(count);
  for (let i = 0, at = results >>> 2; i < count; i++) {
    const symbol = u32[at + i]!;
    out[i] = texts[symbol] ?? text(symbol);
  }
  return out;
}

/** Per evaluator: its reverse program in kernel memory. */
class KernelListing {
  readonly #wasm: WasmEvaluator;
  /** Reverse expansion alone is the answer (reverseExpansionIsExact). */
  readonly exact: boolean;
  /**
   * Reverse expansion gives the reference's candidates (src/reference/list-objects.ts candidateObjects): the same
   * steps, positive positions only, in any OpenFGA program (SpiceDB's arrows also follow userset subjects).
   */
  readonly candidates: boolean;
  #block = 0;
  /** A kernel call failed: no more listings here. */
  #broken = false;

  constructor(wasm: WasmEvaluator) {
    this.#wasm = wasm;
    this.exact = reverseExpansionIsExact(wasm.compiled.program);
    this.candidates = wasm.compiled.program.format !== "spicedb";
  }

  /** The reverse program's address in the kernel's memory (written at the first listing). */
  #programBlock(): number {
    if (this.#block === 0) {
      const block = reverseProgram(this.#wasm.compiled);
      const kernel = this.#wasm.kernel;
      const ptr = kernel.exports.alloc(block.byteLength) >>> 0;
      kernel.views.u32.set(block, ptr >>> 2);
      this.#block = ptr;
    }
    return this.#block;
  }

  /** See listObjectsInKernel and candidateObjectsInKernel. */
  async list(query: KernelListQuery, revision: Revision, exact: boolean): Promise<string[] | undefined> {
    if (this.#broken || (exact ? !this.exact : !this.candidates)) return undefined;
    const wasm = this.#wasm;
    const { typeIds, relationIds } = wasm.compiled;
    const type = typeIds.get(query.type);
    const relation = relationIds.get(query.relation);
    const userType = typeIds.get(query.user.slice(0, query.user.indexOf(":")));
    if (type === undefined || relation === undefined || userType === undefined) return undefined;
    if (wasm.graphIfCurrent(query.tenant, revision) === undefined) await wasm.graphAt(query.tenant, revision);
    // Taken after the wait and used before the next one: another request may move the graph on meanwhile.
    const graph = wasm.graphIfCurrent(query.tenant, revision);
    if (graph === undefined || graph.flagged > 0 || this.#broken) return undefined;
    const symbols = wasm.symbols;
    const subject = symbols.lookup(query.user) ?? ABSENT;
    const wildcard = symbols.wildcardOf(userType);
    try {
      return this.#walk(graph.pointer, subject, wildcard, type, relation, symbols);
    } catch {
      // A trap (memory could not grow) may have left the ranks half merged, or the walk returned an object twice
      // (#walk): this evaluator's listings go the other way from now on.
      this.#broken = true;
      return undefined;
    }
  }

  /** The kernel's walk and order, and the results' texts (synchronous: the graph stays at its revision). */
  #walk(
    graph: number,
    subject: number,
    wildcard: number,
    type: number,
    relation: number,
    symbols: Symbols,
  ): string[] {
    const kernel = this.#wasm.kernel;
    const e = kernel.exports;
    const block = this.#programBlock();
    const count = e.list_objects(graph, block, subject, wildcard, type, relation) >>> 0;
    if (count === 0) return [];
    const results = e.list_objects_results() >>> 0;
    const ordered = e.list_objects_order(symbols.internerPointer, results, count);
    // The order takes distinct symbols, as the walk returns them (a visited record per object): one given twice
    // is a broken walk, whose results are not to be trusted (the kernel checks it, for a few instructions a result).
    if (ordered === LIST_ORDER_REPEATED) throw new Error("list_objects returned an object twice");
    if (ordered === LIST_ORDER_ASTRAL) return this.#sortedHere(results, count, symbols);
    // A view taken after the calls, which may have grown memory.
    return textsOf(symbols.texts, (s) => symbols.text(s), kernel.views.u32, results, count);
  }

  /** The results' texts sorted here: a new text holds a character above U+FFFF, which the kernel leaves to us. */
  #sortedHere(results: number, count: number, symbols: Symbols): string[] {
    const found = this.#wasm.kernel.views.u32.slice(results >>> 2, (results >>> 2) + count);
    const out: string[] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = symbols.text(found[i]!);
    return out.sort();
  }

  /** Bytes the listing holds in the kernel (scratch and order; the texts are Symbols'). */
  get memoryBytes(): number {
    return this.#wasm.kernel.exports.list_objects_memory_bytes() >>> 0;
  }
}

const listings = new WeakMap<WasmEvaluator, KernelListing>();

function listingOf(wasm: WasmEvaluator): KernelListing {
  let listing = listings.get(wasm);
  if (listing === undefined) {
    listing = new KernelListing(wasm);
    listings.set(wasm, listing);
  }
  return listing;
}

/**
 * The objects of `query.type` on which `query.user` has `query.relation` at exactly `revision`, sorted, by reverse
 * expansion in the kernel; undefined where that would not be exact (see the file's comment: the caller then
 * lists another way). The caller has checked that the subject is a plain object of the request's own tenant, that
 * there are no contextual tuples and that no check can reach the depth limit.
 */
export function listObjectsInKernel(
  wasm: WasmEvaluator,
  query: KernelListQuery,
  revision: Revision,
): Promise<string[] | undefined> {
  if (wasm.closed) return Promise.resolve(undefined);
  return listingOf(wasm).list(query, revision, true);
}

/**
 * The reference's candidates for list objects (candidateObjects: a superset of the answer, each to be checked) at
 * exactly `revision`, sorted, by the same reverse expansion in the kernel, in any OpenFGA program (intersections
 * and exclusions too: only their positive positions are followed); undefined where the graph cannot stand for
 * the snapshot (not at the revision, or holding a flagged tuple) or in a SpiceDB program. The caller has checked
 * that the subject is a plain object of the request's own tenant and that there are no contextual tuples.
 */
export function candidateObjectsInKernel(
  wasm: WasmEvaluator,
  query: KernelListQuery,
  revision: Revision,
): Promise<string[] | undefined> {
  if (wasm.closed) return Promise.resolve(undefined);
  return listingOf(wasm).list(query, revision, false);
}

/** Texts a warm-up orders, in each of its two rounds. */
const WARM_TEXTS = 3000;
/**
 * Results a warm-up maps to texts: above the length up to which V8's optimized code allocates `new Array(length)`
 * inline (about 16k elements, what fits a regular heap object); code warmed only below it was thrown away at a
 * first real listing of 20k results, which then mapped them unoptimized (1 ms instead of 0.2).
 */
const WARM_RESULTS = 20_000;

/**
 * Runs the kernel's ordering code (list-order.ts) on a throwaway kernel instance, so that a process's first real
 * listing does not run it cold. V8 first runs a WASM function in its baseline tier (Liftoff, several times slower
 * than its optimizing one: measured 1.4-1.9 against 4-7 ms on the order of a first 20k-object listing), moves a
 * function up only after it has run a while, and only for the calls after that (no on-stack replacement in
 * WASM): a first listing's one long call stays slow to its end. The instances share the compiled module, so code
 * warmed here is warm for every evaluator. The texts are laid out as the interner's entries (all the order reads
 * of it), not interned: interning is most of the cost otherwise. Touches no evaluator's state. Returns the objects
 * the warm-up's walk listed (a test holds it to the graph warmWalk lays out).
 */
export function warmKernelListing(): number {
  const { I_ENTRIES, I_ENTRY_BYTES } = internAbi.constants;
  const kernel = instantiateEvaluateKernel();
  const e = kernel.exports;
  const n = 2 * WARM_TEXTS;
  // Ids sharing prefixes, of a few lengths, in no order; the second round merges new ones among the first's.
  const texts = Array.from({ length: n }, (_, i) => `w:${(i * 7919) % 9973}_${i}`);
  // Each text after its byte length (a u32, as in an interner record; the texts are ASCII).
  const bytes = new Uint8Array(4 * n + texts.reduce((sum, t) => sum + t.length, 0));
  const encoder = new TextEncoder();
  const lengths = new DataView(bytes.buffer);
  const offsets: number[] = [];
  for (let i = 0, offset = 0; i < n; i++) {
    lengths.setUint32(offset, texts[i]!.length, true);
    offsets.push(offset + 4);
    encoder.encodeInto(texts[i]!, bytes.subarray(offset + 4));
    offset += 4 + texts[i]!.length;
  }
  const at = e.alloc(bytes.length) >>> 0;
  const entries = e.alloc(n * I_ENTRY_BYTES) >>> 0;
  const interner = e.alloc(I_ENTRIES + 4) >>> 0;
  const list = e.alloc(WARM_RESULTS * 4) >>> 0;
  kernel.views.u8.set(bytes, at);
  const u32 = kernel.views.u32;
  u32[(interner + I_ENTRIES) >>> 2] = entries;
  for (let i = 0; i < n; i++) u32[(entries + i * I_ENTRY_BYTES) >>> 2] = at + offsets[i]!;
  const text = (s: number) => texts[s]!;
  // One view per stretch of JavaScript, not the `views.u32` getter once per element; taken again after each kernel
  // call, which allocates (memory that grows detaches the views taken before).
  let view = kernel.views.u32;
  const base = list >>> 2;
  for (const count of [n >> 1, n]) {
    // Symbols are entry indices: the even ones first, then all.
    for (let i = 0; i < count; i++) view[base + i] = count === n ? i : 2 * i;
    e.list_objects_order(interner, list, count);
    view = kernel.views.u32;
    // And the JavaScript a listing runs on what the kernel returns.
    textsOf(texts, text, view, list, count);
  }
  // That again on a listing's size (symbols repeated: only the mapping runs), often enough to be optimized.
  for (let i = 0; i < WARM_RESULTS; i++) view[base + i] = i % n;
  for (let round = 0; round < 4; round++) textsOf(texts, text, view, list, WARM_RESULTS);
  return warmWalk(kernel);
}

/** Folders under the warm-up's root, and files in each. */
const WARM_FOLDERS = 50;
const WARM_FILES = 30;
/** Walks a warm-up runs: each reaches every file once. */
const WARM_WALKS = 8;

/**
 * Runs the kernel's walk (list_objects) on a small graph in the throwaway kernel, for the reason the order is run
 * above: a first listing's walk ran in the baseline tier, measured 2.3-3.2 ms against 0.35 ms warm for 20k
 * objects. The graph is the shape most listings take (a user in a group, the group viewing a folder, folders and
 * files under it by `parent`, `view = viewer or view from parent`), laid out by hand: types user 0, group 1,
 * folder 2, file 3; relations member 0, parent 1, viewer 2, view 3.
 */
function warmWalk(kernel: EvaluateKernel): number {
  const { KIND_OBJECT, KIND_USERSET } = evaluateAbi.constants;
  const e = kernel.exports;
  const [USER, GROUP, FOLDER, FILE] = [0, 1, 2, 3];
  const [MEMBER, PARENT, VIEWER, VIEW] = [0, 1, 2, 3];
  const TYPES = 4;
  const RELATIONS = 4;
  // Symbols: the user 0, the group 1, the root folder 2, then the folders, then the files.
  const user = 0;
  const group = 1;
  const root = 2;
  const folder = (f: number) => 3 + f;
  const file = (f: number, k: number) => 3 + WARM_FOLDERS + f * WARM_FILES + k;
  const symbols = 3 + WARM_FOLDERS * (1 + WARM_FILES);
  const pairs = e.alloc(symbols * 8) >>> 0;
  let u32 = kernel.views.u32;
  for (let s = 0; s < symbols; s++) {
    const type = s === user ? USER : s === group ? GROUP : s < 3 + WARM_FOLDERS ? FOLDER : FILE;
    u32[(pairs >>> 2) + 2 * s] = s;
    u32[(pairs >>> 2) + 2 * s + 1] = type;
  }
  e.symbols_set_types(pairs, symbols);
  const g = e.graph_new(0x2545f491, 0x9e3779b9);
  e.graph_add(g, group, MEMBER, user, ABSENT, KIND_OBJECT, 0);
  e.graph_add(g, root, VIEWER, group, MEMBER, KIND_USERSET, 0);
  for (let f = 0; f < WARM_FOLDERS; f++) {
    e.graph_add(g, folder(f), PARENT, root, ABSENT, KIND_OBJECT, 0);
    for (let k = 0; k < WARM_FILES; k++)
      e.graph_add(g, file(f, k), PARENT, folder(f), ABSENT, KIND_OBJECT, 0);
  }
  // The reverse program (layout: reverseProgram): group#member is a userset subject; viewer leads to view on
  // folders and files; a folder's view leads to view on what names it as `parent`.
  const words: number[] = [TYPES, RELATIONS, ...new Array<number>(TYPES * RELATIONS).fill(0)];
  const step = (type: number, relation: number, body: number[]) => {
    words[LIST_HEADER + type * RELATIONS + relation] = words.length;
    words.push(...body);
  };
  step(GROUP, MEMBER, [1, 0, 0]);
  step(FOLDER, VIEWER, [0, 1, VIEW, 0]);
  step(FOLDER, VIEW, [0, 0, 2, FOLDER, VIEW, PARENT, FILE, VIEW, PARENT]);
  step(FILE, VIEWER, [0, 1, VIEW, 0]);
  const block = e.alloc(words.length * 4) >>> 0;
  u32 = kernel.views.u32;
  u32.set(words, block >>> 2);
  let listed = 0;
  for (let walk = 0; walk < WARM_WALKS; walk++)
    listed = e.list_objects(g, block, user, ABSENT, FILE, VIEW) >>> 0;
  return listed;
}

/** Bytes held for kernel listings by the evaluator (0 before its first). */
export function kernelListingBytes(wasm: WasmEvaluator): number {
  return listings.get(wasm)?.memoryBytes ?? 0;
}
