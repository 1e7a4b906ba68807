/**
 * PostgreSQL and connection failures as NexusErrors, so callers branch on a stable `code` instead of pg's
 * messages and SQLSTATEs:
 * - "unavailable": the server cannot be reached or refuses us (connection refused, unknown host, authentication,
 *   missing database, server shutting down, too many connections, a connection lost mid-query);
 * - "pool_exhausted": every connection of the pool stayed busy for `connectTimeoutMs`;
 * - "timeout": connecting took longer than `connectTimeoutMs`, or the server cancelled a statement
 *   (`statement_timeout`) or a lock wait;
 * - anything else the database reports is "io_error" with its SQLSTATE in `details.sqlstate`.
 */
import { NexusError } from "../util/errors.js";

interface PgLikeError {
  readonly message?: string;
  /** A SQLSTATE from the server, or a Node errno code (ECONNREFUSED, ...). */
  readonly code?: string;
  readonly address?: string;
  readonly port?: number;
  readonly hostname?: string;
}

const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNRESET",
  "EPIPE",
]);

/** What went wrong, as a NexusError naming `doing` ("connecting", "writing", ...). NexusErrors pass through. */
export function toNexusError(error: unknown, doing: string, pool?: { max: number }): NexusError {
  if (error instanceof NexusError) return error;
  const e = (typeof error === "object" && error !== null ? error : { message: String(error) }) as PgLikeError;
  const message = e.message ?? String(error);
  const code = e.code ?? "";
  const where = e.address !== undefined ? ` at ${e.address}${e.port !== undefined ? `:${e.port}` : ""}` : "";
  const details = { cause: message, ...(code !== "" ? { sqlstate: code } : {}) };
  const wrap = (c: NexusError["code"], text: string) =>
    new NexusError(c, `PostgreSQL ${doing}: ${text}`, details, { cause: error });

  if (message === "timeout exceeded when trying to connect") {
    return wrap(
      "pool_exhausted",
      `every connection of the pool${pool !== undefined ? ` (max ${pool.max})` : ""} stayed busy past connectTimeoutMs`,
    );
  }
  if (message.startsWith("Connection terminated due to connection timeout")) {
    return wrap("timeout", "connecting took longer than connectTimeoutMs");
  }
  if (UNREACHABLE.has(code)) {
    const what =
      code === "ECONNREFUSED"
        ? "connection refused"
        : code === "ENOTFOUND" || code === "EAI_AGAIN"
          ? `unknown host ${e.hostname ?? ""}`.trim()
          : `connection failed (${code})`;
    return wrap("unavailable", `${what}${where}`);
  }
  if (code === "57014")
    return wrap("timeout", "the statement ran longer than statementTimeoutMs and was cancelled");
  if (code === "55P03") return wrap("timeout", `a lock wait timed out (${message})`);
  if (code === "53300") return wrap("unavailable", "the server has too many connections");
  if (code.startsWith("28")) return wrap("unavailable", `authentication failed (${message})`);
  if (code === "3D000") return wrap("unavailable", `the database does not exist (${message})`);
  if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03") {
    return wrap("unavailable", `the connection was lost (${message})`);
  }
  if (
    message.includes("Connection terminated") ||
    message.includes("Client has encountered a connection error") ||
    message.includes("Cannot use a pool after calling end")
  ) {
    return wrap("unavailable", message);
  }
  return wrap("io_error", message);
}
