/**
 * The Tiger layer's bitmaps as bytes, so a layer can be saved and restored over the same store: a JSON header
 * (length-prefixed, little-endian u32) holding the id spaces and one entry per bitmap (its question, revision and
 * validity instants), then each bitmap in roaring's portable format, in entry order.
 */
import type { RoaringBitmap32 } from "roaring-wasm";
import { parseSubject } from "../../tuples/tuple.js";
import type { Revision } from "../../tuples/types.js";
import { NexusError } from "../../util/errors.js";
import { type Question, SEP } from "./bitmap.js";
import { IdSpace } from "./id-space.js";
import { FORMAT, type OwnedBitmaps } from "./owned.js";

interface SerializedEntry extends Omit<Question, "subject"> {
  readonly revision: number;
  readonly computedAt: number | null;
  readonly validUntil: number | null;
  readonly length: number;
}

/** One bitmap read back, owned by the `OwnedBitmaps` it was read into. */
export interface RestoredBitmap {
  readonly bitmap: RoaringBitmap32;
  readonly question: Question;
  readonly space: IdSpace;
  readonly revision: Revision;
  readonly computedAt: number;
  readonly validUntil: number;
}

/** Every bitmap of `owned`, with the id spaces they index. */
export function encodeBitmaps(owned: OwnedBitmaps): Uint8Array {
  const parts: Uint8Array[] = [];
  const entries: SerializedEntry[] = [];
  for (const m of owned.values()) {
    const bytes = m.bitmap.serialize(FORMAT);
    parts.push(bytes);
    const { subject: _, ...question } = m.question;
    entries.push({
      ...question,
      revision: m.revision,
      computedAt: Number.isFinite(m.computedAt) ? m.computedAt : null,
      validUntil: Number.isFinite(m.validUntil) ? m.validUntil : null,
      length: bytes.length,
    });
  }
  const header = new TextEncoder().encode(
    JSON.stringify({
      version: 2,
      spaces: [...owned.spaces()].map((s) => [s.tenant, s.type, s.objects]),
      entries,
    }),
  );
  const total = 4 + header.length + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  let at = 4 + header.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The id spaces and bitmaps in `bytes`; the bitmaps are allocated in `owned` (and disposed again when the bytes
 * turn out bad). @throws NexusError "corrupt" for bytes `encodeBitmaps` did not write.
 */
export function decodeBitmaps(
  bytes: Uint8Array,
  owned: OwnedBitmaps,
): { spaces: Map<string, IdSpace>; restored: RestoredBitmap[] } {
  const corrupt = (why: string) => new NexusError("corrupt", `Tiger cache bytes: ${why}`);
  if (!(bytes instanceof Uint8Array) || bytes.length < 4) throw corrupt("too short");
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + headerLength > bytes.length) throw corrupt("truncated header");
  let header: { version: number; spaces: [string, string, string[]][]; entries: SerializedEntry[] };
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(4, 4 + headerLength)),
    );
  } catch {
    throw corrupt("unreadable header");
  }
  if (header?.version !== 2 || !Array.isArray(header.spaces) || !Array.isArray(header.entries)) {
    throw corrupt("unsupported header");
  }
  const spaces = new Map<string, IdSpace>();
  for (const entry of header.spaces) {
    const [tenant, type, objects] = Array.isArray(entry) ? entry : [];
    if (typeof tenant !== "string" || typeof type !== "string" || !Array.isArray(objects)) {
      throw corrupt("bad id space");
    }
    const space = new IdSpace(tenant, type);
    for (const object of objects) {
      if (typeof object !== "string" || space.ids.has(object)) throw corrupt("bad id space");
      space.intern(object);
    }
    spaces.set(tenant + SEP + type, space);
  }
  const restored: RestoredBitmap[] = [];
  let at = 4 + headerLength;
  try {
    for (const e of header.entries) {
      const space = spaces.get(e?.tenant + SEP + e?.objectType);
      const subject = parseSubject(e?.user);
      if (
        space === undefined ||
        subject === undefined ||
        typeof e.subjectTenant !== "string" ||
        typeof e.relation !== "string" ||
        typeof e.revision !== "number" ||
        !Number.isInteger(e.length) ||
        e.length < 0
      ) {
        throw corrupt("bad entry");
      }
      if (at + e.length > bytes.length) throw corrupt("truncated bitmap");
      const bitmap = owned.deserialize(bytes.subarray(at, at + e.length));
      at += e.length;
      const question: Question = {
        tenant: e.tenant,
        subjectTenant: e.subjectTenant,
        objectType: e.objectType,
        relation: e.relation,
        subject,
        user: e.user,
      };
      restored.push({
        bitmap,
        question,
        space,
        revision: e.revision,
        computedAt: e.computedAt ?? Number.NEGATIVE_INFINITY,
        validUntil: e.validUntil ?? Number.POSITIVE_INFINITY,
      });
      if (bitmap.size > 0 && bitmap.maximum() >= space.size) throw corrupt("bitmap beyond its id space");
    }
  } catch (error) {
    for (const r of restored) owned.dispose(r.bitmap);
    throw error instanceof NexusError ? error : corrupt(`bad bitmap (${String(error)})`);
  }
  return { spaces, restored };
}
