/**
 * Group commit: many writers wait for one fdatasync. A writer that wrote calls request() and is released by the
 * first sync round that starts after its call, so its bytes are durable when the promise resolves; writers
 * arriving during a round share the next one.
 */
export class GroupSync {
  readonly #syncAll: () => Promise<void>;
  #waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #running: Promise<void> | undefined;

  constructor(syncAll: () => Promise<void>) {
    this.#syncAll = syncAll;
  }

  request(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#running ??= this.#run();
    });
  }

  /** Resolves when no round is running (close waits for it). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #run(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const round = this.#waiting.splice(0);
        try {
          await this.#syncAll();
          for (const w of round) w.resolve();
        } catch (e) {
          for (const w of round) w.reject(e);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}
