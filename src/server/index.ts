/**
 * nexus-fast/server (Node): an OpenFGA-compatible HTTP API over the engine, as `nexus-fast serve` runs it.
 *
 * ```ts
 * import { startServer } from "nexus-fast/server";
 * await using server = await startServer({ port: 8080, data: "./nexus-data", presharedKeys: ["secret"] });
 * // new OpenFgaClient({ apiUrl: server.url, credentials: { method: "api_token", config: { token: "secret" } } })
 * ```
 */
export { DEFAULT_LIMITS, type ServerLimits } from "./context.js";
export { ApiError, NEXUS_TO_OPENFGA } from "./errors.js";
export { type LogLevel, NexusServer, type ServerOptions, startServer } from "./server.js";
