/**
 * Paged listings (Engine.listObjectsPage, listUsersPage, readPage): `pageSize` and `continuationToken` in, a page
 * and the token of the next one out (`""` after the last page, as OpenFGA answers).
 *
 * Stable pages: the first page picks the revision its consistency resolves to, and every later page reads that
 * same revision (the token carries it), so the pages together are exactly the unpaged answer at that revision:
 * no item twice, none missed, whatever is written meanwhile. Items are in a total order (sorted strings), and a
 * token holds the last item given, so a page starts after it. A token also names its store, its listing and a
 * fingerprint of the question; with a checksum over all of it, so an edited, truncated or foreign token is
 * "invalid_continuation_token", as is one whose revision the store no longer keeps (details.reason "expired":
 * the store's snapshot retention bounds how long a paging session may last). Expiry of tuples is judged at each
 * time its listing was computed. A page slices the listing at the pinned revision, computed by the first page and
 * kept for the next ones (ListingCache: the last 4 listings), so reading every page costs about one listing.
 */

import { fnv1a, fromBase64Url, toBase64Url } from "../tuples/token.js";
import type { TupleStore } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 10_000;

const PREFIX = "nfp1_";

export type PageKind = "list-objects" | "list-users" | "read";

export interface PageRequest {
  /** Items per page, 1 to 10,000 (default 100). */
  readonly pageSize?: number;
  /** The previous page's token; absent or "" for the first page. */
  readonly continuationToken?: string;
}

/** Where a page starts: the pinned revision, and the last item the previous page gave. */
export interface PagePosition {
  readonly revision: number;
  readonly after: string | undefined;
  readonly pageSize: number;
  /** Whether this is a later page (its revision came from a token). */
  readonly continued: boolean;
}

interface TokenBody {
  readonly k: PageKind;
  readonly s: string;
  readonly r: number;
  readonly q: string;
  readonly a: string;
}

/**
 * The question a listing answers: its full text (stable across field order in objects; the key of kept
 * listings) and the short fingerprint a token carries.
 */
export function questionOf(question: unknown): { text: string; fingerprint: string } {
  const text = stableJson(question);
  return { text, fingerprint: fnv1a(text) };
}

/**
 * The position of the page `request` asks for. Without a token, at `firstRevision()` (the request's consistency).
 * @throws NexusError "invalid_argument" for a bad pageSize; "invalid_continuation_token" for a bad token.
 */
export async function pagePosition(
  request: PageRequest,
  expected: { kind: PageKind; storeId: string; question: string; currentRevision: () => Promise<number> },
  firstRevision: () => Promise<number>,
): Promise<PagePosition> {
  const pageSize = request.pageSize ?? DEFAULT_PAGE_SIZE;
  if (
    typeof pageSize !== "number" ||
    !Number.isInteger(pageSize) ||
    pageSize < 1 ||
    pageSize > MAX_PAGE_SIZE
  ) {
    throw new NexusError(
      "invalid_argument",
      `pageSize must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${describe(pageSize)}`,
      { pageSize, limit: MAX_PAGE_SIZE },
    );
  }
  const token = request.continuationToken;
  if (token === undefined || token === "") {
    return { revision: await firstRevision(), after: undefined, pageSize, continued: false };
  }
  const body = decode(token);
  const bad = (why: string): never => {
    throw new NexusError("invalid_continuation_token", `continuation token ${describe(token, 60)} ${why}`, {
      token,
    });
  };
  if (body === undefined) return bad("is not one this engine issued (malformed or altered)");
  if (body.k !== expected.kind) return bad(`continues a ${body.k} listing, not a ${expected.kind}`);
  if (body.s !== expected.storeId) return bad("was issued by another store");
  if (body.q !== expected.question) return bad("was issued for another question");
  if (body.r > (await expected.currentRevision())) return bad("names a revision this store has not reached");
  return { revision: body.r, after: body.a, pageSize, continued: true };
}

/**
 * The page of `sorted` (ascending, by the items' own string order) after `position.after`, and the token of the
 * next page ("" when this one reaches the end).
 */
export function pageOf<T>(
  sorted: readonly T[],
  keyOf: (item: T) => string,
  position: PagePosition,
  at: { kind: PageKind; storeId: string; question: string },
): { items: T[]; continuationToken: string } {
  let start = 0;
  const { after } = position;
  if (after !== undefined) {
    // Binary search: the first item whose key sorts after `after`.
    let hi = sorted.length;
    while (start < hi) {
      const mid = (start + hi) >>> 1;
      if (keyOf(sorted[mid]!) <= after) start = mid + 1;
      else hi = mid;
    }
  }
  const items = sorted.slice(start, start + position.pageSize);
  const more = start + position.pageSize < sorted.length;
  return {
    items,
    continuationToken: more
      ? encode({ k: at.kind, s: at.storeId, r: position.revision, q: at.question, a: keyOf(items.at(-1)!) })
      : "",
  };
}

