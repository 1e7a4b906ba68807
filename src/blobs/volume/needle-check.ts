/**
 * Reading a stored needle back whole to check it: its header (checksum, key, kind, length) and its data checksum,
 * and with verifyHash its BLAKE3 key. A needle up to CHECK_PIECE is read at once, a larger one in pieces, so a
 * check never holds a large blob whole. Used before a dedup counts a reference to a stored copy, and by scrub.
 */
import { type Checksums, createCrc32cStream, createStreamHasher } from "../../io/checksum.js";
import {
  decodeHeader,
  FOOTER_SIZE,
  HEADER_SIZE,
  type NeedleHeader,
  NeedleKind,
  needleLength,
  sameKey,
} from "./layout.js";
import type { Located } from "./live-set.js";
import type { Volume } from "./volume.js";

/** Stored copies up to this size are checked in one read; larger ones in pieces. */
export const CHECK_PIECE = 4 * 2 ** 20;

/**
 * Checks the stored copy at `loc` whole: "good", "other" (a different blob sharing the prefix), or why it
 * cannot be read back (corrupt, cut short, missing from disk).
 */
export async function checkStored(
  volume: Volume | undefined,
  loc: Located,
  key: Uint8Array,
  checks: Checksums,
  sharesPrefix: (h: NeedleHeader, key: Uint8Array, loc: Located) => boolean,
  verifyHash = false,
): Promise<string> {
  if (volume === undefined) return "its volume is gone";
  const first = await volume.read(loc.offset, Math.min(loc.length, CHECK_PIECE));
  const h = decodeHeader(first, 0, checks.crc32c);
  if (typeof h === "string") return first.length < HEADER_SIZE ? "missing from the volume" : h;
  if (!sameKey(h.key, key)) return sharesPrefix(h, key, loc) ? "other" : "the index points at another needle";
  if (h.kind !== NeedleKind.Data) return "the index points at a reference record";
  if (needleLength(h.size) !== loc.length) return "size does not match the index";
  const dataEnd = HEADER_SIZE + h.size;
  let stored: number;
  let computed: number;
  if (loc.length <= CHECK_PIECE) {
    if (first.length < loc.length) return "needle cut short";
    const data = first.subarray(HEADER_SIZE, dataEnd);
    computed = checks.crc32c(data);
    stored = new DataView(first.buffer, first.byteOffset + dataEnd, FOOTER_SIZE).getUint32(0, true);
    if (verifyHash && computed === stored && !sameKey(checks.blake3(data), key))
      return "content does not hash to its key";
  } else {
    const crc = await createCrc32cStream();
    const hash = verifyHash ? await createStreamHasher() : undefined;
    let pos = HEADER_SIZE;
    let piece: Uint8Array = first.subarray(HEADER_SIZE);
    let footer: Uint8Array = new Uint8Array(0);
    while (true) {
      const data = piece.subarray(0, Math.max(0, Math.min(piece.length, dataEnd - pos)));
      crc.update(data);
      hash?.update(data);
      footer = concat(footer, piece.subarray(data.length));
      pos += piece.length;
      if (pos >= HEADER_SIZE + h.size + FOOTER_SIZE) break;
      piece = await volume.read(loc.offset + pos, Math.min(loc.length - pos, CHECK_PIECE));
      if (piece.length === 0) return "needle cut short";
    }
    computed = crc.finish();
    stored = new DataView(footer.buffer, footer.byteOffset, FOOTER_SIZE).getUint32(0, true);
    if (verifyHash && computed === stored && !sameKey(hash!.finish().key, key))
      return "content does not hash to its key";
  }
  return computed === stored ? "good" : "data checksum mismatch";
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
