/**
 * A module loaded on first need behind a dynamic import, so a bundler puts it in a chunk of its own that an app
 * never fetches unless it asks (the OpenFGA DSL parser, the CEL runtime). `load` is safe to call many times and
 * concurrently; a failed fetch is "unavailable" and may succeed when asked again. `get` hands the module to
 * synchronous code, or throws "not_ready" with `notReady`, which should name the ways in.
 */
import { NexusError } from "./errors.js";

export class OnDemand<T> {
  readonly #importer: () => Promise<T>;
  readonly #what: string;
  readonly #notReady: string;
  #loaded: T | undefined;
  #loading: Promise<T> | undefined;

  /** `what` names the module in a failed load's message ("the OpenFGA DSL parser"). */
  constructor(importer: () => Promise<T>, what: string, notReady: string) {
    this.#importer = importer;
    this.#what = what;
    this.#notReady = notReady;
  }

  async load(): Promise<void> {
    if (this.#loaded !== undefined) return;
    this.#loading ??= this.#importer().then(
      (module) => {
        this.#loaded = module;
        return module;
      },
      (cause: unknown) => {
        this.#loading = undefined; // a failed chunk fetch may succeed when asked again
        throw new NexusError(
          "unavailable",
          `cannot load ${this.#what}: ${(cause as Error).message}`,
          undefined,
          {
            cause,
          },
        );
      },
    );
    await this.#loading;
  }

  get loaded(): boolean {
    return this.#loaded !== undefined;
  }

  /** The module. @throws NexusError "not_ready" before load() has settled. */
  get(): T {
    if (this.#loaded === undefined) throw new NexusError("not_ready", this.#notReady);
    return this.#loaded;
  }
}
