/**
 * Preshared-key authentication, as OpenFGA's `--authn-method preshared`: a request must carry
 * `Authorization: Bearer <key>` with one of the configured keys. Keys are compared by their SHA-256 digests with
 * `crypto.timingSafeEqual`, and every key is compared (no early exit), so the time taken says nothing about how
 * much of a key matched or which key it was.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.js";

export class PresharedKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    for (const key of keys) {
      if (typeof key !== "string" || key.length === 0)
        throw new TypeError("a preshared key must be a non-empty string");
    }
    this.#digests = keys.map(digest);
  }

  /** Whether any key is configured (no keys: authentication is off). */
  get enabled(): boolean {
    return this.#digests.length > 0;
  }

  /** @throws ApiError 401 when `authorization` does not carry a configured key. */
  verify(authorization: string | undefined): void {
    if (!this.enabled) return;
    if (authorization === undefined || authorization === "") {
      throw new ApiError(401, "bearer_token_missing", "missing Authorization: Bearer <key> header");
    }
    const match = /^Bearer\s+(.+)$/i.exec(authorization);
    const given = digest(match?.[1]?.trim() ?? "");
    let ok = false;
    for (const key of this.#digests) ok = timingSafeEqual(given, key) || ok;
    if (match === null || !ok) throw new ApiError(401, "unauthenticated", "unauthenticated");
  }
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
