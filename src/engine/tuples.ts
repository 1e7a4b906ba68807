/**
 * The engine's tuple requests, checked and shaped: a write's tuples (validated against the model, normalized with
 * the request's tenant) and a read's filter and result (live tuples only, in a total order for readPage).
 */

import type { Program } from "../model/program.js";
import { tupleProblem } from "../model/tuple-rules.js";
import { onlyKnownFields, REQUEST_FIELDS, requestObject, tenantOf, validTuple } from "../request/requests.js";
import { arrayOf } from "../request/validate.js";
import { normalizeIdentity, TupleInterner, tupleOrProblem } from "../tuples/normalize.js";
import {
  parseObject,
  type RelationTuple,
  type TupleIdentity,
  type TupleKey,
  toTupleKey,
} from "../tuples/tuple.js";
import type { ReadFilter } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import { yieldToLoop } from "../util/yield.js";
import type { ReadRequest, TupleToDelete, WriteRequest } from "./types.js";

/**
 * A write's tuples, validated and normalized.
 * @throws NexusError "invalid_write" for an empty write; "invalid_tuple" naming a bad tuple; "invalid_argument".
 */
export function writeOf(
  program: Program,
  request: WriteRequest,
): { writes: RelationTuple[]; deletes: TupleIdentity[] } {
  const { tenant, writes, deletes, interner } = writeParts(request);
  const written: RelationTuple[] = [];
  for (let i = 0; i < writes.length; i++) written.push(writeTuple(program, writes[i], tenant, i, interner));
  return {
    writes: written,
    deletes: deletes.map((key, i) => deleteIdentity(key, tenant, i, interner)),
  };
}

/**
 * writeOf with the event loop's other tasks run between slices of about `sliceMs`: the same tuples, or the same
 * error. Validating a write of 10,000 tuples in one go held the loop for 40-80 ms on a loaded 2-core machine
 * while the code was cold (the peer load's first batches).
 */
export async function writeOfInSlices(
  program: Program,
  request: WriteRequest,
  sliceMs = 4,
): Promise<{ writes: RelationTuple[]; deletes: TupleIdentity[] }> {
  const parts = writeParts(request);
  const { tenant, interner } = parts;
  // Copies: the lists must stay as they were while the loop yields.
  const writes = [...parts.writes];
  const deletes = [...parts.deletes];
  const slices: Slices = { sliceMs, deadline: performance.now() + sliceMs };
  const written = await writesInSlices(program, writes, tenant, interner, slices);
  const identities = deletes.length === 0 ? [] : await deletesInSlices(deletes, tenant, interner, slices);
  return { writes: written, deletes: identities };
}

/** The slicing of one writeOfInSlices call: when its current slice ends. */
interface Slices {
  readonly sliceMs: number;
  deadline: number;
}

/**
 * Each list in a function of its own that ends with its loop: in one function, the code V8 optimized while the
 * writes' loop ran (a write's one call) had no type feedback for what followed the loop and was deoptimized there
 * at the end of write after write of a load.
 */
async function writesInSlices(
  program: Program,
  writes: readonly unknown[],
  tenant: string,
  interner: TupleInterner,
  slices: Slices,
): Promise<RelationTuple[]> {
  const written: RelationTuple[] = [];
  // Whether every tuple is in the request's tenant, noted while each tuple is at hand (tenantsOf then need not
  // read 10,000 tuples again, by then out of the cache).
  let oneTenant = true;
  for (let i = 0; i < writes.length; i++) {
    const tuple = writeTuple(program, writes[i], tenant, i, interner);
    if (tuple.tenant !== tenant) oneTenant = false;
    written.push(tuple);
    // Awaited only when a slice is over (an await per tuple would cost a microtask turn each).
    if (i % SLICE_CHECK === SLICE_CHECK - 1 && performance.now() >= slices.deadline) {
      await yieldToLoop();
      slices.deadline = performance.now() + slices.sliceMs;
    }
  }
  if (oneTenant) tenantOfList.set(written, tenant);
  return written;
}

/** Lists of tuples writeOfInSlices made whose tuples are all in one tenant: that tenant. */
const tenantOfList = new WeakMap<readonly object[], string>();

async function deletesInSlices(
  deletes: readonly unknown[],
  tenant: string,
  interner: TupleInterner,
  slices: Slices,
): Promise<TupleIdentity[]> {
  const identities: TupleIdentity[] = [];
  for (let i = 0; i < deletes.length; i++) {
    identities.push(deleteIdentity(deletes[i], tenant, i, interner));
    if (i % SLICE_CHECK === SLICE_CHECK - 1 && performance.now() >= slices.deadline) {
      await yieldToLoop();
      slices.deadline = performance.now() + slices.sliceMs;
    }
  }
  return identities;
}

/**
 * The distinct tenants a write names. Without copying its lists: a write's tuples are nearly always in one tenant,
 * so a tuple in the tenant of the one before costs a comparison.
 */
export function tenantsOf(...lists: readonly (readonly { readonly tenant: string }[])[]): Set<string> {
  const tenants = new Set<string>();
  let last: string | undefined;
  for (const list of lists) {
    // A list writeOfInSlices made, all in one tenant (it noted which): nothing to read.
    const known = tenantOfList.get(list);
    if (known !== undefined) {
      if (list.length > 0) tenants.add(known);
      continue;
    }
    for (let i = 0; i < list.length; i++) {
      const tenant = list[i]!.tenant;
      if (tenant === last) continue;
      tenants.add(tenant);
      last = tenant;
    }
  }
  return tenants;
}

