/**
 * The change stream of a filesystem: every committed file operation (from the journal, as it commits) and every
 * permission change (share/unshare, and tuple changes made through the engine by anyone else, from its
 * changelog), in one order, each with a token to resume after.
 *
 * Tokens name this filesystem instance and a position: `<instance>.<n>`. The last `capacity` events are kept; a
 * token older than that, or from an earlier instance (the process restarted), is "invalid_token": the caller
 * drops what it cached and starts again from `fs.token`.
 */
import { NexusError } from "../errors.js";

export type FsEventKind = "created" | "written" | "removed" | "renamed" | "permission";

export interface FsEvent {
  readonly token: string;
  readonly kind: FsEventKind;
  readonly tenant: string;
  /** The entry (the new path of a rename); absent for a permission change on a non-file object (a group). */
  readonly path?: string;
  /** The old path of a rename. */
  readonly from?: string;
  readonly isDirectory?: boolean;
  /** The new content's hash (created/written files). */
  readonly hash?: string;
  /** The tuple change behind a permission event. */
  readonly change?: {
    readonly op: "write" | "delete";
    readonly user: string;
    readonly relation: string;
    readonly object: string;
    readonly subjectTenant?: string;
  };
}

export type NewFsEvent = Omit<FsEvent, "token">;

export interface FsWatchRequest {
  /** Resume after this token (default: from now on). */
  readonly after?: string;
  readonly signal?: AbortSignal;
}

export class FsEventLog {
  readonly #instance = Math.random().toString(36).slice(2, 10);
  readonly #capacity: number;
  readonly #events: FsEvent[] = [];
  /** Position of #events[0]. */
  #first = 1;
  #wake: (() => void)[] = [];

  constructor(capacity = 10_000) {
    this.#capacity = capacity;
  }

  /** The token of the newest event (events after it are still to come). */
  get token(): string {
    return `${this.#instance}.${this.#first + this.#events.length - 1}`;
  }

  push(event: NewFsEvent): FsEvent {
    const position = this.#first + this.#events.length;
    const full: FsEvent = { token: `${this.#instance}.${position}`, ...event };
    this.#events.push(full);
    if (this.#events.length > this.#capacity) {
      this.#events.shift();
      this.#first++;
    }
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
    return full;
  }

  /** The events after `request.after`; a token it does not know is refused here, before any event is awaited. */
  watch(request: FsWatchRequest, closing: AbortSignal): AsyncGenerator<FsEvent, void, undefined> {
    const next =
      request.after === undefined ? this.#first + this.#events.length : this.#positionAfter(request.after);
    if (next < this.#first) throw this.#tooOld(request.after);
    return this.#from(next, request.signal, closing);
  }

  async *#from(
    start: number,
    signal: AbortSignal | undefined,
    closing: AbortSignal,
  ): AsyncGenerator<FsEvent, void, undefined> {
    let next = start;
    while (!closing.aborted && !signal?.aborted) {
      // A reader slower than `capacity` events loses its place.
      if (next < this.#first) throw this.#tooOld(`${this.#instance}.${next - 1}`);
      const end = this.#first + this.#events.length;
      if (next < end) {
        yield this.#events[next - this.#first]!;
        next++;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          closing.removeEventListener("abort", done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        this.#wake.push(done);
        closing.addEventListener("abort", done, { once: true });
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  #tooOld(token: string | undefined): NexusError {
    return new NexusError(
      "invalid_token",
      "the change stream no longer holds events that old; start from fs.token",
      {
        token,
      },
    );
  }

  #positionAfter(token: string): number {
    const [instance, n] = typeof token === "string" ? token.split(".") : [];
    const position = Number(n);
    if (instance !== this.#instance || !Number.isSafeInteger(position) || position < 0) {
      throw new NexusError(
        "invalid_token",
        `${JSON.stringify(token)} is not a token of this filesystem's change stream`,
        {
          token,
        },
      );
    }
    return position + 1;
  }
}
