/**
 * Errors as OpenFGA's HTTP API reports them: a JSON body `{"code": "<name>", "message": "..."}` with the HTTP status
 * grpc-gateway gives the code's class. Every error a handler throws becomes one of these: an ApiError as it is,
 * a NexusError through `NEXUS_TO_OPENFGA`, anything else as a 500 `internal_error` (whose message is not echoed).
 *
 * Statuses used: 400 validation (OpenFGA's ErrorCode names), 401 authentication, 404 store / model / endpoint not
 * found, 413 body too large, 415 not JSON, 503 shutting down, 504 deadline exceeded, 500 internal.
 */
import { isNexusError, type NexusErrorCode } from "../util/errors.js";

/** An error the server answers with: HTTP status, OpenFGA error code, message. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A 400 `validation_error` (OpenFGA's generic input error). */
export function invalid(message: string): ApiError {
  return new ApiError(400, "validation_error", message);
}

export function storeNotFound(storeId: string): ApiError {
  return new ApiError(404, "store_id_not_found", `store ${storeId} not found`);
}

export function modelNotFound(modelId: string): ApiError {
  return new ApiError(404, "authorization_model_not_found", `authorization model ${modelId} not found`);
}

/** NexusError codes -> the OpenFGA code and HTTP status a client sees (codes not listed: 500 internal_error). */
export const NEXUS_TO_OPENFGA: Readonly<Partial<Record<NexusErrorCode, { code: string; status: number }>>> = {
  invalid_argument: { code: "validation_error", status: 400 },
  invalid_model: { code: "invalid_authorization_model", status: 400 },
  type_not_found: { code: "type_not_found", status: 400 },
  relation_not_found: { code: "relation_not_found", status: 400 },
  invalid_tuple: { code: "invalid_tuple", status: 400 },
  invalid_write: { code: "write_failed_due_to_invalid_input", status: 400 },
  invalid_token: { code: "invalid_continuation_token", status: 400 },
  invalid_continuation_token: { code: "invalid_continuation_token", status: 400 },
  invalid_condition: { code: "validation_error", status: 400 },
  condition_missing_parameter: { code: "validation_error", status: 400 },
  resolution_too_complex: { code: "authorization_model_resolution_too_complex", status: 400 },
  aborted: { code: "deadline_exceeded", status: 504 },
  not_ready: { code: "unavailable", status: 503 },
  closed: { code: "unavailable", status: 503 },
  disposed: { code: "unavailable", status: 503 },
  not_found: { code: "not_found", status: 404 },
  corrupt: { code: "internal_error", status: 500 },
  locked: { code: "internal_error", status: 500 },
  io_error: { code: "internal_error", status: 500 },
  too_many_losses: { code: "internal_error", status: 500 },
  unavailable: { code: "unavailable", status: 503 },
  timeout: { code: "deadline_exceeded", status: 504 },
  pool_exhausted: { code: "resource_exhausted", status: 503 },
  kernel_unavailable: { code: "internal_error", status: 500 },
  out_of_memory: { code: "resource_exhausted", status: 500 },
  internal: { code: "internal_error", status: 500 },
};

/** The OpenFGA code a batch-check item's error carries as `input_error` (400s) or `internal_error` (others). */
export interface ErrorBody {
  readonly code: string;
  readonly message: string;
}

/** The status and body for any thrown value. `internal` is true when the message was withheld (log the error). */
export function toApiError(error: unknown): ApiError & { internal?: boolean } {
  if (error instanceof ApiError) return error;
  if (isNexusError(error)) {
    const mapped = NEXUS_TO_OPENFGA[error.code] ?? { code: "internal_error", status: 500 };
    if (mapped.status < 500 || mapped.status === 503 || mapped.status === 504) {
      return new ApiError(mapped.status, mapped.code, error.message);
    }
  }
  const fastify = fastifyError(error);
  if (fastify !== undefined) return fastify;
  return Object.assign(new ApiError(500, "internal_error", "internal error"), { internal: true });
}

/** Fastify's own errors (body parsing, body size, content type) as OpenFGA-shaped ones. */
function fastifyError(error: unknown): ApiError | undefined {
  const e = error as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  if (typeof e !== "object" || e === null) return undefined;
  const isFastify = typeof e.code === "string" && e.code.startsWith("FST_");
  const clientStatus = typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500;
  if (!isFastify && !clientStatus) return undefined;
  const message = typeof e.message === "string" ? e.message : String(e.code);
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError(413, "validation_error", "request body is larger than the server's limit");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError(415, "validation_error", "the request body must be application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return invalid("the request body is empty; send a JSON object");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return invalid(`the request body is not valid JSON: ${message}`);
    default: {
      const status =
        typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 400;
      return new ApiError(status, "validation_error", message);
    }
  }
}