/** writeOfInSlices looks at the clock after every SLICE_CHECK tuples. */
const SLICE_CHECK = 256;

/** A write request's own fields checked, with its tuple lists. */
function writeParts(request: WriteRequest): {
  tenant: string;
  writes: readonly unknown[];
  deletes: readonly unknown[];
  interner: TupleInterner;
} {
  requestObject(request, "a write request", REQUEST_FIELDS.write);
  const tenant = tenantOf(request.tenant);
  const writes = arrayOf(request.writes, "writes");
  const deletes = arrayOf(request.deletes, "deletes");
  if (writes.length === 0 && deletes.length === 0) {
    throw new NexusError("invalid_write", "a write needs at least one tuple to write or delete");
  }
  for (const [name, value] of [
    ["onDuplicate", request.onDuplicate],
    ["onMissing", request.onMissing],
  ] as const) {
    if (value !== undefined && value !== "error" && value !== "ignore") {
      throw new NexusError("invalid_argument", `${name} must be "error" or "ignore", got ${describe(value)}`);
    }
  }
  // One interner for the whole write: its tuples share type names and subjects, each parsed once.
  return { tenant, writes, deletes, interner: new TupleInterner() };
}

/** Delete `i` validated and normalized. */
function deleteIdentity(key: unknown, tenant: string, i: number, interner: TupleInterner): TupleIdentity {
  if (key !== null && typeof key === "object") onlyKnownFields(key, REQUEST_FIELDS.tuple, `delete ${i}`);
  const identity = normalizeIdentity(key as TupleToDelete, tenant, undefined, interner);
  if (!identity.ok) {
    throw new NexusError("invalid_tuple", `delete ${i} ${describe(key)} is invalid: ${identity.problem}`, {
      tuple: key,
    });
  }
  return identity.value;
}

/**
 * Write `i` validated and normalized: validTuple's result, reached without building its messages. Anything the
 * quick path does not accept outright (an unknown field, a malformed tuple, a rule broken) goes through validTuple
 * itself, which throws the error it always throws, or returns the same tuple.
 */
function writeTuple(
  program: Program,
  key: unknown,
  tenant: string,
  i: number,
  interner: TupleInterner,
): RelationTuple {
  if (key !== null && typeof key === "object" && hasOnly(key, REQUEST_FIELDS.tuple)) {
    const condition = (key as TupleKey).condition as unknown;
    if (condition === null || typeof condition !== "object" || hasOnly(condition, REQUEST_FIELDS.condition)) {
      const tuple = tupleOrProblem(key as TupleKey, tenant, undefined, interner);
      if (typeof tuple !== "string" && tupleProblem(program, tuple) === undefined) return tuple;
    }
  }
  return validTuple(program, key as TupleKey, tenant, `write ${i}`);
}

/** onlyKnownFields as a test (the error is left to validTuple). */
function hasOnly(value: object, known: ReadonlySet<string>): boolean {
  for (const field in value) if (!known.has(field)) return false;
  return true;
}

/**
 * The live tuples a read asks for: validates it, then `read` fetches the filter's tuples at the read's revision
 * with the instant expiry is judged at.
 * @throws NexusError "invalid_argument" for a bad object, relation or user.
 */
export async function readTuples(
  request: ReadRequest,
  read: (filter: ReadFilter) => Promise<{ tuples: readonly RelationTuple[]; now: number }>,
): Promise<TupleKey[]> {
  requestObject(request, "a read request", REQUEST_FIELDS.read);
  const tenant = tenantOf(request.tenant);
  let object: string | undefined;
  let objectType: string | undefined;
  if (request.object !== undefined) {
    if (typeof request.object === "string" && /^[^:#@\s]+:$/.test(request.object)) {
      objectType = request.object.slice(0, -1);
    } else if (parseObject(request.object) !== undefined) {
      object = request.object;
      objectType = parseObject(request.object)!.type;
    } else {
      throw new NexusError(
        "invalid_argument",
        `object must be "type:id" or "type:", got ${describe(request.object)}`,
      );
    }
  }
  for (const field of ["relation", "user"] as const) {
    if (request[field] !== undefined && typeof request[field] !== "string") {
      throw new NexusError("invalid_argument", `${field} must be a string, got ${describe(request[field])}`);
    }
  }
  const { tuples, now } = await read({
    tenant,
    ...(object !== undefined ? { object } : {}),
    ...(objectType !== undefined ? { objectType } : {}),
    ...(request.relation !== undefined ? { relation: request.relation } : {}),
    ...(request.user !== undefined ? { user: request.user } : {}),
  });
  return tuples.filter((t) => t.expiresAt === undefined || t.expiresAt > now).map(toTupleKey);
}

/** A total order of a tenant's tuples for readPage (a tuple's identity, as one sortable string). */
export function tupleOrderKey(t: TupleKey): string {
  return JSON.stringify([t.object, t.relation, t.subjectTenant ?? "", t.user]);
}

export function byTupleKey(a: TupleKey, b: TupleKey): number {
  const x = tupleOrderKey(a);
  const y = tupleOrderKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
