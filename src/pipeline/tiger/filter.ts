/**
 * Filtering a list of objects through one bitmap: one Map lookup (object → id) and one bit test per object,
 * read from the bitmap's JS-side members (`Members`), with the bitset's words read inline when it is a bitset.
 * This loop is what `filter` and `filterObjects` cost once a bitmap is ready.
 */
import type { Materialised } from "./bitmap.js";
import type { ObjectValidator } from "./options.js";

/** For each of `objects`, in input order, whether `m` holds it. */
export function flagsOf(m: Materialised, objects: readonly string[]): boolean[] {
  const ids = m.space.ids;
  const members = m.members;
  const out = new Array<boolean>(objects.length);
  const bits = members.bits;
  if (bits !== undefined) {
    const limit = bits.length * 32;
    for (let i = 0; i < objects.length; i++) {
      const id = ids.get(objects[i]!);
      out[i] = id !== undefined && id < limit && ((bits[id >>> 5]! >>> (id & 31)) & 1) === 1;
    }
  } else {
    for (let i = 0; i < objects.length; i++) {
      const id = ids.get(objects[i]!);
      out[i] = id !== undefined && members.has(id);
    }
  }
  return out;
}

/**
 * The objects `m` holds, in input order. Objects without an id are passed to `validate` (which throws for a
 * malformed one) and left out: no bitmap holds them.
 */
export function selectedOf(
  m: Materialised,
  objects: readonly unknown[],
  validate: ObjectValidator | undefined,
): string[] {
  const ids = m.space.ids as Map<unknown, number>;
  const members = m.members;
  // Written in place and trimmed at the end (cheaper than growing by push).
  const out = new Array<string>(objects.length);
  let n = 0;
  const bits = members.bits;
  if (bits !== undefined) {
    const limit = bits.length * 32;
    for (let i = 0; i < objects.length; i++) {
      const object = objects[i];
      const id = ids.get(object);
      if (id === undefined) {
        if (validate !== undefined) validate(object, i);
      } else if (id < limit && ((bits[id >>> 5]! >>> (id & 31)) & 1) === 1) {
        out[n++] = object as string;
      }
    }
  } else {
    for (let i = 0; i < objects.length; i++) {
      const object = objects[i];
      const id = ids.get(object);
      if (id === undefined) {
        if (validate !== undefined) validate(object, i);
      } else if (members.has(id)) {
        out[n++] = object as string;
      }
    }
  }
  out.length = n;
  return out;
}
