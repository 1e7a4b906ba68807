/**
 * A path interner that shares prefixes: every path is a node (parent node, one name), so "/a/b/" is stored once
 * for all of its children, and a child is found from its parent by one hash probe. Everything lives in typed
 * arrays (about 12 bytes a node plus its name's UTF-8 bytes and a hash slot), never in per-path JS objects.
 *
 * Node 0 is the root "/". Paths are absolute POSIX paths without empty, "." or ".." components.
 */
import { NexusError } from "../../util/errors.js";

const NONE = 0xffffffff;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class PathInterner {
  /** parent[id]: the parent node (NONE for the root). */
  #parent: Uint32Array;
  /** Node id's name is pool[nameStart[id] .. nameStart[id + 1]) (names are appended in id order). */
  #nameStart: Uint32Array;
  #pool: Uint8Array;
  /** nextSibling[id]: the next child of the same parent, or NONE. */
  #nextSibling: Uint32Array;
  /** First child of each node that has children (directories are few next to files). */
  readonly #firstChild = new Map<number, number>();
  /** Open addressing over (parent, name): node id + 1, 0 = empty. */
  #slots: Uint32Array;
  #count = 0;

  constructor(capacity = 1024) {
    const n = Math.max(16, capacity);
    this.#parent = new Uint32Array(n);
    this.#nameStart = new Uint32Array(n + 1);
    this.#nextSibling = new Uint32Array(n);
    this.#pool = new Uint8Array(n * 8);
    this.#slots = new Uint32Array(slotCapacity(n));
    this.#append(NONE, new Uint8Array(0)); // the root
  }

  /** Nodes, the root included. */
  get size(): number {
    return this.#count;
  }

  /** Bytes held by the arrays (capacity, not just what is used) and an estimate for the directory map. */
  get bytes(): number {
    return (
      this.#parent.byteLength +
      this.#nameStart.byteLength +
      this.#nextSibling.byteLength +
      this.#pool.byteLength +
      this.#slots.byteLength +
      this.#firstChild.size * 40
    );
  }

  /** The node of `path`, creating it and any missing ancestor. */
  intern(path: string): number {
    let node = 0;
    for (const name of components(path)) {
      const bytes = encoder.encode(name);
      const found = this.#find(node, bytes);
      node = found === NONE ? this.#append(node, bytes) : found;
    }
    return node;
  }

  /** The node of `path`, or undefined when it was never interned. */
  lookup(path: string): number | undefined {
    let node = 0;
    for (const name of components(path)) {
      node = this.#find(node, encoder.encode(name));
      if (node === NONE) return undefined;
    }
    return node;
  }

  parentOf(id: number): number | undefined {
    const p = this.#parent[id];
    return p === undefined || p === NONE ? undefined : p;
  }

  nameOf(id: number): string {
    return decoder.decode(this.#pool.subarray(this.#nameStart[id]!, this.#nameStart[id + 1]!));
  }

  /** The full path of node `id`. */
  pathOf(id: number): string {
    if (id === 0) return "/";
    const names: string[] = [];
    for (let n = id; n !== 0; n = this.#parent[n]!) names.push(this.nameOf(n));
    return `/${names.reverse().join("/")}`;
  }

  /** The children of node `id`, most recently added first. */
  *children(id: number): IterableIterator<number> {
    for (let c = this.#firstChild.get(id) ?? NONE; c !== NONE; c = this.#nextSibling[c]!) yield c;
  }

  /** Shrinks every array to what is used (after a bulk load). */
  trim(): void {
    const n = this.#count;
    this.#parent = this.#parent.slice(0, n);
    this.#nameStart = this.#nameStart.slice(0, n + 1);
    this.#nextSibling = this.#nextSibling.slice(0, n);
    this.#pool = this.#pool.slice(0, this.#nameStart[n]!);
    this.#rehash(Math.ceil(n / 0.8) + 1);
  }

  /** The arrays, for saving. */
  exportArrays(): { parent: Uint32Array; nameStart: Uint32Array; pool: Uint8Array } {
    const n = this.#count;
    return {
      parent: this.#parent.subarray(0, n),
      nameStart: this.#nameStart.subarray(0, n + 1),
      pool: this.#pool.subarray(0, this.#nameStart[n]!),
    };
  }

  /** Rebuilds an interner from saved arrays (sibling lists and the hash table are derived). */
  static fromArrays(parent: Uint32Array, nameStart: Uint32Array, pool: Uint8Array): PathInterner {
    const n = parent.length;
    if (nameStart.length !== n + 1 || n === 0 || parent[0] !== NONE || nameStart[n] !== pool.length) {
      throw new NexusError("corrupt", "saved path interner arrays do not fit together", { nodes: n });
    }
    const t = new PathInterner(n);
    t.#parent = parent.slice();
    t.#nameStart = nameStart.slice();
    t.#pool = pool.slice();
    t.#nextSibling = new Uint32Array(n).fill(NONE);
    t.#slots = new Uint32Array(slotCapacity(n));
    t.#count = n;
    t.#firstChild.clear();
    for (let id = 1; id < n; id++) {
      const p = parent[id]!;
      if (p >= id) throw new NexusError("corrupt", `saved path node ${id} names a later parent ${p}`, { id });
      t.#link(id, p);
      t.#place(id);
    }
    return t;
  }

  #find(parent: number, name: Uint8Array): number {
    const cap = this.#slots.length;
    for (let s = home(hashNode(parent, name), cap); ; s = s + 1 === cap ? 0 : s + 1) {
      const v = this.#slots[s]!;
      if (v === 0) return NONE;
      const id = v - 1;
      if (this.#parent[id] === parent && this.#nameIs(id, name)) return id;
    }
  }

  #nameIs(id: number, name: Uint8Array): boolean {
    const start = this.#nameStart[id]!;
    if (this.#nameStart[id + 1]! - start !== name.length) return false;
    for (let i = 0; i < name.length; i++) if (this.#pool[start + i] !== name[i]) return false;
    return true;
  }

  #append(parent: number, name: Uint8Array): number {
    const id = this.#count;
    if (id + 1 >= this.#parent.length) this.#growNodes();
    const start = this.#nameStart[id]!;
    if (start + name.length > this.#pool.length) {
      const pool = new Uint8Array(Math.max(this.#pool.length * 1.5, start + name.length + 64) | 0);
      pool.set(this.#pool);
      this.#pool = pool;
    }
    this.#pool.set(name, start);
    this.#nameStart[id + 1] = start + name.length;
    this.#parent[id] = parent;
    this.#nextSibling[id] = NONE;
    this.#count = id + 1;
    if (parent !== NONE) {
      this.#link(id, parent);
      if (this.#count * 4 > this.#slots.length * 3) this.#rehash(this.#slots.length * 2);
      this.#place(id);
    }
    return id;
  }

  #link(id: number, parent: number): void {
    this.#nextSibling[id] = this.#firstChild.get(parent) ?? NONE;
    this.#firstChild.set(parent, id);
  }

  #place(id: number): void {
    const cap = this.#slots.length;
    const start = this.#nameStart[id]!;
    const name = this.#pool.subarray(start, this.#nameStart[id + 1]!);
    let s = home(hashNode(this.#parent[id]!, name), cap);
    while (this.#slots[s] !== 0) s = s + 1 === cap ? 0 : s + 1;
    this.#slots[s] = id + 1;
  }

  #rehash(size: number): void {
    this.#slots = new Uint32Array(size);
    for (let id = 1; id < this.#count; id++) this.#place(id);
  }

  #growNodes(): void {
    const n = Math.ceil(this.#parent.length * 1.5);
    const grow = <T extends Uint32Array>(a: T, len: number): Uint32Array => {
      const b = new Uint32Array(len);
      b.set(a);
      return b;
    };
    this.#parent = grow(this.#parent, n);
    this.#nameStart = grow(this.#nameStart, n + 1);
    this.#nextSibling = grow(this.#nextSibling, n);
  }
}

/** Slots for `nodes` at a load of at most 3/4 (any size: slots are chosen by multiply-shift, not a mask). */
function slotCapacity(nodes: number): number {
  return Math.max(16, Math.ceil((nodes * 4) / 3) + 1);
}

/** The first slot of 32-bit hash `h` among `cap` slots: h * cap / 2^32, always < cap (rounding of the product,
 * past 2^53, moves it by far less than 2^32). */
function home(h: number, cap: number): number {
  return Math.floor((h * cap) / 4294967296);
}

/** FNV-1a over the parent id and the name, finished with a murmur mix. */
function hashNode(parent: number, name: Uint8Array): number {
  let h = Math.imul(0x811c9dc5 ^ parent, 0x01000193);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** The components of an absolute POSIX path; throws invalid_argument naming the path otherwise. */
export function components(path: string): string[] {
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
    throw new NexusError("invalid_argument", `a path is absolute ("/a/b"), got ${JSON.stringify(path)}`, {
      path,
    });
  }
  if (path === "/") return [];
  const parts = path.slice(1).split("/");
  if (parts[parts.length - 1] === "") parts.pop(); // "/a/b/" names the directory "/a/b"
  for (const p of parts) {
    if (p === "" || p === "." || p === "..") {
      throw new NexusError(
        "invalid_argument",
        `path ${JSON.stringify(path)} has an empty, "." or ".." part`,
        {
          path,
        },
      );
    }
  }
  return parts;
}
