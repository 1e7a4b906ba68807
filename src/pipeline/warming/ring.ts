/** A fixed-capacity FIFO (drop-oldest on overflow). */
export class Ring<T> {
  readonly #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  constructor(capacity: number) {
    this.#items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Adds at the back; returns true when the oldest was dropped to make room. */
  push(item: T): boolean {
    const cap = this.#items.length;
    if (this.#length === cap) {
      this.#items[this.#head] = item;
      this.#head = (this.#head + 1) % cap;
      return true;
    }
    this.#items[(this.#head + this.#length) % cap] = item;
    this.#length++;
    return false;
  }

  /** Items, newest first. */
  *newestFirst(): IterableIterator<T> {
    const cap = this.#items.length;
    for (let i = this.#length - 1; i >= 0; i--) yield this.#items[(this.#head + i) % cap]!;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    return item;
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#head = 0;
    this.#length = 0;
  }
}
