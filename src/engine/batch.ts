/**
 * Engine.batchCheck's request and answer: OpenFGA's BatchCheck as `@openfga/sdk` shapes it (`{ checks: [{ user,
 * relation, object, correlationId?, contextualTuples?, context? }] }` → `{ result: [{ correlationId, request,
 * allowed, error? }] }`). The checks themselves run through checkBulk's path (the check chain's batch, or the
 * evaluator's); this module only names the items, checks the ids and shapes the answer.
 *
 * Correlation ids follow OpenFGA's rule (letters, digits, `_` and `-`, 1 to 36 characters); one is generated for
 * an item without one, as the SDK does, and a duplicate rejects the whole call. An item that fails (bad relation,
 * missing condition parameter, too deep a resolution) gets its error in its place; the others are answered.
 */

import { REQUEST_FIELDS, requestObject } from "../request/requests.js";
import { describe, NexusError } from "../util/errors.js";

/** Checks one batchCheck call may hold unless its options say otherwise (OpenFGA's server: 50). */
export const MAX_BATCH_CHECKS = 10_000;

const CORRELATION_ID = /^[A-Za-z0-9_-]{1,36}$/;

/** The fields every check item shares (a structural copy of the engine's CheckRequest, kept loose here). */
export interface BatchCheckItemFields {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  /** Names this check in the answer; generated when absent. */
  readonly correlationId?: string;
}

/** What an item's failure reports: the NexusError's stable code and message (and its details). */
export type BatchCheckError = NexusError;

export type BatchCheckSingleResponse<Item> =
  | {
      readonly correlationId: string;
      readonly request: Item;
      readonly allowed: boolean;
      readonly error?: undefined;
    }
  | {
      readonly correlationId: string;
      readonly request: Item;
      /** false, as the SDK reports a failed item. */
      readonly allowed: false;
      readonly error: BatchCheckError;
    };

/** One check of the batch, its correlation id settled, ready for the engine's batch. */
export interface NamedCheck<Item> {
  readonly correlationId: string;
  readonly item: Item;
}

/**
 * Validates the batch and names every item. The call-level defaults (`tenant`, `subjectTenant`, `consistency`)
 * are merged into each item that does not name its own.
 * @throws NexusError "invalid_argument" for a batch that is not one, over `limit` checks, a malformed or
 *   duplicated correlation id (details.reason "duplicate_correlation_id").
 */
export function namedChecks<Item extends BatchCheckItemFields>(
  request: unknown,
  limit: number,
  newId: () => string = randomId,
): NamedCheck<Item>[] {
  requestObject(request, "a batchCheck request", REQUEST_FIELDS.batchCheck);
  const { checks } = request as { checks?: unknown };
  if (!Array.isArray(checks)) {
    throw new NexusError("invalid_argument", `checks must be an array, got ${describe(checks)}`);
  }
  if (checks.length > limit) {
    throw new NexusError(
      "invalid_argument",
      `a batchCheck may hold at most ${limit} checks, got ${checks.length}`,
      { limit, count: checks.length },
    );
  }
  const idOf = (item: unknown): unknown =>
    item !== null && typeof item === "object"
      ? (item as { correlationId?: unknown }).correlationId
      : undefined;
  // A generated id must not take one that an item names further on.
  const named = new Set<unknown>();
  for (const item of checks) if (idOf(item) !== undefined) named.add(idOf(item));
  const seen = new Map<string, number>();
  return checks.map((item: unknown, index) => {
    const given = idOf(item);
    let correlationId: string;
    if (given === undefined) {
      do correlationId = newId();
      while (seen.has(correlationId) || named.has(correlationId));
    } else if (typeof given !== "string" || !CORRELATION_ID.test(given)) {
      throw new NexusError(
        "invalid_argument",
        `checks[${index}].correlationId must be 1 to 36 letters, digits, "_" or "-", got ${describe(given, 60)}`,
        { index, correlationId: given },
      );
    } else {
      correlationId = given;
    }
    const first = seen.get(correlationId);
    if (first !== undefined) {
      throw new NexusError(
        "invalid_argument",
        `checks[${index}].correlationId ${describe(correlationId)} is also checks[${first}]'s: ids must be unique`,
        { reason: "duplicate_correlation_id", correlationId, indices: [first, index] },
      );
    }
    seen.set(correlationId, index);
    return { correlationId, item: item as Item };
  });
}

/** The check request an item asks: the item without its correlation id, with the call's defaults under it. */
export function checkOf<Item extends BatchCheckItemFields>(
  item: Item,
  defaults: Readonly<Record<string, unknown>>,
): Omit<Item, "correlationId"> {
  if (item === null || typeof item !== "object") return item; // the check's own validation names it
  // The item itself when nothing is to add or drop (no copy: this runs once per check).
  let plain = !("correlationId" in item);
  for (const key in defaults) if (defaults[key] !== undefined && !(key in item)) plain = false;
  if (plain) return item;
  const check: Record<string, unknown> = {};
  for (const key in defaults) if (defaults[key] !== undefined) check[key] = defaults[key];
  for (const key in item) if (key !== "correlationId") check[key] = item[key];
  return check as Omit<Item, "correlationId">;
}

/**
 * The answer in request order. Errors that concern the call rather than an item (it was aborted, the engine
 * closed, or something that is not a NexusError: a bug must not pass for an item's error) reject it.
 */
export function batchAnswer<Item>(
  named: readonly NamedCheck<Item>[],
  answers: readonly (boolean | Error)[],
): { result: BatchCheckSingleResponse<Item>[] } {
  const result = named.map(({ correlationId, item }, i): BatchCheckSingleResponse<Item> => {
    const answer = answers[i];
    if (typeof answer === "boolean") return { correlationId, request: item, allowed: answer };
    if (!(answer instanceof NexusError) || answer.code === "aborted" || answer.code === "closed")
      throw answer;
    return { correlationId, request: item, allowed: false, error: answer };
  });
  return { result };
}

/** A random id of the allowed alphabet (a UUID where the runtime has one, as the SDK generates). */
function randomId(): string {
  const c = globalThis.crypto;
  if (c !== undefined && typeof c.randomUUID === "function") return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}
