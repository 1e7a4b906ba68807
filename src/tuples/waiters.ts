/**
 * The set of readers parked in `waitForRevision` on an in-process tuple store (memory and file stores share it).
 * A waiter is woken by the next publish, by close, or by its abort signal, and then re-checks the revision itself:
 * waking everyone on every publish is cheap because at most a handful of watch loops wait at once.
 */
export class RevisionWaiters {
  readonly #waiters = new Set<() => void>();

  /** Resolves at the next `wakeAll()` or when `signal` aborts (at once if it already has). */
  wait(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  wakeAll(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}
