/**
 * The store's latest revision, read for many requests at once. A request may only use a read that started after it
 * arrived (a write acknowledged before it arrived must be seen), so a caller arriving while a read is in flight
 * waits for the next one, which every caller arriving meanwhile shares: at most one read in flight and one queued,
 * whatever the number of concurrent requests — instead of one PostgreSQL round trip each.
 */
export class RevisionReader {
  readonly #read: () => Promise<number>;
  #inFlight: Promise<number> | undefined;
  #queued: Promise<number> | undefined;
  /** Reads sent to the store, and calls answered (for the bench and tests). */
  reads = 0;
  calls = 0;

  constructor(read: () => Promise<number>) {
    this.#read = read;
  }

  /** The latest revision, read after this call. */
  latest(): Promise<number> {
    this.calls++;
    if (this.#queued !== undefined) return this.#queued;
    if (this.#inFlight === undefined) return this.#start();
    const queued = this.#inFlight
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#start();
      });
    this.#queued = queued;
    return queued;
  }

  #start(): Promise<number> {
    this.reads++;
    const read = this.#read();
    this.#inFlight = read;
    const done = (): void => {
      if (this.#inFlight === read) this.#inFlight = undefined;
    };
    read.then(done, done);
    return read;
  }
}
