/**
 * Every error nexus-fast throws on purpose is a NexusError with a stable `code`; the message names the offending
 * input. Codes are part of the public API: add new ones, never rename.
 */
export type NexusErrorCode =
  // inputs
  | "invalid_argument"
  | "invalid_model"
  | "type_not_found"
  | "relation_not_found"
  | "invalid_tuple"
  | "invalid_write"
  | "invalid_token"
  | "invalid_continuation_token"
  | "invalid_condition"
  | "condition_missing_parameter"
  | "resolution_too_complex"
  // lifecycle
  | "not_ready"
  | "closed"
  | "disposed"
  | "aborted"
  // storage
  | "not_found"
  | "corrupt"
  | "locked"
  | "io_error"
  | "too_many_losses"
  /** A needle index whose kernel trapped (its memory could not grow, or a bug): it answers nothing from then on. */
  | "index_broken"
  // filesystem (nexus-fast/fs)
  | "permission_denied"
  | "already_exists"
  | "not_a_directory"
  | "is_a_directory"
  | "not_empty"
  // connections (a database or service the library talks to)
  | "unavailable"
  | "timeout"
  | "pool_exhausted"
  // runtime
  | "kernel_unavailable"
  | "out_of_memory"
  | "internal";

export class NexusError extends Error {
  override readonly name = "NexusError";
  readonly code: NexusErrorCode;
  /** Structured facts about the failure (the offending value, a path, a limit), for programs rather than people. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: NexusErrorCode,
    message: string,
    details?: Record<string, unknown>,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

export function isNexusError(value: unknown, code?: NexusErrorCode): value is NexusError {
  return value instanceof NexusError && (code === undefined || value.code === code);
}

/** A short, printable rendering of any input for error messages (bounded, so a huge input cannot flood logs). */
export function describe(value: unknown, max = 120): string {
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The error of one item of a batch (check `index` of a checkBulk), naming the item; other errors pass through. */
export function atBatchIndex(error: unknown, index: number): unknown {
  if (!(error instanceof NexusError)) return error;
  return new NexusError(
    error.code,
    `check ${index}: ${error.message}`,
    { ...error.details, index },
    { cause: error },
  );
}
