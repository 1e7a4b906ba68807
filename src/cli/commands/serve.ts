/**
 * `nexus-fast serve`: the OpenFGA-compatible HTTP API (src/server/) until SIGTERM or SIGINT, then a graceful
 * shutdown (stop accepting, finish requests in flight, close the store). Logs are JSON lines on stdout; the first
 * says where it listens.
 */
import { type FileSystem, openFileSystem } from "../../fs/index.js";
import { DEFAULT_LIMITS, type LogLevel, startServer } from "../../server/index.js";
import { intOption, parse, stringOption, UsageError } from "../args.js";
import type { Io } from "../io.js";

/** Where data is kept when none of --data, --postgres, --memory is given. */
export const DEFAULT_DATA_DIR = "./nexus-data";

export const SERVE_HELP = `Usage: nexus-fast serve [--port 8080] [--host 127.0.0.1] [--data DIR | --postgres URL | --memory] [options]

Serves OpenFGA's HTTP API (stores, authorization models, write, read, changes, check, batch-check, list-objects,
streamed-list-objects, list-users, expand, assertions), so an application using an OpenFGA SDK switches by
changing its API URL. Beyond OpenFGA: batch-check without the 50-check cap, list-objects that never truncates
silently, GET /stores/{id}/watch (an NDJSON change stream), POST /stores/{id}/delete-tuples (delete by filter).
Also GET /healthz and GET /metrics (Prometheus). Stops gracefully on SIGTERM / SIGINT.

Options:
  --port N                 TCP port (default 8080; 0 picks a free one)
  --host H                 interface to listen on (default 127.0.0.1; 0.0.0.0 for all)
  --data DIR               keep stores, models and tuples in DIR (default ${DEFAULT_DATA_DIR})
  --postgres URL           keep them in PostgreSQL (e.g. postgres://user@host:5432/db)
  --postgres-schema S      the PostgreSQL schema (default nexus)
  --memory                 keep everything in memory (nothing survives a restart)
  --cluster URL            join a cluster over one Redis (redis://host:port) and one PostgreSQL (needs --postgres):
                           members route each store to its owner on a consistent-hash ring and share answers
  --cluster-prefix P       prefix of the cluster's Redis keys (default nexus:; one per cluster sharing a Redis)
  --advertise-url U        the URL other members reach this one at (default http://HOST:PORT as listening)
  --no-shared-cache        do not share check answers through Redis
  --fs DIR                 also serve a NexusFS kept in DIR under /fs (its own permissions, on the Nexus preset)
  --fs-owner USER[@TENANT] make USER an owner of the NexusFS root of TENANT (default tenant "default"; repeatable)
  --preshared-key K        require "Authorization: Bearer K" (repeatable; any listed key is accepted)
  --cors-origin O          allowed CORS origin (repeatable; default any)
  --log-level L            silent | error | warn | info | debug (default info)
  --request-timeout-ms N   longest a request may take (default ${DEFAULT_LIMITS.requestTimeoutMs})
  --body-limit-bytes N     largest request body (default ${DEFAULT_LIMITS.bodyBytes})
  --max-batch-check N      checks per batch-check (default ${DEFAULT_LIMITS.maxChecksPerBatch})
  --max-list-objects N     objects per list-objects answer without paging (default ${DEFAULT_LIMITS.maxListObjects})
  --max-tuples-per-write N tuples per write (default ${DEFAULT_LIMITS.maxTuplesPerWrite})
  --max-delete-by-filter N tuples one delete-tuples may remove (default ${DEFAULT_LIMITS.maxDeleteByFilter})
`;

const LOG_LEVELS = new Set<LogLevel>(["silent", "fatal", "error", "warn", "info", "debug", "trace"]);

