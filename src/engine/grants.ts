/**
 * The engine's cross-tenant grant queries, whatever its cache switches: `grantsTo` (live grants other tenants
 * wrote naming a subject: what Nexus lists as "shared with me") and `grantsOn` (live grants on one object). With
 * the pipeline's cross-tenant layer on they read that layer's index (the one it denies with); with the layer off
 * (`cache: false`, `crossTenant: false`, `watch: false`) an index of the same kind is opened on the first query
 * over the engine's change feed and kept, used by nothing but these queries.
 */

import type { ChangeFeed } from "../changes/feed.js";
import type { Program } from "../model/program.js";
import { CrossTenantIndex, type GrantsOnQuery, type GrantsToQuery } from "../pipeline/cross-tenant/index.js";
import type { TupleKey } from "../tuples/tuple.js";
import type { TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";

export type { GrantsOnQuery, GrantsToQuery } from "../pipeline/cross-tenant/index.js";

/** What `engine.crossTenantIndex` answers. Errors as CrossTenantIndex's grantsTo / grantsOn. */
export interface GrantQueries {
  grantsTo(query: GrantsToQuery): Promise<TupleKey[]>;
  grantsOn(query: GrantsOnQuery): Promise<TupleKey[]>;
}

export interface GrantIndexSource {
  readonly program: Program;
  readonly store: TupleStore;
  readonly clock: () => number;
  /** The engine's change feed (opened on demand). */
  readonly feed: () => Promise<ChangeFeed>;
}

export class EngineGrants implements GrantQueries, AsyncDisposable {
  readonly #layers: CrossTenantIndex | undefined;
  readonly #source: GrantIndexSource;
  #own: Promise<CrossTenantIndex> | undefined;
  #closed = false;

  /** `layers`: the index of the pipeline's cross-tenant layer, when that layer is on. */
  constructor(layers: CrossTenantIndex | undefined, source: GrantIndexSource) {
    this.#layers = layers;
    this.#source = source;
  }

  async grantsTo(query: GrantsToQuery): Promise<TupleKey[]> {
    return (await this.#index()).grantsTo(query);
  }

  async grantsOn(query: GrantsOnQuery): Promise<TupleKey[]> {
    return (await this.#index()).grantsOn(query);
  }

  /** Closes the index this opened (never the layer's). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const own = await this.#own?.catch(() => undefined);
    await own?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #index(): Promise<CrossTenantIndex> {
    if (this.#closed) return Promise.reject(new NexusError("closed", "the engine is closed"));
    if (this.#layers !== undefined) return Promise.resolve(this.#layers);
    if (this.#own === undefined) {
      const { program, store, clock } = this.#source;
      const opening = this.#source
        .feed()
        .then((feed) => CrossTenantIndex.open({ program, store, source: feed }, { clock }));
      this.#own = opening;
      // A failed open is retried by the next query.
      opening.catch(() => {
        if (this.#own === opening) this.#own = undefined;
      });
    }
    return this.#own;
  }
}