/**
 * Runs one page's work; a pinned revision the store no longer keeps becomes "invalid_continuation_token" with
 * details.reason "expired".
 */
export async function atPinnedRevision<T>(position: PagePosition, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (position.continued && error instanceof NexusError && error.details?.reason === "beyond_retention") {
      throw new NexusError(
        "invalid_continuation_token",
        `the continuation token's revision ${position.revision} is older than the store keeps: start the listing again`,
        { revision: position.revision, reason: "expired" },
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * The last few listings pages were cut from, by question and revision, so paging through a listing computes it
 * once rather than once a page (which made reading every page quadratic). An answer at a fixed revision does
 * not change, except for tuple expiry: a kept listing keeps the expiry judgement of the time it was computed.
 */
export class ListingCache {
  readonly #entries = new Map<string, readonly unknown[]>();
  readonly #capacity: number;

  constructor(capacity = 4) {
    this.#capacity = capacity;
  }

  async get<T>(key: string, compute: () => Promise<readonly T[]>): Promise<readonly T[]> {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit as readonly T[];
    }
    const value = await compute();
    this.#entries.set(key, value);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
    return value;
  }

  clear(): void {
    this.#entries.clear();
  }
}

function encode(body: TokenBody): string {
  const payload = JSON.stringify([body.k, body.s, body.r, body.q, body.a]);
  return PREFIX + toBase64Url(`${fnv1a(payload)}${payload}`);
}

function decode(token: unknown): TokenBody | undefined {
  if (typeof token !== "string" || token.length > 65_536 || !token.startsWith(PREFIX)) return undefined;
  const text = fromBase64Url(token.slice(PREFIX.length));
  if (text === undefined || text.length < 8) return undefined;
  const payload = text.slice(8);
  if (fnv1a(payload) !== text.slice(0, 8)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 5) return undefined;
  const [k, s, r, q, a] = value as unknown[];
  if (k !== "list-objects" && k !== "list-users" && k !== "read") return undefined;
  if (typeof s !== "string" || typeof q !== "string" || typeof a !== "string") return undefined;
  if (typeof r !== "number" || !Number.isSafeInteger(r) || r < 0) return undefined;
  return { k, s, r, q, a };
}

/** JSON with object keys sorted (so `{a, b}` and `{b, a}` print alike); bigints as strings, cycles refused. */
function stableJson(value: unknown, seen = new Set<object>()): string {
  if (typeof value === "bigint") return JSON.stringify(`${value}n`);
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (value instanceof Date)
    return JSON.stringify(Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString());
  if (seen.has(value)) return '"[cycle]"';
  seen.add(value);
  const text = Array.isArray(value)
    ? `[${value.map((v) => stableJson(v, seen)).join(",")}]`
    : `{${Object.keys(value)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k], seen)}`)
        .join(",")}}`;
  seen.delete(value);
  return text;
}

/** What cutting a page needs of the engine. */
export interface PagedSource {
  readonly store: TupleStore;
  readonly listings: ListingCache;
  /** The revision a first page's consistency resolves to. */
  readonly revisionFor: (consistency: unknown) => Promise<number>;
}

/**
 * One page of a listing: its position from the request's token (or its consistency), then the slice of the
 * listing at that revision, computed by `list` (or taken from the kept listings).
 */
export async function listingPage<T>(
  source: PagedSource,
  kind: PageKind,
  request: PageRequest,
  query: { readonly consistency?: unknown },
  list: (revision: number) => Promise<readonly T[]>,
  keyOf: (item: T) => string,
): Promise<{ items: T[]; continuationToken: string }> {
  const { store, listings } = source;
  const { consistency, ...question } = query;
  const asked = questionOf([kind, question]);
  const at = { kind, storeId: store.id, question: asked.fingerprint };
  const position = await pagePosition(
    request,
    { ...at, currentRevision: () => store.currentRevision() },
    () => source.revisionFor(consistency),
  );
  const all = await atPinnedRevision(position, async () => {
    // Held open while listing: refuses a revision the store no longer keeps (some layers would read a newer one
    // instead) and keeps it from being collected meanwhile.
    const pin = await store.snapshot(position.revision);
    try {
      return await listings.get(`${position.revision}\u0000${asked.text}`, () => list(position.revision));
    } finally {
      pin.release();
    }
  });
  return pageOf(all, keyOf, position, at);
}
