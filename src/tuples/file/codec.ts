/**
 * Record payloads of the file tuple store (layout.ts frames them): UTF-8 JSON, compact arrays for tuples.
 *
 *   tuple      [tenant, object, relation, user, subjectTenant?, condition?, expiresAt?]
 *              subjectTenant is null when it is the tenant; trailing nulls are left out
 *   identity   [tenant, object, relation, user, subjectTenant?]
 *   condition  [name] | [name, context] | [name, null, v8]: a context that JSON keeps exactly is stored as JSON;
 *              one holding what JSON cannot (Date, bigint, undefined, NaN, -0, Map, ...) as the base64 of Node's
 *              structured serialization (v8.serialize), so it reads back exactly
 *   batch      {"r": revision, "t": commit time (ms), "w": [tuple...], "d": [identity...]}
 *   model      {"tenant", "id", "createdAtMs", "source", "format"?}
 *   commit     [revision, commit time (ms)]
 *   change     [revision, op, tuple]: op "w" write, "d" delete, "x" delete of an expired tuple; in a checkpoint,
 *              tuple may be the index of one of its live tuples
 *
 * Decoding checks every field's type and rebuilds parsed forms (objectType, subject) from the strings; a payload
 * that does not decode is corruption.
 */
import { deserialize, serialize } from "node:v8";
import { describe, NexusError } from "../../util/errors.js";
import type { MemoryStoreState, PreparedWrite } from "../memory.js";
import type { StoredModel } from "../models.js";
import {
  parseObject,
  parseSubject,
  type RelationTuple,
  StoredTuple,
  type TupleCondition,
  type TupleIdentity,
} from "../tuple.js";
import type { Revision, StoredChange } from "../types.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function toBytes(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parses a payload; throws a plain Error (the caller names the file and offset in its NexusError). */
export function fromBytes(bytes: Uint8Array): unknown {
  return JSON.parse(decoder.decode(bytes));
}

// ---- tuples ----------------------------------------------------------------------------------------------------

export function encodeTuple(t: RelationTuple): Json[] {
  const out: Json[] = [t.tenant, t.object, t.relation, t.user];
  const rest: Json[] = [
    t.subjectTenant === t.tenant ? null : t.subjectTenant,
    t.condition === undefined ? null : encodeCondition(t.condition),
    t.expiresAt === undefined ? null : t.expiresAt,
  ];
  while (rest.length > 0 && rest[rest.length - 1] === null) rest.pop();
  return out.concat(rest);
}

export function decodeTuple(value: unknown): RelationTuple {
  if (!Array.isArray(value) || value.length < 4 || value.length > 7) throw bad("tuple", value);
  const [tenant, object, relation, user, subjectTenant, condition, expiresAt] = value as unknown[];
  if (typeof tenant !== "string" || typeof object !== "string" || typeof relation !== "string") {
    throw bad("tuple", value);
  }
  const parsedObject = parseObject(object);
  const subject = parseSubject(user);
  if (parsedObject === undefined || subject === undefined) throw bad("tuple", value);
  if (subjectTenant !== undefined && subjectTenant !== null && typeof subjectTenant !== "string") {
    throw bad("tuple", value);
  }
  if (expiresAt !== undefined && expiresAt !== null && typeof expiresAt !== "number")
    throw bad("tuple", value);
  const decodedCondition =
    condition === undefined || condition === null ? undefined : decodeCondition(condition);
  return new StoredTuple(
    tenant,
    object,
    parsedObject.type,
    relation,
    user as string,
    subject,
    typeof subjectTenant === "string" ? subjectTenant : tenant,
    decodedCondition,
    typeof expiresAt === "number" ? expiresAt : undefined,
  );
}

export function encodeIdentity(t: TupleIdentity): Json[] {
  return t.subjectTenant === t.tenant
    ? [t.tenant, t.object, t.relation, t.user]
    : [t.tenant, t.object, t.relation, t.user, t.subjectTenant];
}

export function decodeIdentity(value: unknown): TupleIdentity {
  if (!Array.isArray(value) || value.length < 4 || value.length > 5) throw bad("identity", value);
  const [tenant, object, relation, user, subjectTenant] = value as unknown[];
  for (const part of [tenant, object, relation, user])
    if (typeof part !== "string") throw bad("identity", value);
  if (subjectTenant !== undefined && typeof subjectTenant !== "string") throw bad("identity", value);
  return {
    tenant: tenant as string,
    object: object as string,
    relation: relation as string,
    user: user as string,
    subjectTenant: (subjectTenant as string | undefined) ?? (tenant as string),
  };
}

function encodeCondition(c: TupleCondition): Json[] {
  if (c.context === undefined) return [c.name];
  if (isExactJson(c.context, 0)) return [c.name, c.context as Json];
  let bytes: Buffer;
  try {
    bytes = serialize(c.context);
  } catch (error) {
    throw new NexusError(
      "invalid_write",
      `the context of condition ${describe(c.name)} cannot be stored: ${(error as Error).message}`,
      { condition: c.name },
    );
  }
  return [c.name, null, bytes.toString("base64")];
}

function decodeCondition(value: unknown): TupleCondition {
  if (!Array.isArray(value) || value.length < 1 || value.length > 3 || typeof value[0] !== "string") {
    throw bad("condition", value);
  }
  const [name, json, structured] = value as [string, unknown, unknown];
  if (value.length === 1) return { name };
  if (value.length === 2) {
    if (json === null || typeof json !== "object" || Array.isArray(json)) throw bad("condition", value);
    return { name, context: json as Record<string, unknown> };
  }
  if (json !== null || typeof structured !== "string") throw bad("condition", value);
  const context = deserialize(Buffer.from(structured, "base64")) as unknown;
  if (context === null || typeof context !== "object") throw bad("condition", value);
  return { name, context: context as Record<string, unknown> };
}