export async function runServe(args: string[], io: Io): Promise<number> {
  const parsed = parse(args, {
    port: { type: "string" },
    host: { type: "string" },
    data: { type: "string" },
    postgres: { type: "string" },
    "postgres-schema": { type: "string" },
    memory: { type: "boolean" },
    cluster: { type: "string" },
    "cluster-prefix": { type: "string" },
    "advertise-url": { type: "string" },
    "no-shared-cache": { type: "boolean" },
    fs: { type: "string" },
    "fs-owner": { type: "string", multiple: true },
    "preshared-key": { type: "string", multiple: true },
    "cors-origin": { type: "string", multiple: true },
    "log-level": { type: "string" },
    "request-timeout-ms": { type: "string" },
    "body-limit-bytes": { type: "string" },
    "max-batch-check": { type: "string" },
    "max-list-objects": { type: "string" },
    "max-tuples-per-write": { type: "string" },
    "max-delete-by-filter": { type: "string" },
  });
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
  const memory = parsed.values.memory === true;
  const data = stringOption(parsed, "data");
  const postgres = stringOption(parsed, "postgres");
  if ([memory, data !== undefined, postgres !== undefined].filter(Boolean).length > 1) {
    throw new UsageError("--data, --postgres and --memory exclude each other");
  }
  const cluster = stringOption(parsed, "cluster");
  if (cluster !== undefined && postgres === undefined) throw new UsageError("--cluster needs --postgres URL");
  for (const flag of ["cluster-prefix", "advertise-url", "no-shared-cache"]) {
    if (cluster === undefined && parsed.values[flag] !== undefined)
      throw new UsageError(`--${flag} needs --cluster`);
  }
  const logLevel = stringOption(parsed, "log-level") ?? "info";
  if (!LOG_LEVELS.has(logLevel as LogLevel))
    throw new UsageError(`--log-level must be one of ${[...LOG_LEVELS].join(", ")}`);
  const keys = (parsed.values["preshared-key"] as string[] | undefined) ?? [];
  if (keys.some((k) => k === "")) throw new UsageError("--preshared-key must not be empty");
  const origins = parsed.values["cors-origin"] as string[] | undefined;

  const fsDir = stringOption(parsed, "fs");
  const fsOwners = (parsed.values["fs-owner"] as string[] | undefined) ?? [];
  if (fsOwners.length > 0 && fsDir === undefined) throw new UsageError("--fs-owner needs --fs DIR");
  const owners = new Map<string, string[]>();
  for (const owner of fsOwners) {
    const at = owner.lastIndexOf("@");
    const [user, tenant] = at > 0 ? [owner.slice(0, at), owner.slice(at + 1)] : [owner, "default"];
    if (user === "" || tenant === "")
      throw new UsageError(`--fs-owner must be USER[@TENANT], got "${owner}"`);
    owners.set(tenant, [...(owners.get(tenant) ?? []), user]);
  }
  const files: FileSystem | undefined =
    fsDir === undefined ? undefined : await openFileSystem({ dir: fsDir });
  try {
    for (const [tenant, users] of owners) await files!.initTenant({ tenant, owners: users });
  } catch (error) {
    await files?.close();
    throw error;
  }

  const started = startServer({
    ...(files !== undefined ? { files } : {}),
    port: intOption(parsed, "port", 8080, 0),
    host: stringOption(parsed, "host") ?? "127.0.0.1",
    ...(postgres !== undefined ? { postgres } : memory ? {} : { data: data ?? DEFAULT_DATA_DIR }),
    ...(stringOption(parsed, "postgres-schema") !== undefined
      ? { postgresSchema: stringOption(parsed, "postgres-schema")! }
      : {}),
    ...(cluster !== undefined
      ? {
          cluster: {
            redis: cluster,
            ...(stringOption(parsed, "cluster-prefix") !== undefined
              ? { prefix: stringOption(parsed, "cluster-prefix")! }
              : {}),
            ...(stringOption(parsed, "advertise-url") !== undefined
              ? { advertiseUrl: stringOption(parsed, "advertise-url")! }
              : {}),
            sharedCache: parsed.values["no-shared-cache"] !== true,
          },
        }
      : {}),
    presharedKeys: keys,
    ...(origins !== undefined ? { corsOrigins: origins } : {}),
    logLevel: logLevel as LogLevel,
    limits: {
      requestTimeoutMs: intOption(parsed, "request-timeout-ms", DEFAULT_LIMITS.requestTimeoutMs),
      bodyBytes: intOption(parsed, "body-limit-bytes", DEFAULT_LIMITS.bodyBytes),
      maxChecksPerBatch: intOption(parsed, "max-batch-check", DEFAULT_LIMITS.maxChecksPerBatch),
      maxListObjects: intOption(parsed, "max-list-objects", DEFAULT_LIMITS.maxListObjects),
      maxTuplesPerWrite: intOption(parsed, "max-tuples-per-write", DEFAULT_LIMITS.maxTuplesPerWrite),
      maxDeleteByFilter: intOption(parsed, "max-delete-by-filter", DEFAULT_LIMITS.maxDeleteByFilter),
    },
  });
  const server = await started.catch(async (error: unknown) => {
    await files?.close();
    throw error;
  });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (s: NodeJS.Signals): void => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve(s);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  if (logLevel !== "silent")
    io.err(JSON.stringify({ level: 30, time: Date.now(), msg: `${signal}: shutting down` }));
  await server.close();
  await files?.close();
  return 0;
}
