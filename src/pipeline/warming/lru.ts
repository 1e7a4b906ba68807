/**
 * A map of at most `max` entries that forgets the least recently used. A use stamps the entry (no re-insertion,
 * which costs a Map far more than a field write); going over `max` drops the least recently used eighth at once,
 * so eviction is amortised O(log n) per insert.
 */
export class Lru<V> {
  readonly max: number;
  readonly #entries = new Map<string, { value: V; used: number }>();
  #tick = 0;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, marked as just used. */
  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    e.used = ++this.#tick;
    return e.value;
  }

  /** The value, leaving the order alone. */
  peek(key: string): V | undefined {
    return this.#entries.get(key)?.value;
  }

  set(key: string, value: V): void {
    const e = this.#entries.get(key);
    if (e !== undefined) {
      e.value = value;
      e.used = ++this.#tick;
      return;
    }
    this.#entries.set(key, { value, used: ++this.#tick });
    if (this.#entries.size > this.max) this.#trim();
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  *values(): IterableIterator<V> {
    for (const e of this.#entries.values()) yield e.value;
  }

  /** Keys, most recently used first. */
  keysByRecency(): string[] {
    return [...this.#entries].sort((a, b) => b[1].used - a[1].used).map(([key]) => key);
  }

  #trim(): void {
    const drop = Math.max(1, Math.ceil(this.max / 8));
    const stamps = [...this.#entries.values()].map((e) => e.used).sort((a, b) => a - b);
    const cut = stamps[drop - 1]!;
    for (const [key, e] of this.#entries) if (e.used <= cut) this.#entries.delete(key);
  }
}
