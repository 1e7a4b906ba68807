/** Validation of the tracker's and the warmer's numeric and function options (invalid_argument on a bad one). */

import { describe, NexusError } from "../../util/errors.js";

export function positiveInteger(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new NexusError("invalid_argument", `${name} must be an integer ≥ ${min}, got ${describe(value)}`, {
      [name]: value,
    });
  }
  return value;
}

export function nonNegativeNumber(
  name: string,
  value: unknown,
  fallback: number,
  max = Number.POSITIVE_INFINITY,
) {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0 || value > max) {
    throw new NexusError(
      "invalid_argument",
      `${name} must be a number in [0, ${max}], got ${describe(value)}`,
      { [name]: value },
    );
  }
  return value;
}

export function functionOption<F>(name: string, value: unknown): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new NexusError("invalid_argument", `${name} must be a function, got ${describe(value)}`);
  }
  return value as F;
}

export function optionsObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new NexusError("invalid_argument", `${what} must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}
