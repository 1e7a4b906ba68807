/**
 * A map of at most `max` entries that forgets the least recently used, O(1) per operation: the entries form a
 * doubly linked list, most recently used first, threaded through the nodes the Map holds. A use relinks its node
 * (four field writes; no Map re-insertion, no allocation); an insert at capacity reuses the least recently used
 * node for the new key, so a full LRU allocates nothing but the Map's own entry.
 */

interface Node<V> {
  key: string;
  value: V;
  /** Towards the most recently used (undefined at the head). */
  newer: Node<V> | undefined;
  /** Towards the least recently used (undefined at the tail). */
  older: Node<V> | undefined;
}

export class Lru<V> {
  readonly max: number;
  readonly #entries = new Map<string, Node<V>>();
  /** Most recently used. */
  #head: Node<V> | undefined;
  /** Least recently used: the next to go. */
  #tail: Node<V> | undefined;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, marked as just used. */
  get(key: string): V | undefined {
    const node = this.#entries.get(key);
    if (node === undefined) return undefined;
    this.#touch(node);
    return node.value;
  }

  /** The value, leaving the order alone. */
  peek(key: string): V | undefined {
    return this.#entries.get(key)?.value;
  }

  /** Sets the value and marks it as just used; beyond `max` the least recently used entry is forgotten. */
  set(key: string, value: V): void {
    let node = this.#entries.get(key);
    if (node !== undefined) {
      node.value = value;
      this.#touch(node);
      return;
    }
    const tail = this.#tail;
    if (this.#entries.size >= this.max && tail !== undefined) {
      // Full: the least recently used node takes the new key (no allocation).
      this.#entries.delete(tail.key);
      tail.key = key;
      tail.value = value;
      this.#entries.set(key, tail);
      this.#touch(tail);
      return;
    }
    node = { key, value, newer: undefined, older: this.#head };
    if (this.#head !== undefined) this.#head.newer = node;
    else this.#tail = node;
    this.#head = node;
    this.#entries.set(key, node);
  }

  delete(key: string): void {
    const node = this.#entries.get(key);
    if (node === undefined) return;
    this.#entries.delete(key);
    this.#unlink(node);
  }

  clear(): void {
    this.#entries.clear();
    this.#head = undefined;
    this.#tail = undefined;
  }

  *values(): IterableIterator<V> {
    for (const node of this.#entries.values()) yield node.value;
  }

  /** Keys, most recently used first (into `out`, emptied first, when given). */
  keysByRecency(out: string[] = []): string[] {
    out.length = 0;
    for (let node = this.#head; node !== undefined; node = node.older) out.push(node.key);
    return out;
  }

  /** Moves `node` to the head. */
  #touch(node: Node<V>): void {
    if (node === this.#head) return;
    this.#unlink(node);
    node.older = this.#head;
    node.newer = undefined;
    if (this.#head !== undefined) this.#head.newer = node;
    else this.#tail = node;
    this.#head = node;
  }

  #unlink(node: Node<V>): void {
    const { newer, older } = node;
    if (newer !== undefined) newer.older = older;
    else this.#head = older;
    if (older !== undefined) older.newer = newer;
    else this.#tail = newer;
    node.newer = undefined;
    node.older = undefined;
  }
}