/** Whether JSON.parse(JSON.stringify(value)) gives back an equal value. */
function isExactJson(value: unknown, depth: number): boolean {
  if (depth > 64) return false;
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0);
  if (typeof value !== "object") return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || !isExactJson(value[i], depth + 1)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key of Object.keys(value)) {
    if (key === "__proto__" || !isExactJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

// ---- records ---------------------------------------------------------------------------------------------------

export interface BatchRecord {
  readonly revision: Revision;
  readonly time: number;
  readonly writes: RelationTuple[];
  readonly deletes: TupleIdentity[];
}

export function encodeBatch(prepared: PreparedWrite): Uint8Array {
  return toBytes({
    r: prepared.revision,
    t: prepared.time,
    w: prepared.writes.map(encodeTuple),
    d: prepared.deletes.map(encodeIdentity),
  });
}

export function decodeBatch(value: unknown): BatchRecord {
  const v = value as { r?: unknown; t?: unknown; w?: unknown; d?: unknown } | null;
  if (
    v === null ||
    typeof v !== "object" ||
    !Number.isSafeInteger(v.r) ||
    typeof v.t !== "number" ||
    !Array.isArray(v.w) ||
    !Array.isArray(v.d)
  ) {
    throw bad("batch", value);
  }
  return {
    revision: v.r as number,
    time: v.t,
    writes: v.w.map(decodeTuple),
    deletes: v.d.map(decodeIdentity),
  };
}

export function encodeModel(m: StoredModel): Json {
  return {
    tenant: m.tenant,
    id: m.id,
    createdAtMs: m.createdAtMs,
    source: m.source,
    ...(m.format !== undefined ? { format: m.format } : {}),
  };
}

export function decodeModel(value: unknown): StoredModel {
  const v = value as Partial<Record<keyof StoredModel, unknown>> | null;
  if (
    v === null ||
    typeof v !== "object" ||
    typeof v.tenant !== "string" ||
    typeof v.id !== "string" ||
    typeof v.createdAtMs !== "number" ||
    typeof v.source !== "string" ||
    (v.format !== undefined && typeof v.format !== "string")
  ) {
    throw bad("model", value);
  }
  return {
    tenant: v.tenant,
    id: v.id,
    createdAtMs: v.createdAtMs,
    source: v.source,
    ...(v.format !== undefined ? { format: v.format as string } : {}),
  };
}

/**
 * A change; in a checkpoint, a change whose tuple is one of the checkpoint's live tuples names it by its index
 * in them (`liveIndex`), so the tuple is stored and decoded once and shared again after a reopen.
 */
export function encodeChange(c: StoredChange, liveIndex?: ReadonlyMap<RelationTuple, number>): Json[] {
  const op = c.op === "write" ? "w" : c.expired ? "x" : "d";
  return [c.revision, op, liveIndex?.get(c.tuple) ?? encodeTuple(c.tuple)];
}

export function decodeChange(value: unknown, live: readonly RelationTuple[] = []): StoredChange {
  if (!Array.isArray(value) || value.length !== 3 || !Number.isSafeInteger(value[0]))
    throw bad("change", value);
  const [revision, op, tuple] = value as [number, unknown, unknown];
  const decoded = typeof tuple === "number" ? live[tuple] : decodeTuple(tuple);
  if (decoded === undefined) throw bad("change", value);
  if (op === "w") return { revision, op: "write", tuple: decoded };
  if (op === "d") return { revision, op: "delete", tuple: decoded };
  if (op === "x") return { revision, op: "delete", tuple: decoded, expired: true };
  throw bad("change", value);
}

/** The checkpoint's state record: what the chunks that follow belong to. */
export interface CheckpointState {
  readonly revision: Revision;
  readonly changelogFloor: Revision;
}

export function decodeCheckpointState(value: unknown): CheckpointState {
  const v = value as { revision?: unknown; changelogFloor?: unknown } | null;
  if (
    v === null ||
    typeof v !== "object" ||
    !Number.isSafeInteger(v.revision) ||
    !Number.isSafeInteger(v.changelogFloor)
  ) {
    throw bad("checkpoint state", value);
  }
  return { revision: v.revision as number, changelogFloor: v.changelogFloor as number };
}

export function encodeCommit(c: MemoryStoreState["commits"][number]): Json[] {
  return [c.revision, c.time];
}

export function decodeCommit(value: unknown): { revision: Revision; time: number } {
  if (!Array.isArray(value) || !Number.isSafeInteger(value[0]) || typeof value[1] !== "number") {
    throw bad("commit", value);
  }
  return { revision: value[0] as number, time: value[1] as number };
}

export interface CheckpointCounts {
  readonly tuples: number;
  readonly changes: number;
  readonly models: number;
}

export function decodeCounts(value: unknown): CheckpointCounts {
  const v = value as Partial<Record<keyof CheckpointCounts, unknown>> | null;
  if (
    v === null ||
    typeof v !== "object" ||
    !Number.isSafeInteger(v.tuples) ||
    !Number.isSafeInteger(v.changes) ||
    !Number.isSafeInteger(v.models)
  ) {
    throw bad("checkpoint end", value);
  }
  return { tuples: v.tuples as number, changes: v.changes as number, models: v.models as number };
}

export function decodeList<T>(value: unknown, item: (v: unknown) => T, what: string): T[] {
  if (!Array.isArray(value)) throw bad(what, value);
  return value.map(item);
}

function bad(what: string, value: unknown): Error {
  return new Error(`not a ${what}: ${describe(value, 80)}`);
}
