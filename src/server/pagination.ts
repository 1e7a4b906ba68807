/**
 * Continuation tokens: opaque to clients, a base64url JSON position inside to the server. Each carries the kind of
 * listing it continues (`kind`), so a token of one endpoint given to another is a clear 400, as is garbage.
 */
import { describe } from "../util/errors.js";
import { ApiError } from "./errors.js";

export function encodeContinuation(kind: string, position: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ k: kind, ...position }), "utf8").toString("base64url");
}

/** The position a token holds, or undefined when no token was given. @throws 400 invalid_continuation_token */
export function decodeContinuation(kind: string, token: unknown): Record<string, unknown> | undefined {
  if (token === undefined || token === null || token === "") return undefined;
  const bad = (): never => {
    throw new ApiError(
      400,
      "invalid_continuation_token",
      `invalid continuation_token ${describe(token, 60)}`,
    );
  };
  if (typeof token !== "string" || token.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(token)) return bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return bad();
  }
  if (typeof value !== "object" || value === null || (value as { k?: unknown }).k !== kind) return bad();
  return value as Record<string, unknown>;
}

/** A field of a decoded position that must be a string. */
export function positionString(position: Record<string, unknown>, field: string): string {
  const value = position[field];
  if (typeof value !== "string") {
    throw new ApiError(400, "invalid_continuation_token", "invalid continuation_token");
  }
  return value;
}

/** A field of a decoded position that must be a non-negative safe integer. */
export function positionInt(position: Record<string, unknown>, field: string): number {
  const value = position[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ApiError(400, "invalid_continuation_token", "invalid continuation_token");
  }
  return value;
}
