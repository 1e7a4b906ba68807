/**
 * Consistency tokens: the opaque string a write returns, encoding the store's id and the write's revision with a
 * checksum, so garbage, a truncated token or a token of another store is rejected ("invalid_token") instead of
 * being read as some revision.
 */
import { describe, NexusError } from "../util/errors.js";
import type { Revision } from "./types.js";

const PREFIX = "nft1_";

export interface DecodedToken {
  readonly storeId: string;
  readonly revision: Revision;
}

export function encodeToken(storeId: string, revision: Revision): string {
  const payload = `${storeId}:${revision.toString(36)}`;
  return PREFIX + toBase64Url(`${payload}:${fnv1a(payload)}`);
}

/** @throws NexusError "invalid_token" naming the token. */
export function decodeToken(token: unknown): DecodedToken {
  const bad = (why: string): never => {
    throw new NexusError("invalid_token", `invalid consistency token ${describe(token, 60)}: ${why}`, {
      token,
    });
  };
  if (typeof token !== "string" || !token.startsWith(PREFIX)) return bad("not a nexus-fast token");
  const text = fromBase64Url(token.slice(PREFIX.length));
  if (text === undefined) return bad("not a nexus-fast token");
  const parts = text.split(":");
  if (parts.length !== 3) return bad("malformed");
  const [storeId, revisionText, checksum] = parts as [string, string, string];
  if (fnv1a(`${storeId}:${revisionText}`) !== checksum) return bad("checksum mismatch");
  if (!/^[0-9a-z]+$/.test(revisionText)) return bad("malformed revision");
  const revision = Number.parseInt(revisionText, 36);
  if (!Number.isSafeInteger(revision)) return bad("malformed revision");
  return { storeId, revision };
}

export function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

export function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
