/**
 * Whether a string is well-formed UTF-16 (no lone surrogate), i.e. has a UTF-8 form. Ids are compared as UTF-8
 * bytes in the kernels, where a lone surrogate would become U+FFFD and alias another string. One-byte strings (every
 * ASCII id) cannot hold a surrogate, so String.prototype.isWellFormed answers them without a scan.
 */
export function isWellFormed(s: string): boolean {
  const native = (s as { isWellFormed?: () => boolean }).isWellFormed;
  return typeof native === "function" ? native.call(s) : !LONE_SURROGATE.test(s);
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
