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
 * Sorting. Sorting 30k strings costs several milliseconds, more than the walk, and far more when they come in no
 * useful order. Symbols are never freed and their texts never change, so each evaluator keeps the texts of the
 * symbols it has listed in sorted order, with every such symbol's rank: a listing sorts only the symbols it meets
 * for the first time (merged into the ranked ones), then orders its results by rank through a bitmap. Exact by
 * construction: ranks come from the same comparison as Array.prototype.sort's default, over the symbols' own texts.
 * Runtime-neutral.
 */

import { evaluateAbi } from "../kernels/abi/evaluate.js";
import { analyze } from "../model/analysis.js";
import { reverseExpansionIsExact, usersetKinds } from "../reference/exact-list-objects.js";
import type { Revision } from "../tuples/types.js";
import type { CompiledProgram } from "./compile.js";
import { ABSENT } from "./compile.js";
import type { WasmEvaluator } from "./evaluator.js";
import type { Symbols } from "./symbols.js";

const { LIST_TYPES, LIST_RELATION_NAMES, LIST_HEADER } = evaluateAbi.constants;

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

/** Per evaluator: its reverse program in kernel memory, and the ranked texts of the symbols listed so far. */
class KernelListing {
  readonly #wasm: WasmEvaluator;
  readonly exact: boolean;
  #block = 0;
  /** Ranked symbols' texts, sorted (Array.prototype.sort's default order), and the symbol of each. */
  #texts: string[] = [];
  #sorted = new Uint32Array(0);
  /** symbol -> its rank + 1 in #texts (0: not ranked yet). */
  #rank = new Uint32Array(1024);

  constructor(wasm: WasmEvaluator) {
    this.#wasm = wasm;
    this.exact = reverseExpansionIsExact(wasm.compiled.program);
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

  /** See listObjectsInKernel. */
  async list(query: KernelListQuery, revision: Revision): Promise<string[] | undefined> {
    if (!this.exact) return undefined;
    const wasm = this.#wasm;
    const { typeIds, relationIds } = wasm.compiled;
    const type = typeIds.get(query.type);
    const relation = relationIds.get(query.relation);
    const userType = typeIds.get(query.user.slice(0, query.user.indexOf(":")));
    if (type === undefined || relation === undefined || userType === undefined) return undefined;
    if (wasm.graphIfCurrent(query.tenant, revision) === undefined) await wasm.graphAt(query.tenant, revision);
    // Taken after the wait and used before the next one: another request may move the graph on meanwhile.
    const graph = wasm.graphIfCurrent(query.tenant, revision);
    if (graph === undefined || graph.flagged > 0) return undefined;
    const symbols = wasm.symbols;
    const subject = symbols.lookup(query.user) ?? ABSENT;
    const wildcard = symbols.wildcardOf(userType);
    const e = wasm.kernel.exports;
    const block = this.#programBlock();
    const count = e.list_objects(graph.pointer, block, subject, wildcard, type, relation) >>> 0;
    if (count === 0) return [];
    // The call may have grown memory: the view is taken after it (and copied out: ranking resolves texts, which
    // reads kernel memory but never grows it, and the next listing overwrites the results).
    const at = e.list_objects_results() >>> 2;
    const found = wasm.kernel.views.u32.slice(at, at + count);
    return this.#sortedTexts(found, symbols);
  }

  /** The texts of `found` (distinct symbols), sorted: ranks the symbols not ranked yet, then orders by rank. */
  #sortedTexts(found: Uint32Array, symbols: Symbols): string[] {
    let rank = this.#rank;
    let max = 0;
    for (let i = 0; i < found.length; i++) if (found[i]! > max) max = found[i]!;
    if (max >= rank.length) {
      const grown = new Uint32Array(Math.max(rank.length * 2, max + 1));
      grown.set(rank);
      this.#rank = rank = grown;
    }
    const fresh: number[] = [];
    for (let i = 0; i < found.length; i++) if (rank[found[i]!] === 0) fresh.push(found[i]!);
    if (fresh.length > 0) this.#rankFresh(fresh, symbols);
    rank = this.#rank;
    const texts = this.#texts;
    const out: string[] = new Array(found.length);
    const words = (texts.length + 31) >>> 5;
    if (found.length * 16 < words) {
      // Few results among many ranked symbols: sort the ranks themselves.
      const ranks = new Uint32Array(found.length);
      for (let i = 0; i < found.length; i++) ranks[i] = rank[found[i]!]! - 1;
      ranks.sort();
      for (let i = 0; i < ranks.length; i++) out[i] = texts[ranks[i]!]!;
      return out;
    }
    // A bitmap over the ranks, read in order.
    const bits = new Uint32Array(words);
    for (let i = 0; i < found.length; i++) {
      const r = rank[found[i]!]! - 1;
      bits[r >>> 5]! |= 1 << (r & 31);
    }
    let n = 0;
    for (let w = 0; w < words; w++) {
      let x = bits[w]!;
      while (x !== 0) {
        const low = x & -x;
        out[n++] = texts[(w << 5) + 31 - Math.clz32(low)]!;
        x ^= low;
      }
    }
    return out;
  }

  /** Ranks symbols met for the first time: sorts their texts and merges them into the ranked ones. */
  #rankFresh(fresh: number[], symbols: Symbols): void {
    const added = fresh.map((symbol) => ({ symbol, text: symbols.text(symbol) }));
    added.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
    const oldTexts = this.#texts;
    const oldSorted = this.#sorted;
    const total = oldTexts.length + added.length;
    const texts: string[] = new Array(total);
    const sorted = new Uint32Array(total);
    const rank = this.#rank;
    let i = 0;
    let j = 0;
    for (let k = 0; k < total; k++) {
      if (j >= added.length || (i < oldTexts.length && oldTexts[i]! < added[j]!.text)) {
        texts[k] = oldTexts[i]!;
        sorted[k] = oldSorted[i]!;
        i++;
      } else {
        texts[k] = added[j]!.text;
        sorted[k] = added[j]!.symbol;
        j++;
      }
      rank[sorted[k]!] = k + 1;
    }
    this.#texts = texts;
    this.#sorted = sorted;
  }

  /** Bytes the listing holds: the kernel's scratch (shared by the kernel's listings) and the rank table. */
  get memoryBytes(): number {
    return (this.#wasm.kernel.exports.list_objects_memory_bytes() >>> 0) + this.#rank.byteLength;
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
  return listingOf(wasm).list(query, revision);
}

/** Bytes held for kernel listings by the evaluator (0 before its first). */
export function kernelListingBytes(wasm: WasmEvaluator): number {
  return listings.get(wasm)?.memoryBytes ?? 0;
}
