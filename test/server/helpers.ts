/**
 * Test helpers: a real server on a free port, real @openfga/sdk clients against it, and an EngineFactory that
 * drives the conformance runner through the SDK over HTTP (only what an OpenFGA client sees: the adapter turns the
 * API's OpenFGA error codes back into the NexusError codes the runner's expectations name).
 */
import { ConsistencyPreference, FgaApiError, OpenFgaClient } from "@openfga/sdk";
import type { EngineFactory, TestableEngine } from "../../src/conformance/shared.js";
import { loadOpenFgaDsl } from "../../src/model/dsl.js";
import { openFgaDslToJson } from "../../src/model/openfga.js";
import { type NexusServer, type ServerOptions, startServer } from "../../src/server/index.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { NexusError, type NexusErrorCode } from "../../src/util/errors.js";

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

export async function startTestServer(options: ServerOptions = {}): Promise<NexusServer> {
  return startServer({ port: 0, ...options });
}

export function clientFor(
  server: { url: string },
  options: { storeId?: string; authorizationModelId?: string; token?: string } = {},
): OpenFgaClient {
  return new OpenFgaClient({
    apiUrl: server.url,
    ...(options.storeId !== undefined ? { storeId: options.storeId } : {}),
    ...(options.authorizationModelId !== undefined
      ? { authorizationModelId: options.authorizationModelId }
      : {}),
    ...(options.token !== undefined
      ? { credentials: { method: "api_token" as never, config: { token: options.token } } }
      : {}),
  });
}

/** An OpenFGA DSL model as the JSON the API takes. */
export function modelJson(dsl: string): never {
  return openFgaDslToJson(dsl) as never;
}

/** OpenFGA API error codes -> the NexusError codes behind them. */
const FROM_OPENFGA: Record<string, NexusErrorCode> = {
  validation_error: "invalid_argument",
  type_not_found: "type_not_found",
  relation_not_found: "relation_not_found",
  invalid_tuple: "invalid_tuple",
  authorization_model_resolution_too_complex: "resolution_too_complex",
  invalid_authorization_model: "invalid_model",
  write_failed_due_to_invalid_input: "invalid_write",
};

async function viaApi<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof FgaApiError) {
      const code = (error as FgaApiError & { apiErrorCode?: string }).apiErrorCode ?? "";
      const message = (error as FgaApiError & { apiErrorMessage?: string }).apiErrorMessage ?? error.message;
      throw new NexusError(FROM_OPENFGA[code] ?? "internal", `${code}: ${message}`);
    }
    throw error;
  }
}

const sdkTuple = (t: TupleKey) => ({
  user: t.user,
  relation: t.relation,
  object: t.object,
  ...(t.condition !== undefined
    ? { condition: { name: t.condition.name, context: (t.condition.context ?? {}) as object } }
    : {}),
});

const sdkConsistency = (c: unknown) =>
  c === "fully_consistent"
    ? ConsistencyPreference.HigherConsistency
    : c === "minimize_latency"
      ? ConsistencyPreference.MinimizeLatency
      : undefined;

/** The conformance runner's engine, as an OpenFGA SDK application against `url`: one API store per runner store. */
export function sdkEngineFactory(server: { url: string }): EngineFactory {
  const stores = new WeakMap<object, Promise<string>>();
  const admin = clientFor(server);
  return async (options): Promise<TestableEngine> => {
    const key = options.store as object;
    let storeId = stores.get(key);
    if (storeId === undefined) {
      storeId = admin.createStore({ name: "conformance" }).then((s) => s.id);
      stores.set(key, storeId);
    }
    const client = clientFor(server, { storeId: await storeId });
    const json = openFgaDslToJson(options.model as string);
    const { authorization_model_id } = await viaApi(() => client.writeAuthorizationModel(json as never));
    const modelOptions = { authorizationModelId: authorization_model_id };
    const queryOptions = (c: unknown) => {
      const consistency = sdkConsistency(c);
      return consistency === undefined ? modelOptions : { ...modelOptions, consistency };
    };
    const engine = {
      async write(request: { writes?: readonly TupleKey[]; deletes?: readonly TupleKey[] }) {
        await viaApi(() =>
          client.write(
            {
              ...(request.writes?.length ? { writes: request.writes.map(sdkTuple) } : {}),
              ...(request.deletes?.length ? { deletes: request.deletes.map(sdkTuple) } : {}),
            },
            modelOptions,
          ),
        );
        return { token: "", revision: 0 };
      },
      async check(request: {
        user: string;
        relation: string;
        object: string;
        contextualTuples?: readonly TupleKey[];
        context?: object;
        consistency?: unknown;
      }) {
        const answer = await viaApi(() =>
          client.check(
            {
              user: request.user,
              relation: request.relation,
              object: request.object,
              contextualTuples: (request.contextualTuples ?? []).map(sdkTuple),
              ...(request.context !== undefined ? { context: request.context } : {}),
            },
            queryOptions(request.consistency),
          ),
        );
        return answer.allowed === true;
      },
      async listObjects(request: {
        user: string;
        relation: string;
        type: string;
        contextualTuples?: readonly TupleKey[];
        context?: object;
        consistency?: unknown;
      }) {
        const answer = await viaApi(() =>
          client.listObjects(
            {
              user: request.user,
              relation: request.relation,
              type: request.type,
              contextualTuples: (request.contextualTuples ?? []).map(sdkTuple),
              ...(request.context !== undefined ? { context: request.context } : {}),
            },
            queryOptions(request.consistency),
          ),
        );
        return answer.objects;
      },
      async listUsers(request: {
        object: string;
        relation: string;
        userFilters: readonly { type: string; relation?: string }[];
        contextualTuples?: readonly TupleKey[];
        context?: object;
        consistency?: unknown;
      }) {
        const colon = request.object.indexOf(":");
        const answer = await viaApi(() =>
          client.listUsers(
            {
              object: { type: request.object.slice(0, colon), id: request.object.slice(colon + 1) },
              relation: request.relation,
              user_filters: request.userFilters.map((f) => ({ ...f })),
              contextualTuples: (request.contextualTuples ?? []).map(sdkTuple),
              ...(request.context !== undefined ? { context: request.context } : {}),
            },
            queryOptions(request.consistency),
          ),
        );
        return answer.users.map((u) =>
          u.object !== undefined
            ? `${u.object.type}:${u.object.id}`
            : u.userset !== undefined
              ? `${u.userset.type}:${u.userset.id}#${u.userset.relation}`
              : `${u.wildcard!.type}:*`,
        );
      },
      async close() {},
    };
    return engine as unknown as TestableEngine;
  };
}
